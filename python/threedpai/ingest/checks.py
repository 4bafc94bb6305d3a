"""The checks one run folder goes through. Each returns what it read plus the reasons it found;
``error`` reasons quarantine the run, ``repair`` reasons mark what was fixed.

Readers are vectorized: pyarrow's CSV reader with typed columns (one thread per worker process,
the pool gives the parallelism), numpy for time order and ranges.
"""

from __future__ import annotations

import csv
import json
import re
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from pydantic import ValidationError

from threedpai import _native, runs
from threedpai.ingest.reasons import Reason
from threedpai.runs import RunMetadata

CSV_BLOCK = 16 << 20
# Time repair is safe while the rows it moves or drops stay a small share of the file.
REPAIR_MAX_SHARE = 0.02
# Nominal sample interval vs the median one: outside this factor the rate or the time unit is wrong.
RATE_FACTOR = 2.0
# Coverage: the sensors may end this much before the planned end (seconds, and share of the plan).
COVERAGE_TOL_S = 5.0
COVERAGE_TOL_SHARE = 0.02
# Layer counts from different sources may differ by this much (slicers count the first layer differently).
LAYER_TOL = 1
PLANNED_TIME_TOL_SHARE = 0.05
# A pause between samples longer than this (and than GAP_FACTOR nominal intervals) is reported.
GAP_MIN_S = 1.0
GAP_FACTOR = 10.0
_NUMBER = r"^\s*[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|nan|NaN|NAN|inf|Inf|-?infinity)\s*$"
_SCHEMA_TYPES = {f.name: f for f in runs.SENSOR_SCHEMA}


def check_metadata(path: Path) -> tuple[RunMetadata | None, list[Reason]]:
    name = runs.METADATA
    try:
        data = json.loads(path.read_bytes())
    except json.JSONDecodeError as e:
        return None, [Reason("metadata.invalid_json", f"{e.msg} (column {e.colno})", file=name, line=e.lineno)]
    except UnicodeDecodeError as e:
        return None, [Reason("metadata.invalid_json", f"not UTF-8 text: {e.reason}", file=name)]
    if not isinstance(data, dict):
        return None, [Reason("metadata.invalid_json", "the top level must be an object", file=name, line=1)]
    try:
        return RunMetadata.model_validate(data), []
    except ValidationError as e:
        reasons = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(root)"
            reasons.append(Reason("metadata.schema", f"{loc}: {err['msg']}", file=name, field=loc))
        return None, reasons


def _header(path: Path) -> list[str]:
    with open(path, "rb") as f:
        first = f.readline(1 << 16)
    if not first.strip():
        return []
    return [c.strip() for c in next(csv.reader([first.decode("utf-8", "replace").rstrip("\r\n")]))]


def _first_bad_number(path: Path, column: str, names: list[str] | None = None, skip_rows: int = 1) -> int | None:
    """1-based line of the first value in ``column`` that is not a number (the slow path, errors only)."""
    read = pcsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK, column_names=names, skip_rows=0)
    table = pcsv.read_csv(
        path,
        read_options=read,
        parse_options=pcsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
        convert_options=pcsv.ConvertOptions(
            include_columns=[column], column_types={column: pa.string()}, strings_can_be_null=False
        ),
    )
    values = table.column(column)
    ok = pc.or_(pc.equal(values, ""), pc.match_substring_regex(values, _NUMBER))
    bad = np.flatnonzero(~ok.to_numpy(zero_copy_only=False))
    return None if not len(bad) else int(bad[0]) + 1 + (skip_rows if names is None else 0)


@dataclass
class _BadRows:
    count: int = 0
    first_line: int | None = None
    first_text: str = ""
    expected: int = 0
    actual: int = 0

    def __call__(self, row: Any) -> str:
        if self.count == 0:
            self.first_line, self.first_text = row.number, row.text
            self.expected, self.actual = row.expected_columns, row.actual_columns
        self.count += 1
        return "skip"


def _conversion_error(e: pa.ArrowInvalid, path: Path, file: str, names: list[str], read_names: bool) -> Reason:
    m = re.search(r"CSV column #(\d+)", str(e))
    if not m:
        return Reason(f"{file.split('.')[0]}.unreadable", str(e), file=file)
    column = names[int(m.group(1))]
    line = _first_bad_number(path, column, None if read_names else names)
    code = f"{file.split('.')[0]}.non_numeric"
    return Reason(code, f"a value that is not a number in column {column!r}: {e}", file=file, line=line, column=column)


