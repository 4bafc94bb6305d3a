"""One simulated print before any file is written: timeline, commands, fault, clock and heater traces.

Time here is the timeline's clock (0 = first G-code line). The printer heats up before that, for
``preheat_s`` seconds of negative time: the planner gives heater waits (M109/M190) no duration, so
the simulation reaches the first waited-for targets first and the print starts hot, as a printer's
start sequence would. The sensor log covers the heat-up too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from threedpai import gcode
from threedpai.kinematics import Kinematics, MotionState
from threedpai.runs import SensorClock
from threedpai.simulate.faults import FaultModel
from threedpai.simulate.thermal import (
    BED,
    HOTEND,
    HeaterInputs,
    HeaterModel,
    HeaterState,
    HeaterTrace,
    filament_sink,
    run_heater,
)
from threedpai.timeline import PlannedTimeline

CONTROL_DT = 0.1  # s: heater control loop (Klipper's PID runs at each ADC report, ~3 Hz; 10 Hz is finer)
FILAMENT_AREA = np.pi * (1.75 / 2) ** 2
DEFAULT_TARGETS = (210.0, 60.0)  # a file without heater commands relies on its printer's start macro
FAN_TAU = 0.4  # s, part fan spin-up
RUNAWAY_WATCH_S = 300.0  # a stuck heater keeps heating after the print; the log goes on until the shutdown


@dataclass(frozen=True)
class Steps:
    """A piecewise-constant command (heater target, fan) on the timeline clock."""

    times: np.ndarray
    values: np.ndarray
    initial: float

    def at(self, t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.times, t, side="right") - 1
        return np.where(i >= 0, self.values[np.maximum(i, 0)] if len(self.values) else self.initial, self.initial)

    def first_order(self, t: np.ndarray, tau: float) -> np.ndarray:
        """The exact response of a first-order lag (time constant ``tau``) to the steps, at sorted ``t``."""
        out = np.empty_like(t)
        edges = np.concatenate([[-np.inf], self.times, [np.inf]])
        levels = np.concatenate([[self.initial], self.values])
        y = self.initial
        for k, level in enumerate(levels):
            lo, hi = np.searchsorted(t, [edges[k], edges[k + 1]])
            start = edges[k] if np.isfinite(edges[k]) else 0.0
            out[lo:hi] = level + (y - level) * np.exp(-np.maximum(t[lo:hi] - start, 0.0) / tau)
            if np.isfinite(edges[k + 1]):
                y = level + (y - level) * np.exp(-max(edges[k + 1] - start, 0.0) / tau)
        return out


@dataclass(frozen=True)
class Clock:
    offset_s: float
    drift_ppm: float

    def to_sensor(self, t: np.ndarray | float) -> np.ndarray:
        return self.offset_s + (1.0 + self.drift_ppm * 1e-6) * np.asarray(t)

    def to_timeline(self, s: np.ndarray | float) -> np.ndarray:
        return (np.asarray(s) - self.offset_s) / (1.0 + self.drift_ppm * 1e-6)

    def label(self) -> SensorClock:
        return SensorClock(offset_s=self.offset_s, drift_ppm=self.drift_ppm)


def commands(path: str, tl: PlannedTimeline) -> tuple[Steps, Steps, Steps, dict[str, float]]:
    """Hotend target, bed target and fan command over time, and the targets the print starts at."""
    table = gcode.parse(path).select(["line", "command", "S", "R", "P", "T"])
    names = pc.cast(table.column("command"), pa.string())
    wanted = pc.is_in(names, value_set=pa.array(["M104", "M109", "M140", "M190", "M106", "M107"]))
    rows = table.filter(pc.fill_null(wanted, False))
    cmd = np.asarray(pc.cast(rows.column("command"), pa.string()).to_pylist(), dtype=object)
    line = rows.column("line").to_numpy()

    def num(name: str) -> np.ndarray:
        return rows.column(name).to_numpy(zero_copy_only=False).astype(np.float64)

    s, r, p, tool = num("S"), num("R"), num("P"), num("T")
    value = np.where(np.isnan(s), r, s)
    first_tool = np.isnan(tool) | (tool == 0)
    when = tl.at_line(line)[0] if len(line) else np.zeros(0)

    def steps(mask: np.ndarray, vals: np.ndarray) -> Steps:
        keep = mask & ~np.isnan(vals)
        order = np.argsort(when[keep], kind="stable")
        return Steps(when[keep][order], vals[keep][order], 0.0)

    hot = np.isin(cmd, ["M104", "M109"]) & first_tool
    bed = np.isin(cmd, ["M140", "M190"])
    fan_main = np.isin(cmd, ["M106", "M107"]) & (np.isnan(p) | (p == 0))
    fan_value = np.where(cmd == "M107", 0.0, np.where(np.isnan(s), 255.0, s) / 255.0).clip(0, 1)
    start: dict[str, float] = {}
    for key, mask, wait, default in (
        ("hotend", hot, "M109", DEFAULT_TARGETS[0]),
        ("bed", bed, "M190", DEFAULT_TARGETS[1]),
    ):
        set_to = value[mask & (value > 0)]
        waited = value[mask & (cmd == wait) & (value > 0)]
        start[key] = float(waited[0] if len(waited) else (set_to[0] if len(set_to) else default))
    hotend_steps, bed_steps = steps(hot, value), steps(bed, value)
    hotend_steps = Steps(hotend_steps.times, hotend_steps.values, start["hotend"])
    bed_steps = Steps(bed_steps.times, bed_steps.values, start["bed"])
    return hotend_steps, bed_steps, steps(fan_main, fan_value), start


@dataclass
class Scenario:
    kin: Kinematics
    fault: FaultModel
    hotend_target: Steps
    bed_target: Steps
    fan_cmd: Steps
    fan_max_rpm: float
    ambient: float
    preheat_s: float
    control_t: np.ndarray
    hotend: HeaterTrace
    bed: HeaterTrace
    shutdown_s: float
    shutdown_reason: str
    data_end: float
    clock: Clock
    resonances: list[tuple[float, float]]  # (Hz, damping ratio) of the x, y, z toolhead resonances

    @property
    def motion_end(self) -> float:
        """The printer stops moving: a runout pause or a shutdown."""
        return min(self.fault.pause_s, self.shutdown_s)

    def commanded(self, t: np.ndarray) -> np.ndarray:
        """The timeline time whose commands are in force: none run while the printer is paused."""
        return np.minimum(t, self.fault.pause_s)

    def target(self, steps: Steps, t: np.ndarray) -> np.ndarray:
        return np.where(t >= self.fault.cancel_s, 0.0, steps.at(self.commanded(t)))

    def motion(self, t: np.ndarray) -> MotionState:
        state = self.kin.state(np.minimum(t, self.motion_end))
        state.vel[t >= self.motion_end] = 0.0
        return state

    def fan_speed(self, t: np.ndarray) -> np.ndarray:
        """Part-fan speed as a fraction of full (below 10 % command the fan stalls)."""
        cmd = self.fan_cmd.first_order(self.commanded(t), FAN_TAU)
        return np.where(self.fan_command(t) < 0.1, 0.0, cmd) * self.fault.fan(t)

    def fan_command(self, t: np.ndarray) -> np.ndarray:
        return np.where(t >= self.fault.cancel_s, 0.0, self.fan_cmd.at(self.commanded(t)))


def filament_actual(sc_fault: FaultModel, t: np.ndarray, commanded: np.ndarray) -> np.ndarray:
    """Filament really fed at sorted times ``t``: the commanded increments scaled by the fault's flow."""
    if len(t) == 0:
        return commanded
    mid = np.concatenate([[t[0]], 0.5 * (t[1:] + t[:-1])])
    step = np.diff(commanded, prepend=commanded[0]) * sc_fault.flow(mid)
    return commanded[0] + np.cumsum(step)


