"""One run, start to end, in a worker process: hash, check, parse, plan, write (or quarantine)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from threedpai import gcode, runs, timeline
from threedpai.errors import GcodeParseError
from threedpai.ingest import checks, klipper_log, write
from threedpai.ingest.discover import run_files
from threedpai.ingest.reasons import Reason, status_of
from threedpai.runs import RunMetadata

STAGES = ("hash", "checks", "parse", "timeline", "write")


@dataclass
class Task:
    key: str
    folder: Path
    dataset: Path
    done: dict[str, Any] | None = None  # the marker of a run already ingested under the same run_id
    quarantined_hash: str | None = None  # the hash of this key's quarantine entry, if any
    duplicate_of: str | None = None  # an earlier key in this input with the same run_id
    keep_media: bool = True


@dataclass
class Result:
    key: str
    status: str
    run_id: str | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    content_hash: str = ""
    input_bytes: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    note: str | None = None


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


def content_hash(folder: Path) -> tuple[str, int, list[Reason]]:
    """SHA-256 (160 bits kept) over every member's name and bytes, in name order; links that leave
    the folder are refused. SHA-256: 2.5x blake2b's speed where the CPU has SHA instructions
    (1.2 GB/s against 0.47 GB/s here), and hashing reads every input byte."""
    h = hashlib.sha256()
    total = 0
    reasons = []
    root = folder.resolve()
    for rel, path in run_files(folder):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            reasons.append(
                Reason("run.link_escape", f"{rel} links to {os.readlink(path)!r}, outside the run", file=rel)
            )
            continue
        if not path.is_file():
            reasons.append(Reason("run.special_file", f"{rel} is not a regular file", file=rel))
            continue
        h.update(rel.encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                total += len(chunk)
        h.update(b"\0")
    return h.hexdigest()[:40], total, reasons


def process(task: Task) -> Result:
    timer = _Timer()
    with timer.stage("hash"):
        digest, size, unsafe = content_hash(task.folder)
    result = Result(task.key, "ok", content_hash=digest, input_bytes=size, seconds=timer.seconds)
    done = task.done
    if done is not None and done["content_hash"] == digest:
        result.status, result.run_id, result.note = "skipped", done["run_id"], "already ingested"
        return result
    if task.quarantined_hash == digest:
        result.status, result.note = "skipped", "already in the quarantine"
        return result
    reasons = list(unsafe)
    if task.duplicate_of:
        reasons.append(
            Reason(
                "run.duplicate_id",
                f"run_id is also used by {task.duplicate_of}, ingested first",
                details={"other": task.duplicate_of},
            )
        )
    if done is not None and done["key"] != task.key and not reasons:
        reasons.append(
            Reason(
                "run.duplicate_id",
                f"run_id {done['run_id']} is already ingested from {done['key']} with other content",
                details={"other": done["key"]},
            )
        )
    try:
        if not any(r.severity == "error" for r in reasons):
            tables, row, more = _ingest(task, timer)
            reasons += more
    except Exception as e:  # a bug or an unforeseen file must not take the whole ingest down
        reasons.append(Reason("run.internal_error", f"{type(e).__name__}: {e}"))
    result.status = status_of(reasons)
    result.reasons = [r.as_dict() for r in reasons]
    with timer.stage("write"):
        if result.status == "quarantined":
            record = {"key": task.key, "status": "quarantined", "content_hash": digest, "reasons": result.reasons}
            write.quarantine(task.dataset, task.key, task.folder, write.staging(task.dataset, _qname(task.key)), record)
            return result
        result.run_id = row["run_id"]
        if done is not None:
            result.note = f"replaces the version ingested before (content hash {done['content_hash']})"
            result.reasons.append(Reason("run.replaced", result.note, "warning").as_dict())
        row |= {"content_hash": digest, "input_bytes": size, "status": result.status}
        row["reasons"] = json.dumps(result.reasons, sort_keys=True)
        tables["runs"] = pa.Table.from_pylist([row], schema=RUNS_SCHEMA)
        stage = write.staging(task.dataset, f"run-{row['run_id']}")
        if stage.exists():
            shutil.rmtree(stage)
        for name, table in tables.items():
            write.write_table(table, stage / name / "part-0.parquet")
        if task.keep_media:
            _stage_media(task.folder, stage / "media", tables)
        state = {
            "run_id": row["run_id"],
            "key": task.key,
            "content_hash": digest,
            "status": result.status,
            "reasons": result.reasons,
            "input_bytes": size,
        }
        scenario = runs.scenario(row["fault_types"], row["outcome"])
        write.commit_run(task.dataset, row["run_id"], scenario, stage, state | {"scenario": scenario})
        old = task.dataset / "quarantine" / task.key
        if old.exists():  # an earlier, broken version of this run
            shutil.rmtree(old)
    return result


def _qname(key: str) -> str:
    return "q-" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def _stage_media(folder: Path, media: Path, tables: dict[str, pa.Table]) -> None:
    files = tables["frames"].column("file").to_pylist() if "frames" in tables else []
    if "audio" in tables:
        files.append(runs.AUDIO)
    for rel in files:
        (media / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / rel, media / rel)


def _errors(reasons: list[Reason]) -> bool:
    return any(r.severity == "error" for r in reasons)


def _gcode_member(folder: Path, meta: RunMetadata | None) -> Path | None:
    if meta is not None:
        return folder / meta.gcode if (folder / meta.gcode).is_file() else None
    return next((folder / g for g in runs.GCODE_NAMES if (folder / g).is_file()), None)


def _klipper_logs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*" + runs.KLIPPER_LOG_SUFFIXES[0]) if p.is_file())


def _check_gcode(path: Path) -> tuple[gcode.ParsedGcode | None, bytes, list[Reason]]:
    """Parses the G-code (lenient: the parser's diagnostics are counted, not fatal) and looks for a cut-off file."""
    name = path.name
    try:
        data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError) as e:
        return None, b"", [Reason("gcode.invalid", f"cannot decompress: {e}", file=name)]
    try:
        parsed = gcode.read(data, threads=1)
    except GcodeParseError as e:
        code = "gcode.truncated" if "truncated" in str(e) else "gcode.invalid"
        return None, data, [Reason(code, str(e), file=name, line=e.line)]
    s = parsed.summary
    reasons = []
    if s["container"] == "text" and data and not data.endswith(b"\n"):
        reasons.append(
            Reason("gcode.truncated", "the last line has no line end: the file was cut off", file=name, line=s["lines"])
        )
    stated = s.get("layer_count_stated")
    if stated is not None and stated > s["layer_count"] + checks.LAYER_TOL:
        reasons.append(
            Reason(
                "gcode.truncated",
                f"the file announces {stated} layers but holds {s['layer_count']}",
                file=name,
                line=s["lines"],
            )
        )
    if not any(k in s["commands"] for k in ("G0", "G1", "G2", "G3")):
        reasons.append(Reason("gcode.no_moves", "no moves (G0-G3) in the file", file=name))
    return parsed, data, reasons