def read_sensors(path: Path) -> tuple[pa.Table | None, list[Reason]]:
    """sensors.csv with its typed columns; None with reasons when it cannot be trusted."""
    file = runs.SENSORS
    names = _header(path)
    if not names:
        return None, [Reason("sensors.empty", "no header row", file=file, line=1)]
    reasons = []
    dupes = sorted({n for n in names if names.count(n) > 1})
    for n in dupes:
        reasons.append(Reason("sensors.duplicate_column", f"column {n!r} appears twice", file=file, line=1, column=n))
    for n in runs.SENSOR_REQUIRED:
        if n not in names:
            reasons.append(
                Reason("sensors.missing_column", f"required column {n!r} is missing", file=file, line=1, column=n)
            )
    if reasons:
        return None, reasons
    table = _plain_sensors(path, names)
    if table is None:  # not plain numbers: Arrow's reader, which names the problem
        bad = _BadRows()
        try:
            table = pcsv.read_csv(
                path,
                read_options=pcsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK),
                parse_options=pcsv.ParseOptions(invalid_row_handler=bad),
                convert_options=runs.sensor_convert_options(),
            )
        except pa.ArrowInvalid as e:
            return None, [_conversion_error(e, path, file, names, True)]
        if bad.count:
            return None, [_malformed(file, bad)]
    return _typed(table, path, names)


def _plain_sensors(path: Path, names: list[str]) -> pa.Table | None:
    """The Rust fast path (3-4x Arrow's reader here) for a log of plain numbers, typed as the
    schema says; None for anything else, which the general reader then reads or explains."""
    cols = _native.numeric_csv(path, 1, len(names))
    if cols is None:
        return None
    arrays = []
    for name, col in zip(names, cols, strict=True):
        kind = _SCHEMA_TYPES[name].type if name in _SCHEMA_TYPES else pa.float64()
        if pa.types.is_integer(kind):
            info = np.iinfo(kind.to_pandas_dtype())
            if not (np.all(col == np.floor(col)) and (len(col) == 0 or info.min <= col.min() <= col.max() <= info.max)):
                return None
            col = col.astype(kind.to_pandas_dtype())
        arrays.append(pa.array(col, kind))
    return pa.Table.from_arrays(arrays, names=names)


def _malformed(file: str, bad: _BadRows) -> Reason:
    return Reason(
        f"{file.split('.')[0]}.malformed_row",
        f"{bad.count} row(s) with the wrong number of fields; the first has {bad.actual}, expected {bad.expected}",
        file=file,
        line=bad.first_line,
        details={"rows": bad.count, "text": bad.first_text[:200]},
    )


def _typed(table: pa.Table, path: Path, names: list[str]) -> tuple[pa.Table | None, list[Reason]]:
    """Columns outside the schema become float64; schema columns get their units as field metadata."""
    fields, columns = [], []
    for name, col in zip(table.column_names, table.columns, strict=True):
        known = _SCHEMA_TYPES.get(name)
        if known is None:
            try:
                col = col.cast(pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                line = _first_bad_number(path, name)
                return None, [
                    Reason(
                        "sensors.non_numeric",
                        f"a value that is not a number in column {name!r}",
                        file=runs.SENSORS,
                        line=line,
                        column=name,
                    )
                ]
            known = pa.field(name, pa.float64())
        fields.append(known.with_nullable(True) if name != "t" else known)
        columns.append(col)
    if table.column("t").null_count:
        columns[table.column_names.index("t")] = table.column("t")  # reported as NaN below; keep it nullable
        fields[0] = fields[0].with_nullable(True)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields)), []


def _missing_mask(col: pa.ChunkedArray) -> np.ndarray:
    values = col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return np.isnan(values)  # nulls come through as NaN for float columns


def check_sensor_values(table: pa.Table) -> list[Reason]:
    """NaN or empty cells in required columns, and values outside the plausible ranges."""
    reasons = []
    for name in runs.SENSOR_REQUIRED:
        missing = _missing_mask(table.column(name))
        if missing.any():
            first = int(np.argmax(missing))
            reasons.append(
                Reason(
                    "sensors.nan",
                    f"{int(missing.sum())} NaN or empty value(s) in required column {name!r}",
                    file=runs.SENSORS,
                    line=first + 2,
                    column=name,
                    details={"rows": int(missing.sum())},
                )
            )
    for name, (lo, hi) in runs.SENSOR_RANGES.items():
        if name not in table.column_names:
            continue
        values = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        with np.errstate(invalid="ignore"):
            out = (values < lo) | (values > hi)
        if out.any():
            first = int(np.argmax(out))
            reasons.append(
                Reason(
                    "sensors.out_of_range",
                    f"{int(out.sum())} value(s) of {name!r} outside [{lo:g}, {hi:g}], first {values[first]:g}",
                    file=runs.SENSORS,
                    line=first + 2,
                    column=name,
                    details={"rows": int(out.sum()), "min": lo, "max": hi},
                )
            )
    return reasons