def _preheat(
    start: dict[str, float], ambient: float, hotend: HeaterModel, bed: HeaterModel, rng: np.random.Generator
) -> float:
    """Seconds the printer takes to reach its starting targets (both within 1 °C), plus a short soak."""
    n = int(1200 / CONTROL_DT)
    cold = HeaterState(ambient, ambient)
    h, _ = run_heater(hotend, HeaterInputs.nominal(np.full(n, start["hotend"])), CONTROL_DT, ambient, cold)
    b, _ = run_heater(bed, HeaterInputs.nominal(np.full(n, start["bed"])), CONTROL_DT, ambient, cold)
    reached = [np.flatnonzero(tr.sensor >= target - 1.0) for tr, target in ((h, start["hotend"]), (b, start["bed"]))]
    k = max(int(r[0]) if len(r) else n for r in reached)
    return round(k * CONTROL_DT + float(rng.uniform(2.0, 10.0)), 1)


def build(path: str, tl: PlannedTimeline, kin: Kinematics, fault: FaultModel, rng: np.random.Generator) -> Scenario:
    hot_steps, bed_steps, fan_steps, start = commands(path, tl)
    ambient = round(float(rng.uniform(18.0, 28.0)), 2)
    hotend, bed = HOTEND.varied(rng), BED.varied(rng)
    preheat = _preheat(start, ambient, hotend, bed, rng)
    end = kin.total + (RUNAWAY_WATCH_S if fault.details.get("mode") == "heater_stuck_on" else 5.0)
    if np.isfinite(fault.cancel_s):  # paused, then cancelled: the planned end never comes
        end = fault.cancel_s + 3.0
    t = np.arange(-preheat, end + CONTROL_DT, CONTROL_DT)
    sc = Scenario(
        kin, fault, hot_steps, bed_steps, fan_steps, round(float(rng.uniform(4500, 7500)), 0), ambient, preheat,
        t, _empty_trace(), _empty_trace(), np.inf, "", end, Clock(0.0, 0.0),
        [(round(float(rng.uniform(lo, hi)), 1), round(float(rng.uniform(0.05, 0.12)), 3))
         for lo, hi in ((40, 65), (30, 55), (80, 120))],
    )  # fmt: skip
    motion = sc.motion(t)
    filament = filament_actual(fault, t, motion.filament)
    flow = np.diff(filament, prepend=filament[0]) / CONTROL_DT * FILAMENT_AREA
    airflow = sc.fan_speed(t)
    h_in = HeaterInputs(
        sc.target(hot_steps, t), airflow, filament_sink(flow), fault.heater_power(t), fault.heater_stuck(t),
        fault.sensor_coupling(t), fault.reading_offset(t), fault.open_circuit(t),
    )  # fmt: skip
    b_in = HeaterInputs.nominal(sc.target(bed_steps, t))
    b_in.airflow = airflow
    cold = HeaterState(ambient, ambient)
    # The print starts from the preheated state: the loops run from the log's first sample.
    sc.hotend, _ = run_heater(hotend, h_in, CONTROL_DT, ambient, cold)
    sc.bed, _ = run_heater(bed, b_in, CONTROL_DT, ambient, cold)
    for tr in (sc.hotend, sc.bed):
        if tr.shutdown >= 0 and t[tr.shutdown] < sc.shutdown_s:
            sc.shutdown_s, sc.shutdown_reason = float(t[tr.shutdown]), tr.reason
    sc.data_end = min(end, sc.shutdown_s + 1.0)
    drift = float(np.clip(rng.normal(0.0, 40.0), -150.0, 150.0))
    offset = (1.0 + drift * 1e-6) * preheat + float(rng.uniform(0.5, 20.0))
    sc.clock = Clock(round(offset, 6), round(drift, 3))
    return sc


def _empty_trace() -> HeaterTrace:
    return HeaterTrace(np.zeros(0), np.zeros(0), np.zeros(0), -1, "")
