"""The aligned view of ingested runs: every modality on the timeline's clock (docs/align.md).

>>> report = align_dataset("dataset", rate_hz=10)     # every ingested run, resumable
>>> tables = align_run("dataset", "run-00003")       # one run: {"clock": ..., "moves": ..., ...}

For each run, from ``raw/`` (written by ``threedpai ingest``) to
``aligned/<table>/scenario=<s>/run_id=<id>/`` (the scenario ingest filed the run under):

- ``clock``: the map from the sensor clock to the timeline's, estimated from the reported toolhead
  position against the planned one (``align.estimate_clock``), its residual, and, for simulated
  runs, the true map and the estimate's error;
- ``moves`` and ``layers``: statistics of every sensor channel over each planned move and layer,
  with vibration (RMS, peak, band shares), the motion stream's deviation from the plan, audio
  energy and camera frames attached;
- ``uniform``: every channel on a uniform grid of the timeline's clock, with the planned layer,
  commanded filament and speed beside what the sensors saw;
- ``frames``: each camera frame with its timeline time, move and layer.

A run is aligned all or nothing (its tables are staged, then moved into place, its marker last)
and only again when its raw tables or the parameters change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import wave
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from threedpai import __version__, align
from threedpai.engine import completed
from threedpai.errors import ThreedpaiError
from threedpai.ingest import write
from threedpai.ingest.write import dump, run_folders, write_table
from threedpai.kinematics import Kinematics

PathLike = str | os.PathLike[str]
TABLES = ("clock", "moves", "layers", "uniform", "frames")
# Channels that hold a state until the next sample (targets, flags, counters): never interpolated.
STATES = ("hotend_target", "bed_target", "fan_cmd", "filament_present", "layer")
MOVE_STATS = ("mean", "min", "max", "std")
LAYER_STATS = ("mean", "min", "max", "std", "first", "last", "slope")
VIB_BANDS = {"band_low": (0.0, 20.0), "band_mid": (20.0, 100.0), "band_high": (100.0, np.inf)}
AUDIO_BANDS = ((50.0, 200.0), (200.0, 1000.0), (1000.0, 4000.0))
# The estimate is used only when it is this good: RMS of its windows within this share of a sample.
MAX_RESIDUAL = 0.25
MIN_WINDOWS = 8
FRAME_LAG_S = 0.02  # how long before its time stamp a frame's picture is attributed (see _frames)
CLOCK_SCHEMA = pa.schema(
    [
        ("method", pa.string()),  # estimated | metadata | identity: which map the tables use
        ("offset_s", pa.float64()),  # t_timeline = offset_s + scale * t_sensor
        ("scale", pa.float64()),
        ("drift_ppm", pa.float64()),
        ("signal", pa.string()),  # the sensor channel matched against the plan
        ("est_offset_s", pa.float64()),
        ("est_scale", pa.float64()),
        ("est_drift_ppm", pa.float64()),
        ("residual_rms_s", pa.float64()),
        ("windows", pa.int32()),
        ("true_offset_s", pa.float64()),  # simulated runs: the map the simulator used
        ("true_drift_ppm", pa.float64()),
        ("est_error_s", pa.float64()),  # largest difference of estimate and truth over the log
        ("note", pa.string()),
        ("rate_hz", pa.float64()),
        ("sensor_rate_hz", pa.float64()),
    ]
)


class AlignError(ThreedpaiError, ValueError):
    """A run that cannot be aligned (missing raw tables)."""


@dataclass
class RunAligned:
    run_id: str
    status: str  # aligned | skipped | failed
    reason: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    clock: dict[str, Any] = field(default_factory=dict)


@dataclass
class AlignReport:
    dataset: Path
    runs: list[RunAligned] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"aligned": 0, "skipped": 0, "failed": 0}
        for r in self.runs:
            out[r.status] += 1
        return out


def _raw(dataset: Path, table: str, run_id: str) -> pa.Table | None:
    files = [f for folder in run_folders(dataset, "raw", table, run_id) for f in sorted(folder.glob("*.parquet"))]
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None


def _col(table: pa.Table, name: str) -> np.ndarray:
    c = table.column(name)
    return c.to_numpy().astype(np.float64) if c.null_count == 0 else c.to_numpy(zero_copy_only=False).astype(float)


def _sensor_channels(sensors: pa.Table) -> dict[str, np.ndarray]:
    return {n: _col(sensors, n) for n in sensors.column_names if n != "t"}


# -- the clock -------------------------------------------------------------------------------------


def _true_clock(run: dict[str, Any]) -> align.ClockFit | None:
    """The simulator's map, turned around: t_sensor = offset + (1 + d) t_timeline."""
    offset, drift = run.get("clock_offset_s"), run.get("clock_drift_ppm")
    if offset is None or drift is None:
        return None
    scale = 1.0 / (1.0 + drift * 1e-6)
    return align.ClockFit(-offset * scale, scale, 0.0, 0)


