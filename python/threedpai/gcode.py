"""G-code parsing: one Arrow row per line, with the slicer's context, plus a file summary.

>>> table = parse("print.gcode")            # pyarrow.Table
>>> info = summary("print.gcode")           # dict: producer, layers, settings, estimates, ...
>>> for batch in GcodeReader("huge.gcode"):  # pyarrow.RecordBatch pieces, for files larger than memory
...     ...

Columns and summary keys are described in docs/gcode.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from threedpai import _native
from threedpai.errors import GcodeParseError

PathLike = str | os.PathLike[str]

WORDS: list[str] = list(_native.WORD_COLUMNS)

_ENTRIES = pa.struct([pa.field("key", pa.string(), nullable=False), pa.field("value", pa.string())])
PARAMS_TYPE = pa.map_(pa.string(), pa.string())
DICT_TYPE = pa.dictionary(pa.int32(), pa.string())

SCHEMA = pa.schema(
    [
        pa.field("line", pa.int64(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("command", DICT_TYPE),
        pa.field("n", pa.int64()),
        pa.field("checksum_ok", pa.bool_()),
        *[pa.field(w, pa.float64()) for w in WORDS],
        pa.field("params", PARAMS_TYPE),
        pa.field("text", pa.string()),
        pa.field("comment", pa.string()),
        pa.field("layer", pa.int32()),
        pa.field("z", pa.float64()),
        pa.field("feature", DICT_TYPE),
        pa.field("role", DICT_TYPE),
        pa.field("object", DICT_TYPE),
        pa.field("width", pa.float64()),
        pa.field("height", pa.float64()),
    ]
)

# Normalized extrusion roles, matched on the slicer's own label (first match wins).
_ROLE_RULES: list[tuple[str, tuple[str, ...]]] = [
    (
        "support_interface",
        (
            "support interface",
            "support-interface",
            "support material interface",
            "support roof",
            "support floor",
            "support transition",
        ),
    ),
    ("support", ("support",)),
    ("wipe_tower", ("wipe tower", "prime tower", "prime-tower", "wipe_tower", "purge")),
    ("skirt_brim", ("skirt", "brim")),
    ("overhang_wall", ("overhang",)),
    ("outer_wall", ("external perimeter", "outer wall", "wall-outer", "outer perimeter", "outer_wall", "shell")),
    ("inner_wall", ("perimeter", "inner wall", "wall-inner", "inner_wall", "wall")),
    ("bridge", ("bridge",)),
    ("gap_fill", ("gap fill", "gapfill", "gap infill", "thin")),
    ("ironing", ("ironing",)),
    ("top_surface", ("top solid", "top surface", "top", "skin", "roof")),
    ("bottom_surface", ("bottom surface", "bottom", "floor")),
    ("solid_infill", ("solid infill", "solid fill", "internal solid", "solid")),
    ("infill", ("infill", "fill", "sparse")),
    ("custom", ("custom",)),
]


def role_of(feature: str) -> str:
    """The normalized extrusion role of a slicer's feature label ("External perimeter" -> "outer_wall")."""
    label = feature.strip().lower().replace("_", " ")
    for role, needles in _ROLE_RULES:
        if any(n.replace("_", " ") in label for n in needles):
            return role
    return "other"


def _buf(a: np.ndarray | None) -> pa.Buffer | None:
    return None if a is None else pa.py_buffer(a)


# Arrays are built from buffers, not with ``pa.array``: its first call imports pandas when installed
# (~150 ms), and buffers are what the core hands over anyway.
def _plain(values: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def _strings(values: list[str]) -> pa.Array:
    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )


def _all_null(kind: pa.DataType, rows: int) -> pa.Array:
    """A column with no values, without writing any: one cached zero buffer serves as validity and
    values of every such column (buffers are immutable, so sharing is safe)."""
    return pa.Array.from_buffers(kind, rows, [_zeros(rows * 8), _zeros(rows * 8)], rows)


_ZEROS = pa.py_buffer(b"")