def repair_time(table: pa.Table, rate_hz: float | None) -> tuple[pa.Table, list[Reason]]:
    """Sorts out-of-order blocks and drops duplicate timestamps when few rows are affected;
    otherwise the run is unrepairable. Also checks the sample interval against the nominal rate
    (a time column in milliseconds, or a wrong rate, shows here); ``rate_hz=None`` skips that."""
    file = runs.SENSORS
    t = table.column("t").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    n = len(t)
    if n < 2:
        return table, [Reason("sensors.too_short", f"{n} sample(s)", file=file)]
    dt = np.diff(t)
    reasons: list[Reason] = []
    if not (dt > 0).all():
        back = np.flatnonzero(dt < 0)
        order = np.argsort(t, kind="stable")
        displaced = int(np.count_nonzero(order != np.arange(n)))
        ts = t[order]
        dup = np.concatenate([[False], ts[1:] == ts[:-1]])
        n_dup = int(dup.sum())
        share = (displaced + n_dup) / n
        details = {
            "backward_steps": len(back),
            "displaced_rows": displaced,
            "duplicate_rows": n_dup,
            "share": round(share, 6),
        }
        if share > REPAIR_MAX_SHARE:
            first = int(back[0]) + 3 if len(back) else int(np.argmax(dt == 0)) + 3
            return table, [
                Reason(
                    "sensors.non_monotonic",
                    f"time goes backwards {len(back)} time(s) and repeats "
                    f"{n_dup} time(s): {share:.1%} of rows affected, more than "
                    f"{REPAIR_MAX_SHARE:.0%} can be repaired safely",
                    file=file,
                    line=first,
                    column="t",
                    details=details,
                )
            ]
        if len(back):
            reasons.append(
                Reason(
                    "sensors.out_of_order",
                    f"{len(back)} block(s) out of time order, {displaced} row(s) moved back into place",
                    "repair",
                    file=file,
                    line=int(back[0]) + 3,
                    column="t",
                    details=details,
                )
            )
        if n_dup:
            sorted_rows = table.take(order)
            conflicting = _conflicting(sorted_rows, dup)
            first_dup_row = int(order[np.argmax(dup)])
            reasons.append(
                Reason(
                    "sensors.duplicate_time",
                    f"{n_dup} row(s) repeat a timestamp ({conflicting} with different values); the first of each kept",
                    "repair",
                    file=file,
                    line=first_dup_row + 2,
                    column="t",
                    details=details | {"conflicting": conflicting},
                )
            )
        table = table.take(order).filter(pa.array(~dup))
        t = table.column("t").to_numpy()
        dt = np.diff(t)
    if rate_hz is None:
        return table, reasons
    interval = float(np.median(dt)) if len(dt) else 0.0
    nominal = 1.0 / rate_hz
    gaps = np.flatnonzero(dt > max(GAP_MIN_S, GAP_FACTOR * nominal))
    if len(gaps):
        longest = int(gaps[np.argmax(dt[gaps])])
        at = float(t[gaps[0]])
        reasons.append(
            Reason(
                "sensors.gap",
                f"{len(gaps)} gap(s) in the samples, the first after t = {at:g} s, the longest {dt[longest]:g} s",
                "warning",
                file=file,
                column="t",
                details={"gaps": len(gaps), "first_at_s": at, "longest_s": float(dt[longest])},
            )
        )
    if not nominal / RATE_FACTOR <= interval <= nominal * RATE_FACTOR:
        reasons.append(
            Reason(
                "sensors.rate_mismatch",
                f"median sample interval {interval:g} s, but sensor_rate_hz "
                f"{rate_hz:g} means {nominal:g} s (wrong rate, or t not in seconds?)",
                file=file,
                column="t",
                details={"median_interval_s": interval, "nominal_s": nominal},
            )
        )
    return table, reasons


