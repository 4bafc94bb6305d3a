"""Numeric CSV logs (``sensors.csv``, Prunt's ``motion.csv``): threedpai's Rust fast path side by side
with the readers a user would pick, pyarrow.csv, polars and pandas
(``python benchmarks/csv_throughput.py [--rate 1000]``).

One simulated run of the built-in sample print is written to a temporary folder (sensors at
``--rate`` Hz, a 10 kHz motion stream). Every reader's float columns are checked equal to
threedpai's (bit for bit) before it is timed; best of 5. threedpai, pyarrow (told so) and pandas
read on one thread; polars uses its thread pool (every core).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow.csv as pcsv
from threedpai import _native
from threedpai.ingest import checks
from threedpai.simulate import Options, sample_gcode, simulate_run
from timing import best_of


def threedpai(path: Path, motion: bool) -> Any:
    """The table ingest reads."""
    return checks.read_motion(path, 10_000.0)[0] if motion else checks.read_sensors(path)[0]


def takes_fast_path(path: Path, motion: bool) -> bool:
    if motion:
        return _native.numeric_csv(path, 0, 4, checks.MOTION_TAG) is not None
    return _native.numeric_csv(path, 1, len(checks._header(path))) is not None


def peers(path: Path, motion: bool) -> dict[str, Callable[[], dict[str, np.ndarray]]]:
    """Each peer's reading of the file as float columns, named as threedpai names them."""
    names = ["tag", "x", "y", "z", "e"] if motion else None
    read = pcsv.ReadOptions(use_threads=False, column_names=names)

    def arrow() -> dict[str, np.ndarray]:
        t = pcsv.read_csv(path, read_options=read)
        return {n: t.column(n).to_numpy().astype(np.float64) for n in t.column_names if n != "tag"}

    def polars() -> dict[str, np.ndarray]:
        cols = names or checks._header(path)
        schema = {n: pl.String if n == "tag" else pl.Float64 for n in cols}  # typed, as the others are
        df = pl.read_csv(path, has_header=not motion, schema=schema)
        return {n: df[n].to_numpy().astype(np.float64) for n in df.columns if n != "tag"}

    def pandas() -> dict[str, np.ndarray]:
        df = pd.read_csv(path, header=None if motion else 0, names=names)
        return {n: df[n].to_numpy(np.float64) for n in df.columns if n != "tag"}

    return {"pyarrow.csv": arrow, "polars": polars, "pandas": pandas}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=1000.0, help="sensor rows per second")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = sample_gcode(Path(tmp) / "box.gcode")
        opts = Options(rate_hz=args.rate, frames=False, motion=True, motion_rate_hz=10_000.0)
        run = simulate_run(src, tmp, run_id="run", seed=1, options=opts).path
        print("| file | MB | reader | MB/s | threedpai × faster |\n|---|---:|---|---:|---:|")
        for name, motion in (("sensors.csv", False), ("motion.csv", True)):
            path = run / name
            mb = path.stat().st_size / 1e6
            assert takes_fast_path(path, motion), name  # else this would time Arrow's reader
            table = threedpai(path, motion)
            want = {n: table.column(n).to_numpy().astype(np.float64) for n in table.column_names}
            want.pop("t") if motion else None  # motion's t is the line number over the rate, not read
            t_ours = best_of(lambda: threedpai(path, motion), 5)[0]  # noqa: B023
            print(f"| {name} | {mb:.1f} | **threedpai** | {mb / t_ours:.0f} | 1.0 |")
            for peer, fn in peers(path, motion).items():  # noqa: B023
                got = fn()
                for n, col in want.items():
                    assert np.array_equal(got[n], col), (peer, name, n)
                t = best_of(fn, 5)[0]
                print(f"| | | {peer} | {mb / t:.0f} | {t / t_ours:.2f} |")


if __name__ == "__main__":
    main()
