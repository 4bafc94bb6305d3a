"""The sensor log: every channel of ``sensors.csv`` sampled on the run's own (offset, drifting,
jittered) clock, and the glitches real loggers make, when asked for."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from threedpai.runs import SENSOR_SCHEMA
from threedpai.simulate.scenario import FILAMENT_AREA, Scenario, filament_actual

GRAVITY = 9806.65  # mm/s^2: an ADXL345 reports it on its z axis
ACCEL_LSB = 38.3  # mm/s^2 per count (3.9 mg, full resolution)
LOAD_REFERENCE_FLOW = 8.0  # mm^3/s at which the extruder load reads 1
ROUNDING = {
    "t": 6, "hotend_temp": 2, "hotend_target": 1, "bed_temp": 2, "bed_target": 1, "hotend_duty": 3, "bed_duty": 3,
    "fan_cmd": 3, "fan_rpm": 0, "extruder_load": 3, "x": 3, "y": 3, "z": 3, "e": 3,
}  # fmt: skip


def sample_times(sc: Scenario, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sensor-clock sample times from the start of the heat-up to the end of the data, with jitter
    small enough to keep them in order; and the same instants on the timeline clock."""
    first, last = sc.clock.to_sensor(-sc.preheat_s), sc.clock.to_sensor(sc.data_end)
    n = int(np.floor((last - first) * rate)) + 1
    jitter = np.clip(rng.normal(0.0, 0.02, n), -0.1, 0.1) / rate
    s = np.round(first + np.arange(n) / rate + jitter, ROUNDING["t"])
    return s, sc.clock.to_timeline(s)


def _ringing(a: np.ndarray, rate: float, freq: float, zeta: float) -> np.ndarray:
    """What a resonance of the toolhead adds to the measured acceleration: after every change of
    the commanded acceleration the mass lags, overshoots and rings down. At low sample rates the
    sensor's averaging removes most of it (|sinc| of the resonance over one sample)."""
    steps = np.diff(a, prepend=a[0] if len(a) else 0.0)
    w = 2 * np.pi * freq
    length = min(len(a), int(np.ceil(5.0 / (zeta * w) * rate)) + 1)
    if length < 2:
        return np.zeros_like(a)
    tau = np.arange(length) / rate
    # Half the step rings: the belts and frame follow the rest stiffly.
    kernel = -0.5 * np.exp(-zeta * w * tau) * np.cos(w * np.sqrt(1 - zeta**2) * tau) * abs(np.sinc(freq / rate))
    size = 1 << int(np.ceil(np.log2(len(a) + length)))
    return np.fft.irfft(np.fft.rfft(steps, size) * np.fft.rfft(kernel, size), size)[: len(a)]


def _knocks(sc: Scenario, t: np.ndarray, rate: float) -> np.ndarray:
    """Impacts (a skipped step, the nozzle hitting a curled part): a decaying burst at ~180 Hz when the
    sensor is fast enough to see it; a slower one reports the impact's mean over its sample period
    (about 15 ms of shock)."""
    out = np.zeros((len(t), 3))
    for when, *amp in sc.fault.knocks:
        lo, hi = np.searchsorted(t, [when, when + 0.05])
        if rate >= 400:
            tau = t[lo:hi] - when
            out[lo:hi] += (np.exp(-tau / 0.01) * np.cos(2 * np.pi * 180 * tau))[:, None] * np.asarray(amp)[None, :]
        elif lo < len(t):
            out[lo] += np.asarray(amp) * min(1.0, 0.015 * rate)
    return out