def _conflicting(rows: pa.Table, dup: np.ndarray) -> int:
    """Duplicates whose values differ from the row they repeat."""
    idx = np.flatnonzero(dup)
    a, b = rows.take(pa.array(idx)), rows.take(pa.array(idx - 1))
    same = np.ones(len(idx), dtype=bool)
    for name in rows.column_names:
        x = a.column(name).to_numpy(zero_copy_only=False)
        y = b.column(name).to_numpy(zero_copy_only=False)
        same &= (x == y) | (_isnan(x) & _isnan(y))
    return int((~same).sum())


def _isnan(x: np.ndarray) -> np.ndarray:
    return np.isnan(x) if x.dtype.kind == "f" else np.zeros(len(x), dtype=bool)


MOTION_NAMES = ["tag", "x", "y", "z", "e"]
MOTION_TAG = b"DATA OUTPUT,"


def read_motion(path: Path, rate_hz: float) -> tuple[pa.Table | None, list[Reason]]:
    """motion.csv (Prunt's stream): `DATA OUTPUT,x,y,z,e` lines; line k is at k / rate_hz on the timeline."""
    file = runs.MOTION
    plain = _native.numeric_csv(path, 0, len(MOTION_NAMES) - 1, MOTION_TAG)
    if plain is not None:  # every line a DATA OUTPUT line of plain numbers: the Rust fast path
        return _with_clock(pa.Table.from_arrays([pa.array(c) for c in plain], names=MOTION_NAMES[1:]), rate_hz), []
    bad = _BadRows()
    types = {"tag": pa.string()} | {n: pa.float64() for n in MOTION_NAMES[1:]}
    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK, column_names=MOTION_NAMES),
            parse_options=pcsv.ParseOptions(invalid_row_handler=bad),
            convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=False),
        )
    except pa.ArrowInvalid as e:
        return None, [_conversion_error(e, path, file, MOTION_NAMES, False)]
    reasons = []
    keep = pc.equal(table.column("tag"), "DATA OUTPUT")
    other = table.num_rows - int(pc.sum(keep).as_py() or 0) + bad.count
    if other:
        reasons.append(
            Reason(
                "motion.other_lines",
                f"{other} line(s) that are not DATA OUTPUT were left out",
                "warning",
                file=file,
                details={"lines": other},
            )
        )
    table = table.filter(keep).drop_columns(["tag"])
    for name in MOTION_NAMES[1:]:
        if _missing_mask(table.column(name)).any():
            line = int(np.argmax(_missing_mask(table.column(name)))) + 1
            return None, [Reason("motion.nan", f"NaN or empty value in {name!r}", file=file, line=line, column=name)]
    return _with_clock(table, rate_hz), reasons


def _with_clock(table: pa.Table, rate_hz: float) -> pa.Table:
    """Line k of the stream is at k / rate_hz on the timeline."""
    t = pa.array(np.arange(table.num_rows, dtype=np.float64) / rate_hz)
    return table.add_column(0, pa.field("t", pa.float64(), nullable=False), t)


_FRAME = re.compile(r"^(\d{9})\.(png|jpg|jpeg)$", re.IGNORECASE)
_MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff", "jpeg": b"\xff\xd8\xff"}


def frames_index(folder: Path) -> tuple[pa.Table, list[Reason]]:
    """frames/: one row per image (t on the sensor clock from the name, file, bytes)."""
    rows: list[tuple[float, str, int]] = []
    reasons = []
    for p in sorted(folder.iterdir()):
        m = _FRAME.match(p.name)
        rel = f"{runs.FRAMES}/{p.name}"
        if not m or not p.is_file():
            reasons.append(
                Reason("frames.bad_name", f"{p.name!r} is not <9-digit ms>.png|jpg; left out", "warning", file=rel)
            )
            continue
        with open(p, "rb") as f:
            head = f.read(8)
        if not head.startswith(_MAGIC[m.group(2).lower()]):
            reasons.append(Reason("frames.invalid_image", f"{p.name!r} is not a {m.group(2).upper()} image", file=rel))
            continue
        rows.append((int(m.group(1)) / 1000.0, rel, p.stat().st_size))
    table = pa.table(
        {
            "t": pa.array([r[0] for r in rows], pa.float64()),
            "file": pa.array([r[1] for r in rows], pa.string()),
            "bytes": pa.array([r[2] for r in rows], pa.int64()),
        }
    )
    return table, reasons


