"""The whole ETL on a simulated archive: seconds per stage, where the time goes, and end-to-end
runs/min and MB/s (``python benchmarks/pipeline_throughput.py [--runs 200] [--work DIR]``).

The pipeline runs from scratch in WORK (its archive, dataset and report), on a local process pool
of every core, with the config below. MB/s counts the archive's bytes (what ingest reads), so the
stages compare on one scale. The result is checked before it is reported: every run ingested,
aligned and featured, and the version verifies.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from threedpai import dataset, pipeline

CONFIG = """
dataset = "dataset"

[simulate]
out = "archive"
runs = {runs}
seed = 0
rate_hz = 50.0
frames = true
audio = {audio}
motion = false

[align]
rate_hz = 10.0

[engine]
kind = "local"
"""


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-pipeline"))
    ap.add_argument("--audio", action="store_true", help="simulate audio too (slower, larger)")
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    config = args.work / "pipeline.toml"
    config.write_text(CONFIG.format(runs=args.runs, audio=str(args.audio).lower()))
    start = time.perf_counter()
    report = pipeline.run(config, progress=True)
    wall = time.perf_counter() - start

    counts = {s.name: s.counts for s in report.stages}
    ingested = counts["ingest"].get("ok", 0) + counts["ingest"].get("repaired", 0)
    assert ingested == args.runs, counts["ingest"]
    assert counts["align"]["aligned"] == args.runs, counts["align"]
    assert counts["features"]["run_features"] == args.runs, counts["features"]
    assert dataset.verify(args.work / "dataset") == [], "the version does not verify"

    mb = size_of(args.work / "archive") / 1e6
    print(f"\n{args.runs} runs, archive {mb:.0f} MB, {wall:.0f} s end to end")
    print(f"{'stage':<10} {'s':>8} {'share':>7} {'runs/min':>9} {'MB/s':>7}")
    for st in report.stages:
        share = st.seconds / report.seconds
        rate = args.runs / st.seconds * 60 if st.seconds else float("inf")
        print(f"{st.name:<10} {st.seconds:8.1f} {share:7.1%} {rate:9.0f} {mb / st.seconds:7.1f}")
    print(f"{'total':<10} {report.seconds:8.1f} {1:7.0%} {args.runs / report.seconds * 60:9.0f} "
          f"{mb / report.seconds:7.1f}")  # fmt: skip
    print(f"version {report.version}; report {report.report_dir}/report.md")


if __name__ == "__main__":
    main()