def _plan(
    path: Path, data: bytes, folder: Path, meta: RunMetadata
) -> tuple[timeline.PlannedTimeline | None, list[Reason]]:
    model = "marlin" if meta.printer.firmware == "marlin" else "klipper"
    cfg = folder / runs.PRINTER_CFG
    printer = cfg if cfg.is_file() and model == "klipper" else None
    tmp = None
    try:
        if path.name.endswith(".gz"):  # the planner reads files; give it the unpacked text
            fd, tmp = tempfile.mkstemp(suffix=".gcode")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            path = Path(tmp)
        return timeline.read(path, printer, threads=1, model=model), []
    except GcodeParseError as e:
        return None, [Reason("gcode.invalid", str(e), file=meta.gcode, line=e.line)]
    except ValueError as e:
        return None, [Reason("printer_cfg.invalid", str(e), file=runs.PRINTER_CFG)]
    finally:
        if tmp:
            os.unlink(tmp)


def _ingest(task: Task, timer: _Timer) -> tuple[dict[str, pa.Table], dict[str, Any], list[Reason]]:
    """Every check; the tables and the runs row when the run can be ingested."""
    folder = task.folder
    reasons: list[Reason] = []
    logs = _klipper_logs(folder)
    tables: dict[str, pa.Table] = {}
    meta: RunMetadata | None = None
    sensors: pa.Table | None = None
    with timer.stage("checks"):
        if not (folder / runs.METADATA).is_file():
            reasons.append(Reason("run.missing_file", f"{runs.METADATA} is missing", file=runs.METADATA))
        else:
            meta, more = checks.check_metadata(folder / runs.METADATA)
            reasons += more
        if (folder / runs.SENSORS).is_file():
            sensors, more = checks.read_sensors(folder / runs.SENSORS)
            reasons += more
        elif not logs:
            reasons.append(
                Reason("run.missing_file", f"{runs.SENSORS} is missing (and no Klipper data log)", file=runs.SENSORS)
            )
        for log in logs:
            index = log.with_name(log.name[: -len(runs.KLIPPER_LOG_SUFFIXES[0])] + runs.KLIPPER_LOG_SUFFIXES[1])
            if not index.is_file():
                reasons.append(
                    Reason(
                        "klipper_log.missing_index",
                        f"{index.name} is missing (only needed to seek)",
                        "warning",
                        file=log.name,
                    )
                )
            try:
                klog = klipper_log.read(log)
            except klipper_log.KlipperLogError as e:
                reasons.append(Reason("klipper_log.invalid", str(e), file=log.name, line=e.message_index))
                continue
            if klog.truncated:
                reasons.append(
                    Reason(
                        "klipper_log.truncated",
                        "the log stream ends mid-message or without its gzip end (logger stopped); kept up to the cut",
                        "warning",
                        file=log.name,
                    )
                )
            tables["klipper_status"] = _concat(tables.get("klipper_status"), klog.sensors)
            tables["accel"] = _concat(tables.get("accel"), klog.accel)
            tables["trapq"] = _concat(tables.get("trapq"), klog.trapq)
        sensor_file = runs.SENSORS
        if not (folder / runs.SENSORS).is_file() and "klipper_status" in tables:
            sensors, sensor_file = tables.pop("klipper_status"), logs[0].name
        if sensors is not None:
            more = checks.check_sensor_values(sensors)
            if sensor_file != runs.SENSORS:
                more = [_refile(r, sensor_file) for r in more]
            reasons += more
        if meta is not None and sensors is not None and not _errors(reasons):
            rate = meta.sensor_rate_hz if sensor_file == runs.SENSORS else None
            sensors, more = checks.repair_time(sensors, rate)
            reasons += more
    gpath = _gcode_member(folder, meta)
    parsed = None
    data = b""
    with timer.stage("parse"):
        if gpath is None:
            want = meta.gcode if meta else " or ".join(runs.GCODE_NAMES)
            reasons.append(Reason("run.missing_file", f"{want} is missing", file=meta.gcode if meta else None))
        else:
            parsed, data, more = _check_gcode(gpath)
            reasons += more
    if meta is None or parsed is None or gpath is None or _errors(reasons):
        return {}, {}, reasons
    with timer.stage("timeline"):
        planned, more = _plan(gpath, data, folder, meta)
        reasons += more
    if planned is None or sensors is None:
        return {}, {}, reasons
    with timer.stage("checks"):
        total = float(planned.summary["total_time_s"])
        gcode_layers = int(parsed.summary["layer_count"])
        reasons += checks.consistency(meta, gcode_layers, total, sensors)
        if (folder / runs.MOTION).is_file():
            motion, more = checks.read_motion(folder / runs.MOTION, meta.motion_rate_hz or 10_000.0)
            if meta.motion_rate_hz is None:
                more.append(
                    Reason(
                        "motion.rate_assumed",
                        "metadata.motion_rate_hz is not set; 10 kHz assumed",
                        "warning",
                        file=runs.MOTION,
                    )
                )
            reasons += more
            if motion is not None:
                tables["motion"] = motion
        if (folder / runs.FRAMES).is_dir():
            frames, more = checks.frames_index(folder / runs.FRAMES)
            reasons += more
            tables["frames"] = _with_layers(frames, meta, planned)
        if (folder / runs.AUDIO).is_file():
            audio, more = checks.audio_index(folder / runs.AUDIO, meta.audio_start_s)
            reasons += more
            if audio is not None:
                tables["audio"] = audio
    if _errors(reasons):
        return {}, {}, reasons
    tables |= {
        "labels": _labels(meta),
        "gcode": parsed.table,
        "moves": planned.table,
        "sensors": sensors,
    }
    row = _runs_row(task, meta, parsed, planned, sensors, tables, gcode_layers, total)
    return tables, row, reasons