def _estimate(kin: Kinematics, t: np.ndarray, ch: dict[str, np.ndarray], rate: float) -> tuple[Any, str]:
    """(ClockFit or the reason there is none, signal used). The signal is the toolhead's XY speed:
    planned, and from the reported position's differences. Speed has sharp edges at every move,
    so its correlation peaks narrowly (position, smooth and repetitive layer after layer, left
    errors of tens of ms)."""
    if kin.moves == 0:
        return "no planned moves", ""
    if not ("x" in ch and "y" in ch):
        return "the sensors report no toolhead position (x, y)", ""
    good = ~(np.isnan(ch["x"]) | np.isnan(ch["y"]))
    ts, x, y = t[good], ch["x"][good], ch["y"][good]
    if len(ts) < 3 or not (np.std(x) > 0 or np.std(y) > 0):
        return "the reported toolhead position does not move", "xy_speed"
    grid_rate = min(2.0 * rate, 200.0)  # finer than the samples: sub-sample lags resolve better
    t_ref = np.arange(0.0, kin.total + 1.0 / grid_rate, 1.0 / grid_rate)
    pos = kin.state(t_ref).pos
    v_ref = np.hypot(np.diff(pos[:, 0]), np.diff(pos[:, 1])) * grid_rate
    v_obs = np.hypot(np.diff(x), np.diff(y)) / np.diff(ts)
    try:
        fit = align.estimate_clock(
            (t_ref[1:] + t_ref[:-1]) / 2, v_ref, (ts[1:] + ts[:-1]) / 2, v_obs, rate_hz=grid_rate, n_windows=32
        )
    except ValueError as e:
        return str(e), "xy_speed"
    return fit, "xy_speed"


def _clock(
    kin: Kinematics, t: np.ndarray, ch: dict[str, np.ndarray], rate: float, run: dict[str, Any]
) -> tuple[align.ClockFit, dict[str, Any]]:
    """The map to use and the facts stored in the clock table."""
    est, signal = _estimate(kin, t, ch, rate)
    truth = _true_clock(run)
    row: dict[str, Any] = {"signal": signal, "method": "", "note": None}
    if isinstance(est, align.ClockFit):
        row |= {"est_offset_s": est.offset, "est_scale": est.scale, "est_drift_ppm": est.drift_ppm,
                "residual_rms_s": est.residual_rms, "windows": est.n_windows}  # fmt: skip
    else:
        row["note"] = f"no estimate: {est}"
    usable = (
        isinstance(est, align.ClockFit) and est.n_windows >= MIN_WINDOWS and est.residual_rms <= MAX_RESIDUAL / rate
    )
    if usable:
        assert isinstance(est, align.ClockFit)
        fit, row["method"] = est, "estimated"
    elif truth is not None:
        fit, row["method"] = truth, "metadata"
    else:
        fit, row["method"] = align.ClockFit(0.0, 1.0, 0.0, 0), "identity"
    if truth is not None and isinstance(est, align.ClockFit) and len(t):
        span = np.array([t[0], t[-1]])
        row["est_error_s"] = float(np.max(np.abs(est.apply(span) - truth.apply(span))))
    if truth is not None:
        row |= {"true_offset_s": truth.offset, "true_drift_ppm": truth.drift_ppm}
    row |= {"offset_s": fit.offset, "scale": fit.scale, "drift_ppm": fit.drift_ppm}
    return fit, row


# -- tables ----------------------------------------------------------------------------------------