def audio_index(path: Path, start_s: float) -> tuple[pa.Table | None, list[Reason]]:
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width, frames = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
    except (wave.Error, EOFError) as e:
        return None, [Reason("audio.invalid", f"not a PCM WAV file: {e}", file=runs.AUDIO)]
    row = {
        "file": [runs.AUDIO],
        "sample_rate": [rate],
        "channels": [channels],
        "sample_width": [width],
        "frames": [frames],
        "start_s": [start_s],
        "duration_s": [frames / rate if rate else 0.0],
    }
    return pa.table(row), []


def sensor_layers(table: pa.Table) -> int | None:
    """Layers the sensors saw (the ``layer`` column is 0-based), if they report it."""
    if "layer" not in table.column_names or table.column("layer").null_count == table.num_rows:
        return None
    top = pc.max(table.column("layer")).as_py()
    return None if top is None else int(top) + 1


def consistency(meta: RunMetadata, gcode_layers: int, planned_s: float, sensors: pa.Table | None) -> list[Reason]:
    """Layer counts, planned time, sensor coverage of the planned print, fault labels."""
    reasons = []
    gfile = meta.gcode
    if meta.layer_count > gcode_layers + LAYER_TOL or (
        meta.outcome == "success" and abs(meta.layer_count - gcode_layers) > LAYER_TOL
    ):
        reasons.append(
            Reason(
                "layers.mismatch",
                f"metadata.json says {meta.layer_count} layers were printed "
                f"({meta.outcome}), the G-code has {gcode_layers}",
                file=gfile,
                field="layer_count",
                details={"metadata": meta.layer_count, "gcode": gcode_layers},
            )
        )
    if meta.planned_time_s is not None and planned_s > 0:
        off = abs(meta.planned_time_s - planned_s) / planned_s
        if off > PLANNED_TIME_TOL_SHARE:
            reasons.append(
                Reason(
                    "metadata.planned_time_mismatch",
                    f"planned_time_s {meta.planned_time_s:g} s, the timeline plans {planned_s:.1f} s ({off:.0%} apart)",
                    "warning",
                    file=runs.METADATA,
                    field="planned_time_s",
                )
            )
    if sensors is not None and sensors.num_rows:
        seen = sensor_layers(sensors)
        if seen is not None and seen > meta.layer_count + LAYER_TOL:
            reasons.append(
                Reason(
                    "layers.mismatch",
                    f"the sensors report layer {seen - 1} (0-based), metadata.json says {meta.layer_count} layers",
                    file=runs.SENSORS,
                    column="layer",
                    details={"metadata": meta.layer_count, "sensors": seen},
                )
            )
        reasons += _coverage(meta, planned_s, sensors)
    for i, f in enumerate(meta.faults):
        if f.onset_layer > max(meta.layer_count, gcode_layers):
            reasons.append(
                Reason(
                    "labels.out_of_range",
                    f"fault {i} ({f.type}) starts at layer {f.onset_layer}, past the last layer",
                    file=runs.METADATA,
                    field=f"faults.{i}.onset_layer",
                )
            )
        if f.onset_s > planned_s * (1 + COVERAGE_TOL_SHARE) + COVERAGE_TOL_S:
            reasons.append(
                Reason(
                    "labels.out_of_range",
                    f"fault {i} ({f.type}) starts at {f.onset_s:g} s, after the planned end {planned_s:.1f} s",
                    file=runs.METADATA,
                    field=f"faults.{i}.onset_s",
                )
            )
    return reasons


def _coverage(meta: RunMetadata, planned_s: float, sensors: pa.Table) -> list[Reason]:
    t = sensors.column("t")
    first, last = float(pc.min(t).as_py()), float(pc.max(t).as_py())
    tol = COVERAGE_TOL_S + COVERAGE_TOL_SHARE * planned_s
    clock = meta.sensor_clock
    if clock is not None:  # simulated: the true map to the timeline is known
        scale = 1 + clock.drift_ppm * 1e-6
        first, last = (first - clock.offset_s) / scale, (last - clock.offset_s) / scale
        late_start = first > tol
    else:
        late_start = False
        first, last = 0.0, last - first
    short = meta.outcome == "success" and last < planned_s - tol
    if not (late_start or short):
        return []
    what = "start after the print began" if late_start else "end before the planned print does"
    return [
        Reason(
            "sensors.short_coverage",
            f"the sensor samples {what}: they cover {first:.1f}..{last:.1f} s of the "
            f"timeline, the print is planned for 0..{planned_s:.1f} s (tolerance {tol:.1f} s)",
            file=runs.SENSORS,
            column="t",
            details={"covered": [first, last], "planned_s": planned_s},
        )
    ]
