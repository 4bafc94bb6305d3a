"""Shared fixtures: the real G-code corpus in ../shared (skipped with a message when absent), a local Dask cluster."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"


def corpus_file(relative: str) -> Path:
    """A corpus file, or a skip naming what is missing (a user's clone has no ../shared)."""
    path = CORPUS / relative
    if not path.exists():
        pytest.skip(f"needs the real G-code corpus: {path} is absent (it lives in ../shared/corpus)")
    return path


def corpus_files() -> list[Path]:
    """Every corpus file (text and binary G-code); empty when the corpus is absent."""
    if not CORPUS.exists():
        return []
    return sorted(p for p in CORPUS.glob("*/*") if p.suffix in {".gcode", ".bgcode", ".test"})


def run_part(root: Path, phase: str, table: str, run_id: str) -> Path:
    """A run's partition folder in a dataset, whatever its scenario (``table/scenario=…/run_id=…``)."""
    found = sorted((root / phase / table).glob(f"scenario=*/run_id={run_id}"))
    assert len(found) <= 1, found
    return found[0] if found else root / phase / table / "scenario=?" / f"run_id={run_id}"


def needs_corpus() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not CORPUS.exists(), reason=f"needs the real G-code corpus at {CORPUS}")


@pytest.fixture(scope="session")
def dask_executor() -> Iterator[Executor]:
    """The executor of a local Dask cluster (two worker processes), started once; skipped without distributed."""
    distributed = pytest.importorskip("distributed")
    # ":0": a free port for the scheduler's HTTP server (None still takes 8787, and a second cluster warns)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    with cluster, distributed.Client(cluster) as client:
        yield client.get_executor()