def _layer_intervals(kin: Kinematics) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(layer, start, end, first move): layers in print order tiling the timeline from each one's first move
    to the next one's (the last to the end of its last move). Moves before the first marker count
    to layer 0, as the planner's context has it."""
    if kin.moves == 0:
        return np.zeros(0, np.int32), np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    first = np.flatnonzero(np.r_[True, np.diff(kin.layer) != 0])
    starts = kin.t_start[first]
    ends = np.r_[starts[1:], kin.t_end[-1]]
    return kin.layer[first].astype(np.int32), starts, np.maximum(ends, starts), first


def _vibration(t: np.ndarray, ch: dict[str, np.ndarray], lo: np.ndarray, hi: np.ndarray, rate: float) -> dict:
    """Per interval: RMS and peak of the dynamic acceleration (each axis less its mean over the
    interval, so gravity and mounting offsets drop out) and the share of its energy per band."""
    n = len(lo)
    out = {k: np.full(n, np.nan) for k in ("accel_rms", "accel_peak", *VIB_BANDS)}
    axes = [ch[a] for a in ("accel_x", "accel_y", "accel_z") if a in ch]
    if not axes:
        return out
    acc = np.stack(axes, axis=1)
    for k in range(n):
        seg = acc[lo[k] : hi[k]]
        seg = seg[~np.isnan(seg).any(axis=1)]
        if len(seg) < 2:
            continue
        dyn = seg - seg.mean(axis=0)
        mag2 = (dyn**2).sum(axis=1)
        out["accel_rms"][k] = np.sqrt(mag2.mean())
        out["accel_peak"][k] = np.sqrt(mag2.max())
        power = (np.abs(np.fft.rfft(dyn, axis=0)) ** 2).sum(axis=1)
        freq = np.fft.rfftfreq(len(dyn), 1.0 / rate)
        total = power[1:].sum()
        for name, (f0, f1) in VIB_BANDS.items():
            band = (freq >= f0) & (freq < f1) & (freq > 0)
            out[name][k] = power[band].sum() / total if total > 0 else np.nan
    return out


def _motion_deviation(motion: pa.Table | None, kin: Kinematics) -> tuple[np.ndarray, np.ndarray] | None:
    """(t, XY distance of the motion stream from the planned path, mm) per motion sample."""
    if motion is None or motion.num_rows == 0 or kin.moves == 0:
        return None
    t = _col(motion, "t")
    planned = kin.state(t).pos
    return t, np.hypot(_col(motion, "x") - planned[:, 0], _col(motion, "y") - planned[:, 1])


