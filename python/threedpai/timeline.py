"""Motion timeline: when each G-code move starts and ends, planned the way Klipper plans it.

>>> table = plan("print.gcode", printer="printer.cfg")     # pyarrow.Table, one row per move
>>> t = read("print.gcode")                                  # PlannedTimeline: table, summary
>>> t.at_line([100, 2000])                                   # elapsed and remaining seconds

Columns and summary keys are described in docs/timeline.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from threedpai import _native

PathLike = str | os.PathLike[str]
DICT_TYPE = pa.dictionary(pa.int32(), pa.string())

SCHEMA = pa.schema(
    [
        pa.field("move", pa.int64(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("kind", DICT_TYPE, nullable=False),
        pa.field("arc", pa.bool_(), nullable=False),
        *[
            pa.field(name, pa.float64(), nullable=False)
            for name in (
                "t_start", "t_end", "accel_t", "cruise_t", "decel_t", "start_v", "cruise_v", "end_v", "accel",
                "start_x", "start_y", "start_z", "start_e", "end_x", "end_y", "end_z", "end_e", "distance",
            )
        ],
        pa.field("layer", pa.int32()),
        pa.field("feature", DICT_TYPE),
        pa.field("object", DICT_TYPE),
    ]
)  # fmt: skip

ARC_FLAG = 4


@cache
def default_printer() -> str:
    """The generic printer used when none is given (package data ``printers/generic.cfg``)."""
    return resources.files("threedpai").joinpath("printers/generic.cfg").read_text()


def _printer_text(printer: PathLike | None, overrides: dict[str, Any] | None = None) -> str:
    """Klipper config text: a printer.cfg, a TOML file with the same sections
    (``[printer] max_velocity = 300``), or the generic default; then ``overrides``
    (``{"printer.max_accel": 5000}``; a bare key means ``[printer]``), appended as later sections,
    which win as they do in Klipper's config."""
    if printer is None:
        text = default_printer()
    elif os.fspath(printer).endswith(".toml"):
        import tomllib

        with open(os.fspath(printer), "rb") as f:
            text = _cfg_text(tomllib.load(f))
    else:
        with open(os.fspath(printer), encoding="utf-8") as f:
            text = f.read()
    if overrides:
        nested: dict[str, dict[str, Any]] = {}
        for key, value in overrides.items():
            section, _, option = key.rpartition(".")
            nested.setdefault(section or "printer", {})[option] = value
        text += "\n" + _cfg_text(nested)
    return text


def _cfg_text(sections: dict[str, Any]) -> str:
    lines = []
    for section, options in sections.items():
        if not isinstance(options, dict):
            raise ValueError(f"printer TOML: [{section}] must be a table of options")
        lines.append(f"[{section}]")
        lines += [f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in options.items()]
    return "\n".join(lines) + "\n"


def _indexed(ids: np.ndarray, names: list[str]) -> pa.DictionaryArray:
    mask = ids < 0
    indices = pa.array(ids, type=pa.int32(), mask=mask if mask.any() else None)
    return pa.DictionaryArray.from_arrays(indices, pa.array(names, pa.string()))


@dataclass
class PlannedTimeline:
    """A planned file: one row per move, plus totals, per-layer/feature/object time and
    diagnostics."""

    table: pa.Table
    summary: dict[str, Any]
    diagnostics: list[dict[str, Any]] = field(default_factory=list)

    def totals(self, by: str) -> dict[Any, float]:
        """Seconds of motion per ``kind``, ``layer``, ``feature`` or ``object`` (None: rows
        without one)."""
        seconds = self.table.column("t_end").to_numpy() - self.table.column("t_start").to_numpy()
        col = self.table.column(by).combine_chunks()
        if isinstance(col, pa.DictionaryArray):
            ids, names = col.indices.fill_null(-1).to_numpy(), col.dictionary.to_pylist()
        else:
            ids, names = col.fill_null(-1).to_numpy(), None
        sums = np.bincount(ids.astype(np.int64) + 1, weights=seconds)
        out: dict[Any, float] = {}
        for slot in np.flatnonzero(sums):
            key = int(slot) - 1
            out[None if key < 0 else (names[key] if names is not None else key)] = float(sums[slot])
        return out

    def at_line(self, lines: Any) -> tuple[np.ndarray, np.ndarray]:
        """Elapsed and remaining seconds when execution reaches each 1-based line."""
        return self._at(self.table.column("line").to_numpy(), lines)

    def at_offset(self, offsets: Any) -> tuple[np.ndarray, np.ndarray]:
        """Elapsed and remaining seconds when execution reaches each byte offset."""
        return self._at(self.table.column("offset").to_numpy(), offsets)

    def _at(self, keys: np.ndarray, query: Any) -> tuple[np.ndarray, np.ndarray]:
        # The first move at or after the position; past the last move the print is over.
        total = self.summary["total_time_s"]
        starts = np.append(self.table.column("t_start").to_numpy(), total)
        elapsed = starts[np.searchsorted(keys, np.asarray(query), side="left")]
        return elapsed, np.maximum(total - elapsed, 0.0)


