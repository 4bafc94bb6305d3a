"""Parse + plan throughput of the motion timeline, on the largest corpus files, against real
Klipper's batch mode (its CPU seconds for the same files on this machine class, recorded in
``../shared/klipper-reference/reference.csv``; Klipper itself is not installed here), then side
by side in this run with pyGCodeDecode on smaller files (it runs at about 0.2 MB/s).

    python benchmarks/timeline_throughput.py [--repeat 3]

Results are checked first: threedpai's total print time must equal Klipper's within 0.01 %;
pyGCodeDecode (a Prusa/Marlin-style model with its own preset, not Klipper's) must land within
15 % of threedpai's total on the same file.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from threedpai import timeline

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REFERENCE = SHARED / "klipper-reference"
FILES = [
    ("sliced", "ps_voron2_torus_x4_0.2_fwretract_labels.gcode"),
    ("sliced", "cu_um2_sphere40_0.15_20_ultigcode.gcode"),
    ("sliced", "cu_voron2_torus_0.2_rrf_relE.gcode"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--config", default="ref_cartesian")
    args = ap.parse_args()
    if not REFERENCE.exists():
        print(f"needs the Klipper reference at {REFERENCE}", file=sys.stderr)
        return 1
    with (REFERENCE / "reference.csv").open() as f:
        ref = {(r["file"], r["config"]): r for r in csv.DictReader(f)}
    printer = REFERENCE / f"{args.config}.cfg"
    print(
        f"{'file':42} {'MB':>6} {'moves':>9} {'threedpai MB/s':>15} {'moves/s':>10} {'Klipper MB/s':>13} {'ratio':>7}"
    )
    for corpus, name in FILES:
        path = SHARED / "corpus" / corpus / name
        row = ref[(name, args.config)]
        t = timeline.read(path, printer, threads=1)
        expected = float(row["klipper_print_time_s"])
        assert abs(t.summary["total_time_s"] - expected) <= 1e-4 * expected, (name, t.summary["total_time_s"])
        best = min(_timed(lambda p=path: timeline.read(p, printer, threads=1)) for _ in range(args.repeat))
        mb = path.stat().st_size / 1e6
        klipper = mb / float(row["cpu_s"])
        ours = mb / best
        moves = t.table.num_rows
        cols = f"{mb:6.1f} {moves:9,} {ours:15.1f} {moves / best:10.3g} {klipper:13.2f} {ours / klipper:7.0f}"
        print(f"{name[:42]:42} {cols}")
    print("threedpai: parse + plan to a pyarrow.Table on one thread, best of", args.repeat)
    print()
    side_by_side(args.repeat)
    return 0


PEER_FILES = [("sliced", "s3_box20_0.3_20.gcode"), ("sliced", "ps_mk3s_box20_0.20_15gyroid.gcode")]


def side_by_side(repeat: int) -> None:
    from pyGCodeDecode import gcode_interpreter

    print(f"{'file':42} {'MB':>6} {'threedpai MB/s':>15} {'pyGCodeDecode MB/s':>19} {'ratio':>7} {'totals (s)':>20}")
    for corpus, name in PEER_FILES:
        path = SHARED / "corpus" / corpus / name
        ours_total = timeline.read(path, threads=1).summary["total_time_s"]
        start = time.perf_counter()
        sim = gcode_interpreter.simulation(gcode_path=path, machine_name="prusa_mini", verbosity_level=0)
        peer_s = time.perf_counter() - start
        peer_total = sim.blocklist[-1].get_segments()[-1].t_end
        assert abs(peer_total - ours_total) <= 0.15 * ours_total, (name, peer_total, ours_total)
        best = min(_timed(lambda p=path: timeline.read(p, threads=1)) for _ in range(repeat))
        mb = path.stat().st_size / 1e6
        totals = f"{ours_total:.0f} / {peer_total:.0f}"
        print(f"{name[:42]:42} {mb:6.2f} {mb / best:15.1f} {mb / peer_s:19.3f} {peer_s / best:7.0f} {totals:>20}")
    print("pyGCodeDecode 1.5.1 with its prusa_mini preset, one run; threedpai with its generic printer")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
