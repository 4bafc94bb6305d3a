"""Klipper's motion-analysis data logger (``scripts/motan/data_logger.py``): what a real Klipper
printer records, read as sensor and motion tables.

``<prefix>.json.gz`` is one gzip stream of JSON messages, each followed by a 0x03 byte: the
replies to the logger's queries (``{"id": "status", "result": {"eventtime", "status": {...}}}`` is
the full printer status at the start), then subscription updates tagged by ``q``:

* ``status``: ``{"eventtime", "status": {object: {field: value}}}``, only the fields that changed;
  ``toolhead.estimated_print_time`` is the MCU print-time clock;
* ``trapq:<name>``: ``{"data": [[print_time, move_t, start_v, accel, [x, y, z], [rx, ry, rz]], ...]}``,
  the moves the toolhead (or extruder) queue ran;
* ``adxl345:<chip>`` (also ``lis2dw:``, ``mpu9250:``): ``{"data": [[print_time, x, y, z], ...]}`` in mm/s².

``<prefix>.index.gz`` holds status snapshots with stream offsets, only needed to seek; the whole
stream is read here. A logger stopped without closing leaves a stream cut short: what was written
up to the cut is kept (``truncated`` says so). Times are seconds on the print-time clock, shifted
so the first status message is at 0 (the run's sensor clock).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from threedpai import runs

ACCEL_CHIPS = ("adxl345", "lis2dw", "mpu9250")
# (object, field) of a status update -> sensors.csv column
STATUS_COLUMNS: dict[tuple[str, str], str] = {
    ("extruder", "temperature"): "hotend_temp",
    ("extruder", "target"): "hotend_target",
    ("extruder", "power"): "hotend_duty",
    ("heater_bed", "temperature"): "bed_temp",
    ("heater_bed", "target"): "bed_target",
    ("heater_bed", "power"): "bed_duty",
    ("fan", "speed"): "fan_cmd",
    ("fan", "rpm"): "fan_rpm",
}
ACCEL_SCHEMA = pa.schema([("t", pa.float64()), ("chip", pa.string())] + [(f"accel_{a}", pa.float64()) for a in "xyz"])
TRAPQ_SCHEMA = pa.schema(
    [("trapq", pa.string())]
    + [(n, pa.float64()) for n in ("t", "move_t", "start_v", "accel")]
    + [(f"start_{a}", pa.float64()) for a in "xyz"]
    + [(f"axis_r_{a}", pa.float64()) for a in "xyz"]
)


class KlipperLogError(ValueError):
    """A data-logger file that cannot be read; ``message_index`` names the bad message when known."""

    def __init__(self, message: str, message_index: int | None = None):
        super().__init__(message)
        self.message_index = message_index


@dataclass
class KlipperLog:
    sensors: pa.Table  # sensors.csv columns (t, temperatures, duties, fan, position, layer) per status update
    accel: pa.Table
    trapq: pa.Table
    messages: int
    truncated: bool
    origin: float  # print time of the first status message


def _messages(path: Path) -> tuple[list[Any], bool]:
    raw = path.read_bytes()
    inflater = zlib.decompressobj(31)
    try:
        data = inflater.decompress(raw)
    except zlib.error as e:
        raise KlipperLogError(f"not a gzip stream: {e}") from e
    parts = data.split(b"\x03")
    truncated = not inflater.eof or bool(parts[-1].strip())  # a cut stream, or a message without its end byte
    out = []
    for i, part in enumerate(parts[:-1]):
        try:
            out.append(json.loads(part))
        except ValueError as e:
            raise KlipperLogError(f"message {i} is not JSON: {e}", i) from e
    return out, truncated


def read(path: Path) -> KlipperLog:
    """Reads ``<prefix>.json.gz`` into sensor rows (one per status update), accelerometer samples
    and trapq moves."""
    messages, truncated = _messages(Path(path))
    state: dict[str, dict[str, Any]] = {}
    rows: list[tuple[float, float, dict[str, dict[str, Any]]]] = []
    accel: list[tuple[str, np.ndarray]] = []
    moves: list[tuple[str, list[Any]]] = []

    def update(eventtime: float, status: dict[str, Any]) -> None:
        for obj, fields in status.items():
            if isinstance(fields, dict):
                state.setdefault(obj, {}).update(fields)
        print_time = state.get("toolhead", {}).get("estimated_print_time")
        rows.append((float(print_time if print_time is not None else eventtime), eventtime, _snapshot(state)))

    for msg in messages:
        if not isinstance(msg, dict):
            continue
        q = msg.get("q")
        if q is None and msg.get("id") == "status" and isinstance(msg.get("result"), dict):
            update(float(msg["result"].get("eventtime", 0.0)), msg["result"].get("status", {}))
        elif q == "status":
            update(float(msg["params"].get("eventtime", 0.0)), msg["params"].get("status", {}))
        elif isinstance(q, str) and q.split(":")[0] in ACCEL_CHIPS:
            data = msg.get("params", {}).get("data") or []
            if data:
                accel.append((q.split(":", 1)[1], np.asarray(data, dtype=np.float64).reshape(-1, 4)))
        elif isinstance(q, str) and q.startswith("trapq:"):
            moves.append((q.split(":", 1)[1], msg.get("params", {}).get("data") or []))
    if not rows:
        raise KlipperLogError("no status messages: the log holds no sensor data")
    origin = rows[0][0]
    return KlipperLog(
        _sensors(rows, origin), _accel(accel, origin), _trapq(moves, origin), len(messages), truncated, origin
    )


def _snapshot(state: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {col: state.get(obj, {}).get(field) for (obj, field), col in STATUS_COLUMNS.items()}
    live = state.get("motion_report", {}).get("live_position")
    if isinstance(live, list) and len(live) >= 4:
        out.update(zip("xyze", live[:4], strict=True))
    for obj, fields in state.items():
        if obj.startswith("filament_switch_sensor") and "filament_detected" in fields:
            out["filament_present"] = int(bool(fields["filament_detected"]))
            break
    layer = state.get("print_stats", {}).get("info", {}) or {}
    if isinstance(layer, dict) and layer.get("current_layer") is not None:
        out["layer"] = int(layer["current_layer"]) - 1  # Klipper counts from 1
    return out


def _sensors(rows: list[tuple[float, float, dict[str, Any]]], origin: float) -> pa.Table:
    names = [f.name for f in runs.SENSOR_SCHEMA if f.name != "t" and any(r[2].get(f.name) is not None for r in rows)]
    for required in runs.SENSOR_REQUIRED[1:]:  # absent channels stay visible (as NaN) to the checks
        if required not in names:
            names.append(required)
    fields = {f.name: f for f in runs.SENSOR_SCHEMA}
    columns = {"t": pa.array([r[0] - origin for r in rows], pa.float64())}
    for name in names:
        values = [r[2].get(name) for r in rows]
        if fields[name].type == pa.float64():
            columns[name] = pa.array([np.nan if v is None else float(v) for v in values], pa.float64())
        else:
            columns[name] = pa.array(values, fields[name].type)
    schema = pa.schema([fields["t"]] + [fields[n].with_nullable(True) for n in names])
    return pa.table(columns, schema=schema)


def _accel(chunks: list[tuple[str, np.ndarray]], origin: float) -> pa.Table:
    if not chunks:
        return ACCEL_SCHEMA.empty_table()
    data = np.concatenate([c for _, c in chunks])
    chips = np.concatenate([np.full(len(c), name, dtype=object) for name, c in chunks])
    return pa.table(
        [pa.array(data[:, 0] - origin), pa.array(chips, pa.string())] + [pa.array(data[:, i]) for i in (1, 2, 3)],
        schema=ACCEL_SCHEMA,
    )


def _trapq(chunks: list[tuple[str, list[Any]]], origin: float) -> pa.Table:
    names: list[str] = []
    values: list[list[float]] = []
    for name, data in chunks:
        for print_time, move_t, start_v, accel, start, axes_r in data:
            names.append(name)
            values.append([print_time - origin, move_t, start_v, accel, *start[:3], *axes_r[:3]])
    if not values:
        return TRAPQ_SCHEMA.empty_table()
    arr = np.asarray(values, dtype=np.float64).reshape(-1, 10)
    return pa.table([pa.array(names, pa.string())] + [pa.array(arr[:, i]) for i in range(10)], schema=TRAPQ_SCHEMA)