def _zeros(size: int) -> pa.Buffer:
    global _ZEROS
    if _ZEROS.size < size:
        _ZEROS = pa.py_buffer(np.zeros(size, np.uint8))
    return _ZEROS.slice(0, size)


def _f64(col: tuple[np.ndarray, np.ndarray, int] | None, rows: int) -> pa.Array:
    if col is None:  # the word never occurs in this batch
        return _all_null(pa.float64(), rows)
    values, valid, nulls = col
    return pa.Array.from_buffers(pa.float64(), len(values), [_buf(valid) if nulls else None, _buf(values)], nulls)


def _i64(col: tuple[np.ndarray, np.ndarray, int] | None, rows: int) -> pa.Array:
    if col is None:
        return _all_null(pa.int64(), rows)
    values, valid, nulls = col
    return pa.Array.from_buffers(pa.int64(), rows, [_buf(valid) if nulls else None, _buf(values)], nulls)


def _offsets(offsets: np.ndarray | None, rows: int) -> pa.Buffer:
    """Offsets None: no row has a value, so every offset is zero."""
    return _zeros((rows + 1) * 4) if offsets is None else pa.py_buffer(offsets)


def _str(col: tuple[int, np.ndarray | None, np.ndarray, np.ndarray, int]) -> pa.Array:
    n, offsets, data, valid, nulls = col
    return pa.Array.from_buffers(
        pa.string(), n, [_buf(valid) if nulls else None, _offsets(offsets, n), _buf(data)], nulls
    )


def _indices(col: tuple[np.ndarray, np.ndarray, int]) -> pa.Array:
    values, valid, nulls = col
    return pa.Array.from_buffers(pa.int32(), len(values), [_buf(valid) if nulls else None, _buf(values)], nulls)