def _max_over(dev: tuple[np.ndarray, np.ndarray] | None, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    if dev is None:
        return np.full(len(starts), np.nan)
    stats = align.aggregate(dev[0], {"dev": dev[1]}, starts, ends, stats=("count", "max"))
    return np.where(stats["dev_count"] > 0, stats["dev_max"], np.nan)


def _audio(dataset: Path, run_id: str, audio: pa.Table | None, fit: align.ClockFit, kin: Kinematics) -> dict:
    """Per move: audio samples, RMS and band energies, the WAV's clock mapped onto the timeline's."""
    if audio is None or audio.num_rows == 0 or kin.moves == 0:
        return {}
    row = audio.to_pylist()[0]
    path = dataset / "media" / run_id / Path(row["file"]).name
    if not path.is_file():
        return {}
    with wave.open(str(path), "rb") as w:
        width, channels, frames = w.getsampwidth(), w.getnchannels(), w.readframes(w.getnframes())
    if width != 2:
        return {}
    x = np.frombuffer(frames, "<i2").reshape(-1, channels).mean(axis=1) / 32768.0
    rate = float(row["sample_rate"]) / fit.scale  # samples per second of timeline time
    bands = tuple(b for b in AUDIO_BANDS if b[1] <= rate / 2)
    t0 = float(fit.apply(np.array([row["start_s"]]))[0])
    feats = align.audio_features(x, rate, kin.t_start, np.maximum(kin.t_end, kin.t_start), t0=t0, bands=bands)
    return {f"audio_{k}": v for k, v in feats.items()}


def _audio_layers(per_move: dict[str, np.ndarray], first: np.ndarray) -> dict[str, np.ndarray]:
    """Per layer from per move: counts and energies add up; the RMS is the count-weighted one."""
    if not per_move or not len(first):
        return {}
    count = np.add.reduceat(per_move["audio_count"], first)
    out = {"audio_count": count}
    power = np.add.reduceat(np.nan_to_num(per_move["audio_rms"] ** 2) * per_move["audio_count"], first)
    out["audio_rms"] = np.sqrt(np.divide(power, count, out=np.full(len(first), np.nan), where=count > 0))
    out |= {k: np.add.reduceat(np.nan_to_num(v), first) for k, v in per_move.items() if k.startswith("audio_energy")}
    return out


def _layer_at(times: np.ndarray, layers: tuple) -> tuple[np.ndarray, pa.Array]:
    """(index into the layer intervals or -1, the layer number or null) of each sorted time."""
    k = align.map_to_intervals(times, layers[1], layers[2]) if len(layers[0]) else np.full(len(times), -1)
    return k, pa.array(np.where(k >= 0, layers[0][np.maximum(k, 0)], 0).astype(np.int32), mask=k < 0)


def _frames(
    frames: pa.Table | None, fit: align.ClockFit, kin: Kinematics, layers: tuple
) -> tuple[pa.Table, np.ndarray]:
    """The frames on the timeline, and the index of the layer interval each shows (-1 for none)."""
    if frames is None or frames.num_rows == 0:
        empty = pa.table({"t": pa.array([], pa.float64()), "t_sensor": pa.array([], pa.float64()),
                          "file": pa.array([], pa.string()), "move": pa.array([], pa.int64()),
                          "layer": pa.array([], pa.int32())})  # fmt: skip
        return empty, np.zeros(0, np.int64)
    order = np.argsort(_col(frames, "t"), kind="stable")
    frames = frames.take(order)
    ts = _col(frames, "t")
    t = fit.apply(ts)
    move = (
        align.map_to_intervals(t, kin.t_start, np.maximum(kin.t_end, kin.t_start)) if kin.moves else np.full(len(t), -1)
    )
    # A frame shows what was printed before it: one taken at a layer change (a timelapse) belongs
    # to the layer that just ended, even when the clocks put it a little past the boundary.
    k, layer = _layer_at(t - FRAME_LAG_S, layers)
    return pa.table({"t": t, "t_sensor": ts, "file": frames.column("file"), "move": move, "layer": layer}), k


def _uniform(
    t: np.ndarray, ch: dict[str, np.ndarray], kin: Kinematics, layers: tuple, rate_hz: float
) -> dict[str, Any]:
    states = {n: v for n, v in ch.items() if n in STATES}
    linear = {n: v for n, v in ch.items() if n not in STATES}
    grid, lin = align.resample(t, linear, rate_hz) if linear else (align.resample(t, t, rate_hz)[0], {})
    _, prev = align.resample(t, states, rate_hz, method="previous") if states else (grid, {})
    state = kin.state(grid)
    cols: dict[str, Any] = {"t": grid, "layer": _layer_at(grid, layers)[1]}
    cols |= lin
    for n, v in prev.items():
        cols["reported_layer" if n == "layer" else n] = v
    cols["e_cmd"] = state.filament
    cols["speed_cmd"] = np.linalg.norm(state.vel[:, :3], axis=1)
    return cols


def align_run(dataset: PathLike, run_id: str, rate_hz: float = 10.0) -> dict[str, pa.Table]:
    """The aligned tables of one ingested run (not written)."""
    root = Path(dataset)
    runs, sensors, moves = (_raw(root, name, run_id) for name in ("runs", "sensors", "moves"))
    if runs is None or sensors is None or moves is None:
        raise AlignError(f"{root}: run {run_id} has no raw runs/sensors/moves tables; ingest it first")
    run = runs.to_pylist()[0]
    kin = Kinematics(moves)
    t_raw = _col(sensors, "t")
    t_raw, values, _ = align.sort_dedup(t_raw, _sensor_channels(sensors))
    ch: dict[str, np.ndarray] = values
    rate = float(run.get("sensor_rate_hz") or (len(t_raw) - 1) / max(t_raw[-1] - t_raw[0], 1e-9))
    fit, clock_row = _clock(kin, t_raw, ch, rate, run)
    t = fit.apply(t_raw)
    layers = _layer_intervals(kin)
    motion = _raw(root, "motion", run_id)
    audio = _raw(root, "audio", run_id)

    # per move
    starts, ends = kin.t_start, np.maximum(kin.t_end, kin.t_start)
    m_lo, m_hi = align.bounds(t, starts, ends)
    m_stats = align.aggregate(t, ch, starts, ends, stats=MOVE_STATS) if ch else {}
    move_cols: dict[str, Any] = {
        "move": moves.column("move"), "layer": moves.column("layer"), "kind": moves.column("kind"),
        "t_start": starts, "t_end": ends, "samples": m_hi - m_lo,
    }  # fmt: skip
    move_cols |= m_stats
    dev = _motion_deviation(motion, kin)
    move_cols["motion_dev_max"] = _max_over(dev, starts, ends)
    sound = _audio(root, run_id, audio, fit, kin)
    move_cols |= sound

    # per layer
    lo, hi = align.bounds(t, layers[1], layers[2])
    l_stats = align.aggregate(t, ch, layers[1], layers[2], stats=LAYER_STATS) if ch else {}
    layer_cols: dict[str, Any] = {"layer": layers[0], "t_start": layers[1], "t_end": layers[2], "samples": hi - lo}
    layer_cols |= _vibration(t, ch, lo, hi, rate)
    layer_cols |= l_stats
    layer_cols["motion_dev_max"] = _max_over(dev, layers[1], layers[2])
    layer_cols |= _audio_layers(sound, layers[3])
    frames, k = _frames(_raw(root, "frames", run_id), fit, kin, layers)
    layer_cols["frames"] = np.bincount(k[k >= 0], minlength=len(layers[0])).astype(np.int32)

    clock_row |= {"rate_hz": rate_hz, "sensor_rate_hz": rate}
    clock = pa.Table.from_pylist([clock_row], schema=CLOCK_SCHEMA)
    return {
        "clock": clock,
        "moves": pa.table(move_cols),
        "layers": pa.table(layer_cols),
        "uniform": pa.table(_uniform(t, ch, kin, layers, rate_hz)),
        "frames": frames,
    }


# -- the dataset -----------------------------------------------------------------------------------


def _aligned(dataset: Path, table: str, run_id: str, scenario: str) -> Path:
    return dataset / "aligned" / table / f"scenario={scenario}" / f"run_id={run_id}"


def _scenario(dataset: Path, run_id: str) -> str:
    """The scenario partition ingest filed the run under."""
    found = run_folders(dataset, "raw", "runs", run_id)
    if not found:
        raise AlignError(f"{dataset}: run {run_id} has no raw runs table; ingest it first")
    return found[0].parent.name.removeprefix("scenario=")


def _marker(dataset: Path, run_id: str) -> Path:
    return dataset / "_align" / "done" / f"{run_id}.json"


def _state(dataset: Path, run_id: str, rate_hz: float) -> dict[str, Any]:
    """What the aligned tables follow from: the raw run's content hash (from its ingest marker)
    and the parameters."""
    done = write.marker(dataset, run_id)
    content = json.loads(done.read_text()).get("content_hash", "") if done.is_file() else ""
    key = json.dumps({"content": content, "rate_hz": rate_hz, "threedpai": __version__}, sort_keys=True)
    return {"content_hash": content, "rate_hz": rate_hz, "key": hashlib.sha1(key.encode()).hexdigest()}


def _write_run(dataset: Path, run_id: str, rate_hz: float) -> RunAligned:
    """Aligns one run and moves its tables into place (marker last); failures are recorded, not raised."""
    state = _state(dataset, run_id, rate_hz)
    done = _marker(dataset, run_id)
    if done.is_file() and json.loads(done.read_text()).get("key") == state["key"]:
        return RunAligned(run_id, "skipped")
    stage = dataset / "_align" / "staging" / run_id
    shutil.rmtree(stage, ignore_errors=True)
    failed = dataset / "_align" / "failed" / f"{run_id}.json"
    try:
        scenario = _scenario(dataset, run_id)
        tables = align_run(dataset, run_id, rate_hz)
        for name, table in tables.items():
            write_table(table, stage / name / "part-0.parquet")
    except (ValueError, OSError, pa.ArrowException) as e:
        shutil.rmtree(stage, ignore_errors=True)
        failed.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(dump({"run_id": run_id, "error": f"{type(e).__name__}: {e}"}))
        return RunAligned(run_id, "failed", f"{type(e).__name__}: {e}")
    done.unlink(missing_ok=True)
    for name in TABLES:
        for old in run_folders(dataset, "aligned", name, run_id):  # this or an earlier scenario
            shutil.rmtree(old)
        dest = _aligned(dataset, name, run_id, scenario)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(stage / name, dest)
    shutil.rmtree(stage, ignore_errors=True)
    failed.unlink(missing_ok=True)
    clock = tables["clock"].to_pylist()[0]
    done.parent.mkdir(parents=True, exist_ok=True)
    tmp = done.with_name(f".{done.name}.tmp")
    tmp.write_text(dump(state | {"clock": clock}))
    os.replace(tmp, done)
    return RunAligned(run_id, "aligned", rows={n: t.num_rows for n, t in tables.items()}, clock=clock)


def ingested_runs(dataset: PathLike) -> list[str]:
    """Run ids with an ingest marker (whole runs only), sorted."""
    done = Path(dataset) / "_ingest" / "done"
    return sorted(p.stem for p in done.glob("*.json"))


def align_dataset(
    dataset: PathLike,
    *,
    rate_hz: float = 10.0,
    run_ids: Iterable[str] | None = None,
    executor: Executor | None = None,
    progress: bool | Callable[[RunAligned], None] = False,
) -> AlignReport:
    """Aligns every ingested run of ``dataset`` (or ``run_ids``) that is not aligned yet with the
    same raw content and parameters; on ``executor`` when given (a process pool, a Dask cluster),
    else in this process. Aligned tables of runs no longer in ``raw/`` are removed."""
    if not rate_hz > 0:
        raise AlignError(f"rate_hz must be > 0, not {rate_hz}")
    root = Path(dataset)
    ids = sorted(run_ids) if run_ids is not None else ingested_runs(root)
    if run_ids is None:
        _drop_stale(root, set(ids))
    report = AlignReport(root)
    callback, bar = _callback(progress, len(ids))
    try:
        if executor is None:
            results = []
            for rid in ids:
                results.append(_write_run(root, rid, rate_hz))
                callback(results[-1])
        else:
            results = []
            for r in completed(executor, _write_run, [(root, rid, rate_hz) for rid in ids]):
                results.append(r)
                callback(r)
    finally:
        if bar is not None:
            bar.stop()
    report.runs = sorted(results, key=lambda r: r.run_id)
    return report


def report_table(report: AlignReport, seconds: float | None = None) -> Any:
    """A rich table: counts, how the clocks were found and how far the estimates were off."""
    from rich.table import Table

    t = Table(title=f"align -> {report.dataset}", show_header=False)
    for status, n in report.counts().items():
        t.add_row(status, str(n))
    done = [r for r in report.runs if r.status == "aligned"]
    methods: dict[str, int] = {}
    for r in done:
        methods[r.clock["method"]] = methods.get(r.clock["method"], 0) + 1
    if methods:
        t.add_row("clock", ", ".join(f"{m}: {n}" for m, n in sorted(methods.items())))
    errors = [r.clock["est_error_s"] for r in done if r.clock.get("est_error_s") is not None]
    if errors:
        t.add_row("estimate vs truth", f"median {np.median(errors) * 1e3:.2f} ms, max {max(errors) * 1e3:.2f} ms")
    for r in report.runs:
        if r.status == "failed":
            t.add_row(f"[red]failed {r.run_id}[/red]", r.reason or "")
    if seconds is not None:
        t.add_row("time", f"{seconds:.1f} s")
    return t


def _drop_stale(root: Path, keep: set[str]) -> None:
    for name in TABLES:
        for folder in (root / "aligned" / name).glob("scenario=*/run_id=*"):
            if folder.name.removeprefix("run_id=") not in keep:
                shutil.rmtree(folder)
    for marker in (root / "_align" / "done").glob("*.json"):
        if marker.stem not in keep:
            marker.unlink()


def _callback(progress: bool | Callable[[RunAligned], None], total: int) -> tuple[Callable[[RunAligned], None], Any]:
    if callable(progress):
        return progress, None
    if not progress:
        return (lambda _: None), None
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task("aligning", total=total)
    bar.start()
    return (lambda _: bar.advance(task)), bar
