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
from functools import cached_property
from typing import Any, BinaryIO

import pyarrow as pa

from threedpai import _native
from threedpai.errors import GcodeParseError

PathLike = str | os.PathLike[str]

WORDS: list[str] = list(_native.WORD_COLUMNS)

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


def role_of(feature: str) -> str:
    """The normalized extrusion role of a slicer's feature label ("External perimeter" -> "outer_wall");
    the ``role`` column holds the same."""
    return _native.role_of(feature)


if SCHEMA.names != list(_native.BATCH_COLUMNS):
    raise ImportError(f"threedpai._native exports {_native.BATCH_COLUMNS}, expected {SCHEMA.names}")


def _batch(exported: Any) -> pa.RecordBatch:
    """A batch the core exported through Arrow's C data interface, taken over without a copy
    (dictionaries included)."""
    return pa.RecordBatch._import_from_c(exported.address, SCHEMA)


def _public_summary(s: dict[str, Any]) -> dict[str, Any]:
    """The summary without thumbnail data (for metadata and printing); the core's JSON of it is
    the same."""
    return s | {"thumbnails": [{k: v for k, v in t.items() if k != "data"} for t in s["thumbnails"]]}


def _summary(summary_json: str, thumbnails: list[bytes]) -> dict[str, Any]:
    """The summary dict from the core's JSON, each thumbnail with its ``data``."""
    s: dict[str, Any] = json.loads(summary_json)
    for t, data in zip(s["thumbnails"], thumbnails, strict=True):
        t["data"] = data
    return s


@dataclass
class ParsedGcode:
    """Everything one parse gives: the table, the summary and the diagnostics."""

    table: pa.Table
    summary_json: str
    thumbnails: list[bytes] = field(default_factory=list)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    diagnostics_total: int = 0

    @cached_property
    def summary(self) -> dict[str, Any]:
        """File-level facts (docs/gcode.md), built on first use: ``parse`` never needs them."""
        return _summary(self.summary_json, self.thumbnails)


def _raise_first(path: str, diagnostics: list[dict[str, Any]]) -> None:
    if diagnostics:
        d = diagnostics[0]
        raise GcodeParseError(d["message"], file=path, line=d["line"], code=d["code"])


def read(source: PathLike | bytes, *, strict: bool = False, threads: int = 0, chunk_bytes: int = 0) -> ParsedGcode:
    """Parses a G-code (``.gcode``) or Prusa binary G-code (``.bgcode``) file, or bytes.

    Lenient by default: problems become diagnostics (with line numbers) and parsing goes on.
    ``strict=True`` raises :class:`GcodeParseError` naming the file and the first bad line.
    ``threads=0`` uses every core. The input is lexed in pieces of ``chunk_bytes`` (one record
    batch each); 0 chooses 4 MiB on one thread and on several 1 MiB, shrinking to 128 KiB near the
    end so the threads finish together.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        name = "<bytes>"
        raw = _native.parse_bytes(bytes(source), name, threads, chunk_bytes)
    else:
        name = os.fspath(source)
        raw = _native.parse_file(name, threads, chunk_bytes)
    if strict:
        _raise_first(name, raw["diagnostics"])
    batches = [_batch(b) for b in raw["batches"]]
    # The summary's JSON comes from the core: json.dumps of a 779-layer summary took 4 % of a parse.
    schema = SCHEMA.with_metadata({b"threedpai.summary": raw["summary_json"]})
    table = pa.Table.from_batches(batches, schema=schema)
    return ParsedGcode(table, raw["summary_json"], raw["thumbnails"], raw["diagnostics"], raw["diagnostics_total"])


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
            exported, diagnostics = item
            if self.strict:
                _raise_first(str(self.name), diagnostics)
            self.diagnostics.extend(diagnostics)
            batch = _batch(exported)
            if batch.num_rows:
                last = batch.num_rows - 1
                self.bytes_read = int(batch.column("offset")[last].as_py()) + 1
            yield batch
        self.summary = _summary(*self._stream.finish())
        self.bytes_read = self.summary["bytes"]
