"""Ingest throughput: runs/min and input MB/s (total and per core) for ``threedpai ingest`` on an
archive of simulated runs, where the time goes per stage, and how much of it is spent outside the
compiled kernels (the Rust parser, planner and CSV reader, Arrow's C++ CSV reader and Parquet writer, hashing).

    python benchmarks/ingest_throughput.py [--runs 200] [--work /tmp/threedpai-ingest-bench] [--tar]

The archive is simulated once into WORK/archive (sensors at 50 Hz, frames, audio, motion.csv at
--motion-hz) and reused. The dataset is written to WORK/dataset from scratch each time. The
kernel split comes from a second, single-process pass over --profile-runs runs with the kernels
wrapped in timers (a process pool cannot be instrumented from here).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.csv
import pyarrow.parquet
from threedpai import _native
from threedpai.ingest import checks, ingest, write

KERNELS: dict[str, float] = {"rust": 0.0, "arrow": 0.0}


def _timed(kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            KERNELS[kind] += time.perf_counter() - start

    return wrapper


def archive(work: Path, runs: int, motion_hz: float, workers: int) -> Path:
    from threedpai.simulate import Options, simulate

    out = work / "archive"
    have = len(list(out.glob("run-*"))) if out.exists() else 0
    if have != runs:
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        opts = Options(rate_hz=50.0, frames=True, audio=True, motion=True, motion_rate_hz=motion_hz, glitches=True)
        simulate(None, runs, out, seed=0, options=opts, workers=workers)
        print(f"simulated {runs} runs in {time.perf_counter() - start:.0f} s -> {out}")
    return out


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def profile(source: Path, work: Path, count: int) -> dict[str, float]:
    """One process, kernels wrapped: seconds per stage and in Rust / Arrow C++."""
    for name in ("parse_bytes", "parse_file", "plan_file", "numeric_csv"):
        setattr(_native, name, _timed("rust", getattr(_native, name)))
    checks.pcsv.read_csv = _timed("arrow", pyarrow.csv.read_csv)  # type: ignore[attr-defined]
    write.pq.write_table = _timed("arrow", pyarrow.parquet.write_table)  # type: ignore[attr-defined]
    dataset = work / "dataset-profile"
    shutil.rmtree(dataset, ignore_errors=True)
    stages: dict[str, float] = {}
    for run in sorted(source.glob("run-*"))[:count]:
        report = ingest(run, dataset, workers=1)
        for k, v in report.stage_seconds().items():
            stages[k] = stages.get(k, 0.0) + v
    return stages | KERNELS


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--work", type=Path, default=Path("/tmp/threedpai-ingest-bench"))
    ap.add_argument("--motion-hz", type=float, default=1000.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--tar", action="store_true", help="pack the runs into one .tar and ingest that")
    ap.add_argument("--profile-runs", type=int, default=20)
    args = ap.parse_args()
    source = archive(args.work, args.runs, args.motion_hz, args.workers)
    if args.tar:
        packed = args.work / "archive.tar"
        if not packed.exists():
            with tarfile.open(packed, "w") as tf:
                tf.add(source, arcname="archive")
        source = packed
    dataset = args.work / "dataset"
    shutil.rmtree(dataset, ignore_errors=True)
    report = ingest(source, dataset, workers=args.workers)
    mb = report.input_bytes / 1e6
    runs = len(report.results)
    print(f"input: {runs} runs, {mb:,.0f} MB ({source.name}); {report.counts}")
    print(f"wall: {report.seconds:.1f} s on {args.workers} worker(s)")
    print(
        f"  {runs / report.seconds * 60:,.0f} runs/min, {mb / report.seconds:,.1f} MB/s, "
        f"{mb / report.seconds / args.workers:,.1f} MB/s per core"
    )
    stages = report.stage_seconds()
    total = sum(stages.values())
    print("worker seconds per stage (share):")
    for k, v in stages.items():
        print(f"  {k:9} {v:8.2f} s {v / total:6.1%}")
    print(f"  dataset: {size_of(dataset) / 1e6:,.0f} MB")
    prof = profile(source if source.is_dir() else args.work / "archive", args.work, args.profile_runs)
    busy = sum(prof[k] for k in ("discover", "hash", "checks", "parse", "timeline", "write"))
    kernels = prof["rust"] + prof["arrow"] + prof["hash"]
    print(f"single process, {args.profile_runs} runs, {busy:.2f} s:")
    print(f"  Rust parser, planner, CSV {prof['rust'] / busy:6.1%}")
    print(f"  Arrow C++ CSV + Parquet {prof['arrow'] / busy:6.1%}")
    print(f"  hashing (SHA-256 + reads) {prof['hash'] / busy:6.1%}")
    print(f"  outside the kernels   {(busy - kernels) / busy:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