def _dict(col: tuple[np.ndarray, np.ndarray, int], dictionary: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(_indices(col), dictionary, safe=False)  # indices come from the dictionary


def _params(col: tuple, rows: int) -> pa.Array:
    offsets, keys, values, valid, nulls = col
    entries = pa.StructArray.from_arrays([_str(keys), _str(values)], fields=list(_ENTRIES))
    return pa.Array.from_buffers(
        PARAMS_TYPE, rows, [_buf(valid) if nulls else None, _offsets(offsets, rows)], nulls, children=[entries]
    )


@dataclass
class _Dictionaries:
    commands: pa.Array
    features: pa.Array
    roles: pa.Array
    objects: pa.Array

    @classmethod
    def of(cls, commands: list[str], features: list[str], objects: list[str]) -> _Dictionaries:
        return cls(
            _strings(commands),
            _strings(features),
            _strings([role_of(f) for f in features]),
            _strings(objects),
        )


def _record_batch(b: dict[str, Any], d: _Dictionaries) -> pa.RecordBatch:
    rows = b["rows"]
    ck_values, ck_valid, ck_nulls = b["checksum_ok"]
    feature = _indices(b["feature"])
    columns = [
        _plain(b["line"]),
        _plain(b["offset"]),
        _dict(b["command"], d.commands),
        _i64(b["n"], rows),
        pa.Array.from_buffers(pa.bool_(), rows, [_buf(ck_valid) if ck_nulls else None, _buf(ck_values)], ck_nulls),
        *[_f64(b[w], rows) for w in WORDS],
        _params(b["params"], rows),
        _str(b["text"]),
        _str(b["comment"]),
        _indices(b["layer"]),
        _f64(b["z"], rows),
        pa.DictionaryArray.from_arrays(feature, d.features, safe=False),
        # Roles share the feature indices; only the dictionary differs.
        pa.DictionaryArray.from_arrays(feature, d.roles, safe=False),
        _dict(b["object"], d.objects),
        _f64(b["width"], rows),
        _f64(b["height"], rows),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def _public_summary(s: dict[str, Any]) -> dict[str, Any]:
    """The summary with bytes-free thumbnail descriptions (for metadata and printing)."""
    out = dict(s)
    out["thumbnails"] = [
        {k: v for k, v in t.items() if k != "data"} | {"bytes": len(t["data"])} for t in s["thumbnails"]
    ]
    return out


def _with_metadata(schema: pa.Schema, summary: dict[str, Any]) -> pa.Schema:
    return schema.with_metadata({b"threedpai.summary": json.dumps(_public_summary(summary)).encode()})


@dataclass
class ParsedGcode:
    """Everything one parse gives: the table, the summary and the diagnostics."""

    table: pa.Table
    summary: dict[str, Any]
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    diagnostics_total: int = 0


def _raise_first(path: str, diagnostics: list[dict[str, Any]]) -> None:
    if diagnostics:
        d = diagnostics[0]
        raise GcodeParseError(d["message"], file=path, line=d["line"], code=d["code"])


def read(source: PathLike | bytes, *, strict: bool = False, threads: int = 0, chunk_bytes: int = 0) -> ParsedGcode:
    """Parses a G-code (``.gcode``) or Prusa binary G-code (``.bgcode``) file, or bytes.

    Lenient by default: problems become diagnostics (with line numbers) and parsing goes on.
    ``strict=True`` raises :class:`GcodeParseError` naming the file and the first bad line.
    ``threads=0`` uses every core. The input is lexed in pieces of ``chunk_bytes`` (one record
    batch each); 0 chooses 4 MiB on one thread and 1 MiB on several.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        name = "<bytes>"
        raw = _native.parse_bytes(bytes(source), name, threads, chunk_bytes)
    else:
        name = os.fspath(source)
        raw = _native.parse_file(name, threads, chunk_bytes)
    if strict:
        _raise_first(name, raw["diagnostics"])
    d = _Dictionaries.of(raw["commands"], raw["features"], raw["objects"])
    batches = [_record_batch(b, d) for b in raw["batches"]]
    summary = raw["summary"]
    summary["diagnostics"] = raw["diagnostics_total"]
    table = pa.Table.from_batches(batches, schema=_with_metadata(SCHEMA, summary))
    return ParsedGcode(table, summary, raw["diagnostics"], raw["diagnostics_total"])


def parse(source: PathLike | bytes, *, strict: bool = False, threads: int = 0) -> pa.Table:
    """One row per line as a ``pyarrow.Table`` (see :func:`read`); the summary is in the schema metadata."""
    return read(source, strict=strict, threads=threads).table


def summary(source: PathLike | bytes) -> dict[str, Any]:
    """File-level facts: producer, flavour, layers, features, objects, settings, estimates, thumbnails."""
    return read(source).summary


class GcodeReader:
    """Reads text G-code as record batches of about ``batch_bytes`` of input each, in bounded
    memory, from a path or a binary file object (``open(p, "rb")``, ``gzip.open(p)``,
    ``sys.stdin.buffer``). After iteration, ``summary`` and ``diagnostics`` hold the file's facts;
    ``bytes_read`` grows as batches arrive (for progress bars). Rows equal :func:`parse`'s;
    dictionary columns carry the dictionary as it stood after each batch.
    """

    def __init__(self, source: PathLike | BinaryIO, *, batch_bytes: int = 64 << 20, strict: bool = False):
        self.name = getattr(source, "name", "<stream>") if hasattr(source, "read") else os.fspath(source)
        self.strict = strict
        self._stream = _native.GcodeStream(source, batch_bytes)
        self.summary: dict[str, Any] | None = None
        self.diagnostics: list[dict[str, Any]] = []
        self.bytes_read = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while (item := self._stream.next_batch()) is not None:
            cols, commands, features, objects, diagnostics = item
            if self.strict:
                _raise_first(str(self.name), diagnostics)
            self.diagnostics.extend(diagnostics)
            batch = _record_batch(cols, _Dictionaries.of(commands, features, objects))
            if batch.num_rows:
                last = batch.num_rows - 1
                self.bytes_read = int(batch.column("offset")[last].as_py()) + 1
            yield batch
        self.summary = self._stream.finish()
        self.summary["diagnostics"] = self.summary.pop("diagnostics_total")
        self.bytes_read = self.summary["bytes"]
