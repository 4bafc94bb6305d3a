"""Benchmarks need the real corpus; they skip with a message without it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def big_gcode() -> Path:
    path = CORPUS / "sliced" / "ps_voron2_torus_x4_0.2_fwretract_labels.gcode"
    if not path.exists():
        pytest.skip(f"needs the real G-code corpus at {CORPUS}")
    return path
