"""Type stubs for the Rust extension (see native/src/py/mod.rs)."""

import os
from typing import Any

__version__: str
WORD_COLUMNS: list[str]

def parse_file(
    path: str | os.PathLike[str], threads: int = 0, chunk_bytes: int = ..., max_diagnostics: int = 10000
) -> dict[str, Any]: ...
def parse_bytes(
    data: bytes, name: str = "<bytes>", threads: int = 0, chunk_bytes: int = ..., max_diagnostics: int = 10000
) -> dict[str, Any]: ...

class GcodeStream:
    def __init__(self, path: str | os.PathLike[str], chunk_bytes: int = ..., max_diagnostics: int = 10000) -> None: ...
    def next_batch(self) -> tuple[dict[str, Any], list[str], list[str], list[str], list[dict[str, Any]]] | None: ...
    def finish(self) -> dict[str, Any]: ...
