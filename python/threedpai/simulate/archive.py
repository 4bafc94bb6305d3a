"""Many runs at once: sources, the fault schedule, seeds and a process pool."""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from threedpai.runs import FaultType
from threedpai.simulate.run import Options, PathLike, RunResult, simulate_run
from threedpai.simulate.sample import sample_gcode

GCODE_SUFFIXES = (".gcode", ".bgcode", ".gco", ".g")


def find_sources(sources: Iterable[PathLike]) -> list[Path]:
    """G-code files from files, folders (searched recursively) and glob patterns, sorted per argument."""
    found: list[Path] = []
    for item in sources:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in GCODE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        elif matches := sorted(glob.glob(text, recursive=True)):
            found += [Path(m) for m in matches if Path(m).is_file()]
        else:
            raise FileNotFoundError(f"no G-code at {text}")
    if not found and sources:
        raise FileNotFoundError("no G-code files among the sources")
    return found


def fault_schedule(n: int, faults: Sequence[FaultType], clean_share: float) -> list[FaultType | None]:
    """Which fault each run gets: clean runs spread evenly at ``clean_share``, the faulty ones
    cycle through ``faults`` so that every type appears once ``n`` is large enough."""
    if not 0.0 <= clean_share <= 1.0:
        raise ValueError(f"clean share must be 0 to 1, not {clean_share}")
    if not faults:
        clean_share = 1.0
    plan: list[FaultType | None] = []
    faulty = 0
    for i in range(n):
        if np.floor((i + 1) * clean_share) > np.floor(i * clean_share):
            plan.append(None)
        else:
            plan.append(faults[faulty % len(faults)])
            faulty += 1
    return plan


@dataclass(frozen=True)
class _Job:
    index: int
    source: Path
    run_id: str
    fault: FaultType | None
    seed: np.random.SeedSequence


def _run(job: _Job, out: Path, options: Options) -> RunResult:
    return simulate_run(job.source, out, run_id=job.run_id, fault=job.fault, seed=job.seed, options=options)


def simulate(
    sources: Iterable[PathLike] | None,
    n: int,
    out: PathLike,
    *,
    seed: int = 0,
    faults: Sequence[FaultType] | None = None,
    clean_share: float = 0.2,
    options: Options | None = None,
    workers: int | None = None,
    shuffle: bool = False,
    progress: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Simulates ``n`` runs into ``out/run-NNNNN``. ``sources``: G-code files, folders or globs
    (None or empty: threedpai's procedural sample prints); runs take them in turn, or at random
    with ``shuffle``. ``faults``: the types to inject (default: all), ``clean_share`` of the runs
    stay clean. Run ``i`` gets child ``i`` of ``SeedSequence(seed)``, so the archive is the same
    whatever ``workers`` (default: every core). ``progress`` is called as each run is done."""
    if n < 0:
        raise ValueError("n must be >= 0")
    opts = options or Options()
    out = Path(out)
    kinds = list(FaultType) if faults is None else list(faults)
    width = max(5, len(str(n - 1)))
    ids = [f"run-{i:0{width}d}" for i in range(n)]
    clash = [i for i in ids if (out / i).exists()]
    if clash:
        raise FileExistsError(f"{out / clash[0]} exists ({len(clash)} of the runs): choose another output folder")
    with tempfile.TemporaryDirectory(prefix="threedpai-samples-") as samples:
        files = find_sources(sources or [])
        if not files:
            files = [
                sample_gcode(Path(samples) / "sample-box.gcode", shape="box"),
                sample_gcode(Path(samples) / "sample-cylinder.gcode", shape="cylinder", size=24.0, height=3.0),
            ]
        root = np.random.SeedSequence(seed)
        children = root.spawn(n)
        pick = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(n, 0))).integers(0, len(files), n)
        plan = fault_schedule(n, kinds, clean_share)
        jobs = [
            _Job(i, files[int(pick[i]) if shuffle else i % len(files)], ids[i], plan[i], children[i]) for i in range(n)
        ]
        return _execute(jobs, out, opts, workers or os.cpu_count() or 1, progress)


def _execute(
    jobs: list[_Job], out: Path, options: Options, workers: int, progress: Callable[[RunResult], None] | None
) -> list[RunResult]:
    results: dict[int, RunResult] = {}
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            results[job.index] = _run(job, out, options)
            if progress:
                progress(results[job.index])
        return [results[j.index] for j in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        pending: dict[Future[RunResult], int] = {}
        queue = iter(jobs)
        # Keep the pool busy without submitting every job up front (a large archive is many jobs).
        for job in queue:
            pending[pool.submit(_run, job, out, options)] = job.index
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                results[index] = future.result()
                if progress:
                    progress(results[index])
                nxt = next(queue, None)
                if nxt is not None:
                    pending[pool.submit(_run, nxt, out, options)] = nxt.index
    return [results[j.index] for j in jobs]
