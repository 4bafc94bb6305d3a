"""Type stubs for the Rust extension (see native/src/py/mod.rs)."""

import os
from typing import Any, BinaryIO, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "BATCH_COLUMNS",
    "ArrowBatch",
    "GcodeStream",
    "WORD_COLUMNS",
    "__version__",
    "numeric_csv",
    "parse_bytes",
    "parse_file",
    "plan_file",
    "role_of",
]

__version__: str
WORD_COLUMNS: list[str]
BATCH_COLUMNS: list[str]

def role_of(feature: str) -> str: ...
def parse_file(
    path: str | os.PathLike[str], threads: int = 0, chunk_bytes: int = ..., max_diagnostics: int = 10000
) -> dict[str, Any]: ...
def parse_bytes(
    data: bytes, name: str = "<bytes>", threads: int = 0, chunk_bytes: int = ..., max_diagnostics: int = 10000
) -> dict[str, Any]: ...
def numeric_csv(
    path: str | os.PathLike[str], skip_lines: int, ncols: int, prefix: bytes | None = None
) -> list[npt.NDArray[np.float64]] | None: ...
def plan_file(
    path: str | os.PathLike[str],
    printer_cfg: str,
    strict: bool = False,
    threads: int = 0,
    heater_wait_s: float | None = None,
    model: str = "klipper",
) -> dict[str, Any]: ...

@final
class ArrowBatch:
    """A record batch exported through Arrow's C data interface (columns: ``BATCH_COLUMNS``)."""
    @property
    def address(self) -> int: ...

@final
class GcodeStream:
    def __new__(
        cls, source: str | os.PathLike[str] | BinaryIO, chunk_bytes: int = ..., max_diagnostics: int = 10000
    ) -> GcodeStream: ...
    def next_batch(self) -> tuple[ArrowBatch, list[dict[str, Any]]] | None: ...
    def finish(self) -> tuple[str, list[bytes]]: ...
