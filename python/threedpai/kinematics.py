"""Where the toolhead is, how fast it goes and how hard it accelerates, at any time of a planned timeline.

Each move is Klipper's trapezoid: accelerate at ``accel`` for ``accel_t``, cruise, decelerate for
``decel_t``; all four axes move in proportion to the path length. Between moves the toolhead rests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from threedpai.timeline import PlannedTimeline

AXES = ("x", "y", "z", "e")


@dataclass
class MotionState:
    """Vectorized state at query times: positions (n, 4: x, y, z, e as planned), velocity (n, 4),
    filament (commanded filament fed since the start, G92 resets ignored), layer, move index."""

    pos: np.ndarray
    vel: np.ndarray
    filament: np.ndarray
    layer: np.ndarray
    move: np.ndarray


class Kinematics:
    """Built from a planned timeline, or from its moves table as ingest stores it (raw/moves)."""

    def __init__(self, timeline: PlannedTimeline | pa.Table) -> None:
        t = timeline.table if isinstance(timeline, PlannedTimeline) else timeline
        col = {name: t.column(name).to_numpy() for name in ("t_start", "accel_t", "cruise_t", "decel_t")}
        self.t_start = col["t_start"]
        self.accel_t, self.cruise_t, self.decel_t = col["accel_t"], col["cruise_t"], col["decel_t"]
        self.t_end = self.t_start + self.accel_t + self.cruise_t + self.decel_t
        self.v0 = t.column("start_v").to_numpy()
        self.vc = t.column("cruise_v").to_numpy()
        self.acc = t.column("accel").to_numpy()
        self.start = np.stack([t.column(f"start_{a}").to_numpy() for a in AXES], axis=1)
        self.delta = np.stack([t.column(f"end_{a}").to_numpy() for a in AXES], axis=1) - self.start
        distance = t.column("distance").to_numpy()
        # Unit vector per unit of path length; 0 for dwells and waits.
        self.dir = np.divide(self.delta, distance[:, None], out=np.zeros_like(self.delta), where=distance[:, None] > 0)
        self.distance = distance
        self.s_accel = self.v0 * self.accel_t + 0.5 * self.acc * self.accel_t**2
        self.s_cruise = self.s_accel + self.vc * self.cruise_t
        # Filament fed before each move (signed: retractions count back).
        de = self.delta[:, 3]
        self.filament_before = np.concatenate([[0.0], np.cumsum(de)[:-1]]) if len(de) else np.zeros(0)
        layer = t.column("layer").to_numpy(zero_copy_only=False)
        known = ~np.isnan(layer)
        # Moves before the first layer marker belong to layer 0; later gaps keep the last layer.
        last_known = np.maximum.accumulate(np.where(known, np.arange(len(layer)), -1)) if len(layer) else layer
        self.layer = np.where(last_known >= 0, np.nan_to_num(layer)[np.maximum(last_known, 0)], 0).astype(np.int64)
        kinds = t.column("kind").combine_chunks()
        if pa.types.is_dictionary(kinds.type):
            self.kind = np.asarray(kinds.dictionary.to_pylist(), dtype=object)[kinds.indices.to_numpy()]
        else:
            self.kind = np.asarray(kinds.to_pylist(), dtype=object)
        if isinstance(timeline, PlannedTimeline):
            self.total = float(timeline.summary["total_time_s"])
        else:
            self.total = float(self.t_end.max()) if len(self.t_end) else 0.0

    @property
    def moves(self) -> int:
        return len(self.t_start)

    def state(self, t: np.ndarray) -> MotionState:
        t = np.asarray(t, dtype=np.float64)
        if self.moves == 0:
            z = np.zeros((len(t), 4))
            return MotionState(z, z.copy(), np.zeros(len(t)), np.zeros(len(t), np.int64), np.full(len(t), -1))
        i = np.searchsorted(self.t_start, t, side="right") - 1
        before = i < 0
        i = np.maximum(i, 0)
        ta, tc, td = self.accel_t[i], self.cruise_t[i], self.decel_t[i]
        tau = np.clip(t - self.t_start[i], 0.0, ta + tc + td)
        a, v0, vc = self.acc[i], self.v0[i], self.vc[i]
        u = tau - ta - tc
        in_accel, in_cruise = tau < ta, tau < ta + tc
        s = np.where(in_accel, v0 * tau + 0.5 * a * tau**2, np.where(in_cruise, self.s_accel[i] + vc * (tau - ta), 0))
        s = np.where(in_cruise, s, self.s_cruise[i] + vc * u - 0.5 * a * u**2)
        speed = np.where(in_accel, v0 + a * tau, np.where(in_cruise, vc, vc - a * u))
        moving = (t >= self.t_start[i]) & (t < self.t_end[i]) & ~before
        speed = np.where(moving, np.maximum(speed, 0.0), 0.0)
        dist = self.distance[i]
        frac = np.divide(s, dist, out=np.zeros_like(s), where=dist > 0)
        frac = np.where(before, 0.0, np.clip(frac, 0.0, 1.0))
        pos = self.start[i] + frac[:, None] * self.delta[i]
        vel = speed[:, None] * self.dir[i]
        filament = self.filament_before[i] + frac * self.delta[i, 3]
        layer = np.where(before, 0, self.layer[i])
        return MotionState(pos, vel, filament, layer, np.where(before, -1, i))

    def layer_ends(self) -> tuple[np.ndarray, np.ndarray]:
        """(layer, time its last move ends) for every layer, in order."""
        if self.moves == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        last = np.flatnonzero(np.diff(self.layer, append=self.layer[-1] + 1) != 0)
        return self.layer[last], self.t_end[last]
