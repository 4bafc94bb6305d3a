"""Faults: when they start, how bad they are, and what they do to the physics, as functions of time.

One :class:`FaultModel` per run (``None`` type for a clean run). Every effect is a vectorized
function of timeline time, so the thermal loop (control rate), the sensor rows, the frames and the
audio all see the same fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from threedpai.kinematics import Kinematics
from threedpai.runs import FaultType

# Faults that end the print badly at any severity, and those that do from this severity on.
ALWAYS_FAILED = {FaultType.CLOG_FULL, FaultType.LAYER_SHIFT, FaultType.ADHESION_LOSS}
FAILED_FROM = {
    FaultType.CLOG_PARTIAL: 0.5,
    FaultType.FAN_FAILURE: 0.6,
    FaultType.OVER_EXTRUSION: 0.5,
    FaultType.UNDER_EXTRUSION: 0.5,
}


@dataclass
class FaultModel:
    type: FaultType | None = None
    onset: float = np.inf
    severity: float = 0.0
    details: dict[str, float | str] = field(default_factory=dict)
    knocks: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # t, ax, ay, az (mm/s^2 impulse)
    glitches: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # t, duration, °C

    def _ramp(self, t: np.ndarray, seconds: float) -> np.ndarray:
        return np.clip((t - self.onset) / seconds, 0.0, 1.0) if seconds > 0 else (t >= self.onset).astype(float)

    def _is(self, *types: FaultType) -> bool:
        return self.type in types

    def flow(self, t: np.ndarray) -> np.ndarray:
        """Filament actually fed per filament commanded."""
        d = self.details
        if self._is(FaultType.CLOG_PARTIAL):
            return 1.0 - 0.7 * float(d["restriction"]) * self._ramp(t, float(d["ramp_s"]))
        if self._is(FaultType.CLOG_FULL):
            return 1.0 - self._ramp(t, float(d["choke_s"]))
        if self._is(FaultType.OVER_EXTRUSION, FaultType.UNDER_EXTRUSION):
            return 1.0 + float(d["flow_change"]) * self._ramp(t, 2.0)
        return np.ones_like(t)

    def restriction(self, t: np.ndarray) -> np.ndarray:
        """How much harder the extruder pushes, 0 (free) to 1 (blocked)."""
        if self._is(FaultType.CLOG_PARTIAL):
            return float(self.details["restriction"]) * self._ramp(t, float(self.details["ramp_s"]))
        if self._is(FaultType.CLOG_FULL):
            return self._ramp(t, float(self.details["choke_s"]))
        return np.zeros_like(t)

    def heater_power(self, t: np.ndarray) -> np.ndarray:
        if self._is(FaultType.HEATER_WEAK):
            return 1.0 - float(self.details["power_loss"]) * self._ramp(t, float(self.details["ramp_s"]))
        return np.ones_like(t)

    def heater_stuck(self, t: np.ndarray) -> np.ndarray:
        return (t >= self.onset) if self.details.get("mode") == "heater_stuck_on" else np.zeros(len(t), bool)

    def sensor_coupling(self, t: np.ndarray) -> np.ndarray:
        if self.details.get("mode") == "thermistor_detached":
            return 1.0 - float(self.details["decoupling"]) * self._ramp(t, 8.0)
        return np.ones_like(t)

    def reading_offset(self, t: np.ndarray) -> np.ndarray:
        """Thermistor wiring: short spikes and drops while the connection is intermittent."""
        out = np.zeros_like(t)
        for start, duration, amp in self.glitches:
            lo, hi = np.searchsorted(t, [start, start + duration])
            out[lo:hi] += amp
        return out

    def open_circuit(self, t: np.ndarray) -> np.ndarray:
        opens = self.details.get("open_circuit_s")
        return t >= float(opens) if opens is not None else np.zeros(len(t), bool)

    def fan(self, t: np.ndarray) -> np.ndarray:
        """Fan speed per speed commanded."""
        if self._is(FaultType.FAN_FAILURE):
            return 1.0 - (1.0 - float(self.details["residual"])) * self._ramp(t, 3.0)
        return np.ones_like(t)

    def filament_present(self, t: np.ndarray) -> np.ndarray:
        return (t < self.onset) if self._is(FaultType.FILAMENT_RUNOUT) else np.ones(len(t), bool)

    def vibration(self, t: np.ndarray) -> np.ndarray:
        """Extra accelerometer noise (mm/s^2 rms): a loose part rattling under the nozzle."""
        if self._is(FaultType.ADHESION_LOSS):
            return (300.0 + 2500.0 * self.severity) * self._ramp(t, 60.0)
        return np.zeros_like(t)

    @property
    def pause_s(self) -> float:
        """Timeline time the printer stops moving by itself (runout pause), inf if never."""
        return float(self.details["pause_s"]) if "pause_s" in self.details else np.inf

    @property
    def cancel_s(self) -> float:
        return float(self.details["cancel_s"]) if "cancel_s" in self.details else np.inf

    def frame_offset(self, t: float, layer: int) -> tuple[float, float, float]:
        """(dx, dy, rotation in degrees) of what was printed at ``t`` relative to where it was meant to go."""
        d = self.details
        if self._is(FaultType.LAYER_SHIFT) and t >= self.onset:
            return float(d["shift_x_mm"]), float(d["shift_y_mm"]), 0.0
        if self._is(FaultType.ADHESION_LOSS) and t >= self.onset:
            k = min((t - self.onset) / 120.0, 1.0)
            return float(d["drift_x_mm"]) * k, float(d["drift_y_mm"]) * k, float(d["rotation_deg"]) * k
        return 0.0, 0.0, 0.0

    def outcome(self, shutdown: bool) -> str:
        if shutdown or self._is(FaultType.FILAMENT_RUNOUT):
            return "aborted"
        if self.type in ALWAYS_FAILED:
            return "failed"
        if self.type in FAILED_FROM and self.severity >= FAILED_FROM[self.type]:
            return "failed"
        return "success"


def _poisson_times(rng: np.random.Generator, start: float, end: float, rate: float) -> np.ndarray:
    if end <= start or rate <= 0:
        return np.zeros(0)
    count = rng.poisson(rate * (end - start))
    return np.sort(rng.uniform(start, end, count))


def plan_fault(
    fault: FaultType | None, kin: Kinematics, rng: np.random.Generator, severity: float | None = None
) -> FaultModel:
    """Picks onset, severity (unless given) and the fault's own parameters for one run."""
    if fault is None:
        return FaultModel()
    total = max(kin.total, 1.0)
    # Onsets fall while the part prints (not during homing or the heat-up).
    printing = np.flatnonzero(kin.kind == "print")
    first, last = (kin.t_start[printing[0]], kin.t_end[printing[-1]]) if len(printing) else (0.0, total)
    sev = float(rng.uniform(0.7, 1.0) if fault is FaultType.THERMAL_RUNAWAY else rng.uniform(0.15, 1.0))
    if severity is not None:
        if not 0.0 <= severity <= 1.0:
            raise ValueError(f"severity must be 0 to 1, not {severity}")
        sev = float(severity)
    onset = float(first + rng.uniform(0.1, 0.7) * (last - first))
    d: dict[str, float | str] = {}
    knocks = np.zeros((0, 4))
    glitches = np.zeros((0, 3))
    if fault is FaultType.CLOG_PARTIAL:
        ramp = min(float(rng.uniform(10, 90)), 0.5 * max(last - onset, 1.0))  # grown before the print ends
        d = {"restriction": round(0.25 + 0.6 * sev, 3), "ramp_s": round(ramp, 1)}
    elif fault is FaultType.CLOG_FULL:
        d = {
            "choke_s": round(float(rng.uniform(4, 20)) * (1.2 - sev), 2),
            "grind_hz": round(float(rng.uniform(2, 6)), 2),
        }
    elif fault is FaultType.THERMAL_RUNAWAY:
        if rng.random() < 0.5:
            d = {"mode": "heater_stuck_on"}
        else:
            d = {"mode": "thermistor_detached", "decoupling": round(0.5 + 0.45 * sev, 3)}
    elif fault is FaultType.THERMISTOR_FAULT:
        times = _poisson_times(rng, onset, total, 0.03 + 0.3 * sev)
        dur = rng.uniform(0.05, 1.5, len(times))
        amp = rng.choice([-1.0, 1.0], len(times)) * rng.uniform(5, 15 + 45 * sev, len(times))
        glitches = np.stack([times, dur, amp], axis=1)
        d = {"glitches": len(times)}
        if sev >= 0.75:
            d["open_circuit_s"] = round(float(min(onset + rng.uniform(10, 120), total)), 3)
    elif fault is FaultType.HEATER_WEAK:
        d = {"power_loss": round(0.35 + 0.4 * sev, 3), "ramp_s": round(float(rng.uniform(10, 120)), 1)}
    elif fault is FaultType.LAYER_SHIFT:
        onset = _during_xy_move(kin, rng, onset)
        axis = "x" if rng.random() < 0.5 else "y"
        mm = float(rng.choice([-1.0, 1.0]) * (0.5 + 7.5 * sev))
        d = {"axis": axis, "shift_x_mm": round(mm, 3) if axis == "x" else 0.0}
        d["shift_y_mm"] = round(mm, 3) if axis == "y" else 0.0
        amp = (15_000.0 + 45_000.0 * sev) * np.sign(mm)
        knocks = np.array([[onset, amp if axis == "x" else 0.0, amp if axis == "y" else 0.0, 0.2 * abs(amp)]])
    elif fault is FaultType.FILAMENT_RUNOUT:
        pause = onset + float(rng.uniform(0.2, 1.0))
        d = {"pause_s": round(pause, 3), "cancel_s": round(pause + float(rng.uniform(20, 120)), 3)}
    elif fault is FaultType.ADHESION_LOSS:
        times = _poisson_times(rng, onset, total, 0.1 + 0.5 * sev)
        amps = rng.normal(0, 3000 + 8000 * sev, (len(times), 3))
        knocks = np.column_stack([times, amps])
        angle = rng.uniform(0, 2 * np.pi)
        drift = 1.0 + 9.0 * sev
        d = {
            "drift_x_mm": round(drift * float(np.cos(angle)), 3),
            "drift_y_mm": round(drift * float(np.sin(angle)), 3),
            "rotation_deg": round(float(rng.normal(0, 4 + 10 * sev)), 2),
            "lift_mm": round(0.3 + 2.0 * sev, 2),
        }
    elif fault is FaultType.FAN_FAILURE:
        d = {"residual": round(0.3 * (1.0 - sev), 3)}
    elif fault in (FaultType.OVER_EXTRUSION, FaultType.UNDER_EXTRUSION):
        if rng.random() < 0.4:  # a calibration error is there from the first layer
            onset = 0.0
        change = 0.08 + (0.3 if fault is FaultType.OVER_EXTRUSION else 0.4) * sev
        d = {"flow_change": round(change if fault is FaultType.OVER_EXTRUSION else -change, 3)}
    return FaultModel(fault, onset, round(sev, 3), d, knocks, glitches)


def _during_xy_move(kin: Kinematics, rng: np.random.Generator, near: float) -> float:
    """A time inside an XY move close to ``near`` (a step is lost while the axis moves)."""
    xy = np.flatnonzero((np.abs(kin.delta[:, 0]) + np.abs(kin.delta[:, 1]) > 1.0) & (kin.t_start >= near))
    if len(xy) == 0:
        return near
    i = xy[0]
    return float(kin.t_start[i] + rng.uniform(0.2, 0.8) * (kin.t_end[i] - kin.t_start[i]))