def sensor_table(sc: Scenario, rate: float, rng: np.random.Generator) -> pa.Table:
    s, t = sample_times(sc, rate, rng)
    n = len(t)
    dt = np.diff(t, prepend=t[0] - 1.0 / rate)
    motion = sc.motion(t)
    cols: dict[str, np.ndarray] = {"t": s}

    # Heaters: the control loop's thermistor state, interpolated, plus wiring faults and ADC noise.
    cols["hotend_target"] = sc.target(sc.hotend_target, t)
    cols["bed_target"] = sc.target(sc.bed_target, t)
    step = np.clip(np.searchsorted(sc.control_t, t, side="right") - 1, 0, len(sc.control_t) - 1)
    hot = np.interp(t, sc.control_t, sc.hotend.sensor) + sc.fault.reading_offset(t) + rng.normal(0, 0.12, n)
    hot = np.where(sc.fault.open_circuit(t), -15.0 + rng.normal(0, 0.05, n), hot)
    cols["hotend_temp"] = hot
    cols["bed_temp"] = np.interp(t, sc.control_t, sc.bed.sensor) + rng.normal(0, 0.08, n)
    cols["hotend_duty"] = sc.hotend.duty[step]
    cols["bed_duty"] = sc.bed.duty[step]

    # Part fan: command and tachometer (pulses counted over a window, so the reading is quantized).
    cols["fan_cmd"] = sc.fan_command(t)
    rpm = sc.fan_max_rpm * sc.fan_speed(t) * (1 + rng.normal(0, 0.01, n))
    cols["fan_rpm"] = np.maximum(np.round(rpm / 30.0) * 30.0, 0.0)

    # Extruder: motor load from the commanded flow, stiffer when cold, harder through a clog.
    commanded = motion.filament
    fed = filament_actual(sc.fault, t, commanded)
    q = np.abs(np.diff(commanded, prepend=commanded[0])) / dt * FILAMENT_AREA
    target = np.where(cols["hotend_target"] > 0, cols["hotend_target"], 210.0)
    viscosity = np.exp(np.clip(0.02 * (target - hot), -0.7, 1.5))
    restriction = sc.fault.restriction(t)
    load = 0.12 + 0.88 * (q / LOAD_REFERENCE_FLOW) ** 0.6 * viscosity * (1 + 3 * restriction)
    if "grind_hz" in sc.fault.details:  # a blocked nozzle: the drive gear slips tooth by tooth
        phase = (t * float(sc.fault.details["grind_hz"])) % 1.0
        grinding = (restriction >= 1.0) & (q > 0.1)
        load = np.where(grinding, (2.5 + 2.0 * sc.fault.severity) * (0.6 + 0.4 * phase), load)
    load = np.where(sc.fault.filament_present(t), load, 0.12 + 0.4 * (load - 0.12))
    cols["extruder_load"] = np.clip(load + rng.normal(0, 0.02, n), 0.0, 10.0)

    # Accelerometer: the mean acceleration over each sample (velocity change per sample), gravity,
    # resonance ringing, impacts, vibration of a loose part, noise; quantized like the ADXL345.
    vel = motion.vel[:, :3]
    accel = np.diff(vel, axis=0, prepend=vel[:1]) / dt[:, None]
    for k, (freq, zeta) in enumerate(sc.resonances):
        accel[:, k] += _ringing(accel[:, k], rate, freq, zeta)
    accel += _knocks(sc, t, rate)
    noise = np.sqrt(120.0**2 + sc.fault.vibration(t) ** 2)
    accel += rng.normal(0, 1, (n, 3)) * noise[:, None]
    accel[:, 2] += GRAVITY
    for k, axis in enumerate("xyz"):
        cols[f"accel_{axis}"] = np.clip(np.round(accel[:, k] / ACCEL_LSB) * ACCEL_LSB, -4.9e5, 4.9e5)

    for k, axis in enumerate("xyz"):
        cols[axis] = motion.pos[:, k]
    cols["e"] = fed - fed[0] if n else fed
    cols["filament_present"] = sc.fault.filament_present(t).astype(np.int8)
    cols["layer"] = motion.layer.astype(np.int32)
    arrays = []
    for field in SENSOR_SCHEMA:
        values = cols[field.name]
        if field.name in ROUNDING:
            values = np.round(values, ROUNDING[field.name]) + 0.0  # + 0.0: no "-0" in the CSV
        elif field.name.startswith("accel_"):
            values = np.round(values, 1) + 0.0
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=SENSOR_SCHEMA)


def add_glitches(table: pa.Table, rate: float, rng: np.random.Generator) -> tuple[pa.Table, dict[str, Any]]:
    """A few duplicated rows, one block written out of order and one gap, as real loggers do."""
    n = table.num_rows
    if n < 40:
        return table, {}
    t = table.column("t").to_numpy()
    index = np.arange(n)
    gap_len = max(2, int(rng.uniform(1.0, 5.0) * rate))
    gap_len = min(gap_len, n // 5)
    gap_at = int(rng.integers(n // 5, n - n // 5 - gap_len))
    block = max(2, min(int(0.5 * rate), n // 10))
    swap_at = int(rng.integers(n // 10, n // 5))
    index = np.concatenate([index[:swap_at], index[swap_at + block : swap_at + 2 * block],
                            index[swap_at : swap_at + block], index[swap_at + 2 * block :]])  # fmt: skip
    index = index[(index < gap_at) | (index >= gap_at + gap_len)]
    dup = np.sort(rng.choice(len(index), size=min(8, len(index)), replace=False))
    index = np.insert(index, dup, index[dup])
    notes = {
        "gap": [float(t[gap_at]), float(t[gap_at + gap_len - 1])],
        "out_of_order": [float(t[swap_at]), float(t[swap_at + 2 * block - 1])],
        "duplicates": sorted({float(t[i]) for i in index[dup]}),
    }
    return table.take(pa.array(index)), notes
