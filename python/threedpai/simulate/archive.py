"""Many runs at once: sources, the fault schedule, seeds, a process pool (or any executor) and resuming."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from threedpai.engine import process_pool
from threedpai.runs import METADATA, FaultType, RunMetadata
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
    executor: Executor | None = None,
    resume: bool = False,
) -> list[RunResult]:
    """Simulates ``n`` runs into ``out/run-NNNNN``. ``sources``: G-code files, folders or globs
    (None or empty: threedpai's procedural sample prints); runs take them in turn, or at random
    with ``shuffle``. ``faults``: the types to inject (default: all), ``clean_share`` of the runs
    stay clean. Run ``i`` gets child ``i`` of ``SeedSequence(seed)``, so the archive is the same
    whatever ``workers`` (default: every core). ``progress`` is called as each run is done.

    ``executor``: run the jobs there (e.g. a Dask ``client.get_executor()``, whose workers must see
    ``sources`` and ``out``) instead of on a process pool of our own; ``workers`` then only bounds
    the jobs in flight (two per worker). ``resume``: keep the run folders that exist (a folder
    appears whole, by a rename, so it is complete), remove the temporary folders a killed run left
    and simulate the rest; without it an existing run folder is an error."""
    if n < 0:
        raise ValueError("n must be >= 0")
    opts = options or Options()
    out = Path(out)
    kinds = list(FaultType) if faults is None else list(faults)
    width = max(5, len(str(n - 1)))
    ids = [f"run-{i:0{width}d}" for i in range(n)]
    existing = {i for i, run_id in enumerate(ids) if (out / run_id).exists()}
    if existing and not resume:
        first = ids[min(existing)]
        raise FileExistsError(f"{out / first} exists ({len(existing)} of the runs): choose another output folder")
    if resume:
        _remove_leftovers(out)
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
        results = {j.index: _resumed(j, out) for j in jobs if j.index in existing}
        if progress:
            for kept in results.values():
                progress(kept)
        todo = [j for j in jobs if j.index not in existing]
        results |= _execute(todo, out, opts, workers or os.cpu_count() or 1, progress, executor)
        return [results[j.index] for j in jobs]


def _remove_leftovers(out: Path) -> None:
    """The temporary folders of runs that a killed simulation did not finish (simulate_run's ``.<run_id>.*.tmp``)."""
    for tmp in out.glob(".run-*.tmp") if out.is_dir() else []:
        if tmp.is_dir():
            shutil.rmtree(tmp)


def _resumed(job: _Job, out: Path) -> RunResult:
    """The result of a run folder an earlier call wrote, rebuilt from its metadata. It must be the
    run this job would make: a folder from another seed, source or schedule would mix two archives."""
    path = out / job.run_id
    meta = RunMetadata.model_validate_json((path / METADATA).read_text())
    fault = meta.faults[0].type if meta.faults else None
    made = (meta.seed, meta.notes.get("spawn_key"), meta.notes.get("source_gcode"), fault)
    if made != (job.seed.entropy, list(job.seed.spawn_key), job.source.name, job.fault):
        raise FileExistsError(
            f"{path} was simulated from another seed, source or fault schedule: it cannot be resumed here"
        )
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return RunResult(path, fault, meta.outcome, (path / meta.gcode).stat().st_size, size, 0.0, 0.0, 0.0)


def _execute(
    jobs: list[_Job],
    out: Path,
    options: Options,
    workers: int,
    progress: Callable[[RunResult], None] | None,
    executor: Executor | None,
) -> dict[int, RunResult]:
    results: dict[int, RunResult] = {}

    def finish(index: int, result: RunResult) -> None:
        results[index] = result
        if progress:
            progress(result)

    if executor is not None:
        _drain(executor, jobs, out, options, 2 * workers, finish)
    elif workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            finish(job.index, _run(job, out, options))
    else:
        with process_pool(min(workers, len(jobs)), preload=["threedpai.simulate.run"]) as pool:
            _drain(pool, jobs, out, options, 2 * workers, finish)
    return results


def _drain(
    pool: Executor,
    jobs: list[_Job],
    out: Path,
    options: Options,
    in_flight: int,
    finish: Callable[[int, RunResult], None],
) -> None:
    """Runs the jobs on ``pool`` with at most ``in_flight`` submitted at a time: the pool stays busy
    without holding every job of a large archive. Only top-level functions and plain data are
    submitted, so any executor that pickles its calls (processes, Dask) can run them."""
    pending: dict[Future[RunResult], int] = {}
    queue = iter(jobs)

    def submit_next() -> None:
        job = next(queue, None)
        if job is not None:
            pending[pool.submit(_run, job, out, options)] = job.index

    for _ in range(max(1, in_flight)):
        submit_next()
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                finish(pending.pop(future), future.result())
                submit_next()
    except BaseException:
        for future in pending:  # an executor we do not own goes on running them otherwise
            future.cancel()
        raise