def _refile(r: Reason, file: str) -> Reason:
    return Reason(r.code, r.message, r.severity, file, None, r.column, r.field, r.details)


def _concat(a: pa.Table | None, b: pa.Table) -> pa.Table:
    return b if a is None else pa.concat_tables([a, b], promote_options="permissive")


def _with_layers(frames: pa.Table, meta: RunMetadata, planned: timeline.PlannedTimeline) -> pa.Table:
    """The layer being printed when each frame was taken, where the sensor clock's map is known."""
    layer = pa.nulls(frames.num_rows, pa.int32())
    clock = meta.sensor_clock
    if clock is not None and frames.num_rows and planned.table.num_rows:
        t = (frames.column("t").to_numpy() - clock.offset_s) / (1 + clock.drift_ppm * 1e-6)
        starts = planned.table.column("t_start").to_numpy()
        layers = planned.table.column("layer").to_numpy(zero_copy_only=False)
        idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
        picked = layers[idx]
        valid = ~np.isnan(picked.astype(np.float64))
        layer = pa.array(np.where(valid, picked, 0).astype(np.int32), mask=~valid)
    return frames.append_column(pa.field("layer", pa.int32()), layer)


LABELS_SCHEMA = pa.schema(
    [
        pa.field("fault", pa.int32(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("onset_s", pa.float64(), nullable=False),
        pa.field("onset_layer", pa.int32(), nullable=False),
        pa.field("severity", pa.float64(), nullable=False),
        pa.field("end_s", pa.float64()),
        pa.field("details", pa.string(), metadata={"doc": "JSON object"}),
    ]
)


def _labels(meta: RunMetadata) -> pa.Table:
    rows = [
        {
            "fault": i,
            "type": f.type.value,
            "onset_s": f.onset_s,
            "onset_layer": f.onset_layer,
            "severity": f.severity,
            "end_s": f.end_s,
            "details": json.dumps(f.details, sort_keys=True),
        }
        for i, f in enumerate(meta.faults)
    ]
    return pa.Table.from_pylist(rows, schema=LABELS_SCHEMA)


RUNS_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("source", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("printer_name", pa.string()),
        ("firmware", pa.string()),
        ("kinematics", pa.string()),
        ("material", pa.string()),
        ("outcome", pa.string()),
        ("fault_count", pa.int32()),
        ("fault_types", pa.list_(pa.string())),
        ("layer_count", pa.int32()),
        ("gcode_layers", pa.int32()),
        ("sensor_layers", pa.int32()),
        ("planned_time_s", pa.float64()),
        ("timeline_time_s", pa.float64()),
        ("sensor_rate_hz", pa.float64()),
        ("clock_offset_s", pa.float64()),
        ("clock_drift_ppm", pa.float64()),
        ("motion_rate_hz", pa.float64()),
        ("audio_start_s", pa.float64()),
        ("seed", pa.int64()),
        ("generator", pa.string()),
        ("notes", pa.string()),
        ("gcode_file", pa.string()),
        ("gcode_producer", pa.string()),
        ("gcode_bytes", pa.int64()),
        ("gcode_lines", pa.int64()),
        ("gcode_diagnostics", pa.int64()),
        ("moves", pa.int64()),
        ("sensor_rows", pa.int64()),
        ("sensor_t_start", pa.float64()),
        ("sensor_t_end", pa.float64()),
        ("motion_rows", pa.int64()),
        ("frames", pa.int64()),
        ("has_audio", pa.bool_()),
        ("has_klipper_log", pa.bool_()),
        ("has_printer_cfg", pa.bool_()),
        ("content_hash", pa.string()),
        ("input_bytes", pa.int64()),
        ("status", pa.string()),
        ("reasons", pa.string()),
    ]
)


def _runs_row(
    task: Task,
    meta: RunMetadata,
    parsed: gcode.ParsedGcode,
    planned: timeline.PlannedTimeline,
    sensors: pa.Table,
    tables: dict[str, pa.Table],
    gcode_layers: int,
    total: float,
) -> dict[str, Any]:
    t = sensors.column("t")
    clock = meta.sensor_clock
    return {
        "run_id": meta.run_id,
        "key": task.key,
        "source": meta.source,
        "started_at": meta.started_at,
        "printer_name": meta.printer.name,
        "firmware": meta.printer.firmware,
        "kinematics": meta.printer.kinematics,
        "material": meta.material,
        "outcome": meta.outcome,
        "fault_count": len(meta.faults),
        "fault_types": [f.type.value for f in meta.faults],
        "layer_count": meta.layer_count,
        "gcode_layers": gcode_layers,
        "sensor_layers": checks.sensor_layers(sensors),
        "planned_time_s": meta.planned_time_s,
        "timeline_time_s": total,
        "sensor_rate_hz": meta.sensor_rate_hz,
        "clock_offset_s": clock.offset_s if clock else None,
        "clock_drift_ppm": clock.drift_ppm if clock else None,
        "motion_rate_hz": meta.motion_rate_hz,
        "audio_start_s": meta.audio_start_s,
        "seed": meta.seed,
        "generator": meta.generator,
        "notes": json.dumps(meta.notes, sort_keys=True),
        "gcode_file": meta.gcode,
        "gcode_producer": parsed.summary["producer"],
        "gcode_bytes": parsed.summary["bytes"],
        "gcode_lines": parsed.table.num_rows,
        "gcode_diagnostics": parsed.diagnostics_total,
        "moves": planned.table.num_rows,
        "sensor_rows": sensors.num_rows,
        "sensor_t_start": t[0].as_py() if len(t) else None,
        "sensor_t_end": t[-1].as_py() if len(t) else None,
        "motion_rows": tables["motion"].num_rows if "motion" in tables else None,
        "frames": tables["frames"].num_rows if "frames" in tables else 0,
        "has_audio": "audio" in tables,
        "has_klipper_log": bool(_klipper_logs(task.folder)),
        "has_printer_cfg": (task.folder / runs.PRINTER_CFG).is_file(),
    }