def read(
    path: PathLike,
    printer: PathLike | None = None,
    *,
    strict: bool = False,
    threads: int = 0,
    heater_wait_s: float | None = None,
    model: str = "klipper",
    limits: dict[str, Any] | None = None,
) -> PlannedTimeline:
    """Parses and plans ``path`` for ``printer`` (a Klipper printer.cfg; default: a generic
    Cartesian printer). ``heater_wait_s``: seconds per heater wait (default: none, as Klipper's
    batch mode). ``strict``: stop at the first command Klipper would reject.

    ``model``: ``klipper`` (default), ``marlin`` (Marlin-family firmware: classic jerk, limits
    from the file's M201/M203/M204/M205 and slicer settings; ``printer`` is not used), or
    ``marlin-slicer`` (Marlin with PrusaSlicer's estimator conventions: G4 takes no time).
    ``printer`` may also be a TOML file with the same sections; ``limits`` overrides options
    (``{"max_accel": 5000, "extruder.max_extrude_only_velocity": 60}``)."""
    text = _printer_text(printer, limits)
    raw = _native.plan_file(os.fspath(path), text, strict, threads, heater_wait_s, model)
    c = raw["columns"]
    n = len(c["t_start"])
    duration = c["accel_t"] + c["cruise_t"] + c["decel_t"]
    kinds = pa.DictionaryArray.from_arrays(pa.array(c["kind"].view(np.int8)), pa.array(raw["kinds"]))
    columns = [
        pa.array(np.arange(n, dtype=np.int64)),
        pa.array(c["line"].view(np.int64)),  # u64 from the core; values far below 2**63
        pa.array(c["offset"].view(np.int64)),
        kinds,
        pa.array((c["flags"] & ARC_FLAG) != 0),
        pa.array(c["t_start"]),
        pa.array(c["t_start"] + duration),
        *[
            pa.array(c[name])
            for name in (
                "accel_t", "cruise_t", "decel_t", "start_v", "cruise_v", "end_v", "accel",
                "start_x", "start_y", "start_z", "start_e", "end_x", "end_y", "end_z", "end_e", "distance",
            )
        ],
        pa.array(c["layer"], mask=c["layer"] < 0),
        _indexed(c["feature"], raw["features"]),
        _indexed(c["object"], raw["objects"]),
    ]  # fmt: skip
    table = pa.Table.from_arrays(columns, schema=SCHEMA)
    summary = {
        "total_time_s": raw["total_time"],
        "moves": raw["moves"],
        "rows": n,
        "bytes": raw["bytes"],
        "g28_count": raw["g28_count"],
        "g28_time_s": raw["g28_time"],
        "arc_segments": raw["arc_segments"],
        "invalid_m204": raw["invalid_m204"],
        "unknown_commands": dict(raw["unknown_commands"]),
        "first_error": raw["first_error"],
        "stopped_at_error": raw["stopped_at_error"],
        "diagnostics": raw["diagnostics_total"],
        "config_issues": raw["config_issues"],
    }
    return PlannedTimeline(table, summary, raw["diagnostics"])


def plan(path: PathLike, printer: PathLike | None = None, **kw: Any) -> pa.Table:
    """One row per planned move as a ``pyarrow.Table`` (see :func:`read`)."""
    return read(path, printer, **kw).table


def summary(path: PathLike, printer: PathLike | None = None, **kw: Any) -> dict[str, Any]:
    """Total time, homing, arcs, unknown commands, and ``time_by_kind|layer|feature|object``."""
    t = read(path, printer, **kw)
    return t.summary | {f"time_by_{key}": t.totals(key) for key in ("kind", "layer", "feature", "object")}


def annotate(path: PathLike, timeline: PlannedTimeline) -> bytes:
    """A copy of the G-code at ``path`` with its own ``M73`` lines replaced by ``M73 P<percent>
    R<minutes left>`` computed from ``timeline``, written before every line where either value
    changes (what PrusaSlicer writes for Marlin and Prusa firmware, and Moonraker reads)."""
    from threedpai import gcode

    with open(os.fspath(path), "rb") as f:
        data = f.read()
    lines = gcode.parse(data).select(["offset", "command"])
    starts = lines.column("offset").to_numpy()
    ends = np.append(starts[1:], len(data))
    is_m73 = np.asarray(pa.compute.equal(pa.compute.cast(lines.column("command"), pa.string()), "M73").fill_null(False))
    total = timeline.summary["total_time_s"]
    elapsed, remaining = timeline.at_offset(starts)
    percent = np.floor(100 * elapsed / total).astype(np.int64) if total > 0 else np.zeros(len(starts), np.int64)
    minutes = np.ceil(remaining / 60).astype(np.int64)
    kept = np.flatnonzero(~is_m73)
    mark = percent[kept] * 1_000_000 + minutes[kept]
    changed = kept[np.flatnonzero(np.diff(mark, prepend=-1) != 0)]
    out: list[bytes] = []
    pos = 0
    # Walk the few places where something is inserted or dropped; copy the runs between them.
    for i in np.union1d(changed, np.flatnonzero(is_m73)):
        out.append(data[pos : starts[i]])
        if is_m73[i]:
            pos = ends[i]
            continue
        out.append(b"M73 P%d R%d\n" % (percent[i], minutes[i]))
        pos = starts[i]
    out.append(data[pos:])
    if out[-1] and not out[-1].endswith((b"\n", b"\r")):
        out.append(b"\n")
    out.append(b"M73 P100 R0\n")
    return b"".join(out)
