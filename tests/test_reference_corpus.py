"""The fast parser agrees with the pure-Python reference (reference_parser.py) on real G-code.

Every text file under ../shared/corpus/{public,sliced} smaller than 3 MB is parsed by both; every
row and every column the reference models must agree. Skipped when the corpus is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import reference_parser as ref
from threedpai import gcode

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
MAX_BYTES = 3 << 20

if not CORPUS.is_dir():
    pytest.skip(
        f"needs the real G-code corpus at {CORPUS} (../shared/corpus from the repository root)",
        allow_module_level=True,
    )


def text_files() -> list[Path]:
    """Real G-code text: not the corpus's Markdown notes, not binary G-code."""
    files = []
    for path in sorted(p for d in ("public", "sliced") for p in (CORPUS / d).glob("*") if p.is_file()):
        if path.suffix == ".md" or path.stat().st_size >= MAX_BYTES:
            continue
        with path.open("rb") as f:
            if f.read(4) == b"GCDE":
                continue
        files.append(path)
    return files


FILES = text_files()


def test_corpus_has_text_files() -> None:
    assert FILES, f"no text G-code under {CORPUS}"


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_fast_parser_matches_reference(path: Path) -> None:
    data = path.read_bytes()
    rows = ref.parse(data)
    fast = ref.table_rows(gcode.parse(path))
    diffs = ref.differences(data, rows, fast)
    assert not diffs, f"{path}: fast parser disagrees with the reference:\n" + "\n".join(diffs)
