"""G-code parser throughput, side by side in one run: threedpai against gcodeparser, pygcode and
a plain Python split loop, on the largest files of the real corpus.

    python benchmarks/gcode_throughput.py [FILES...] [--peer-mb 4] [--repeat 5]

Each parser's result is checked against threedpai's before it is timed (same number of G1 lines
and the same sum of X values on the bytes it parses). The slow peers parse a prefix of each file
(``--peer-mb``), so their MB/s are on the same kind of input; ratios are of MB/s. The last lines
give the range of threedpai's ratio to gcodeparser over the files.
Needs a release build (``pip install .``, or ``SETUPTOOLS_RUST_CARGO_PROFILE=release``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from threedpai import gcode
from timing import best_of

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
DEFAULT_FILES = [
    "sliced/ps_voron2_torus_x4_0.2_fwretract_labels.gcode",
    "sliced/ps_mk3s_screw6_0.10_verbose.gcode",
    "sliced/cu_voron2_torus_0.2_rrf_relE.gcode",
]


def g1_stats_threedpai(table: pa.Table) -> tuple[int, float]:
    is_g1 = pc.equal(pc.cast(table.column("command"), pa.string()), "G1")
    x = pc.filter(table.column("X"), is_g1)
    return int(pc.sum(is_g1).as_py()), float(pc.sum(pc.if_else(pc.is_nan(x), 0.0, x)).as_py() or 0.0)


def plain_split(text: str) -> tuple[int, float]:
    """What a user writes by hand: strip comments, split words, float() the values."""
    n, xs = 0, 0.0
    for line in text.splitlines():
        code = line.split(";", 1)[0].split()
        if code and code[0] == "G1":
            n += 1
            for w in code[1:]:
                if w[0] == "X":
                    xs += float(w[1:])
    return n, xs


def gcodeparser_parse(text: str) -> tuple[int, float]:
    from gcodeparser import parse_gcode_lines

    n, xs = 0, 0.0
    for line in parse_gcode_lines(text, include_comments=False):
        if line.command == ("G", 1):
            n += 1
            xs += float(line.params.get("X", 0.0))
    return n, xs


def pygcode_parse(text: str) -> tuple[int, float]:
    from pygcode import Line

    n, xs = 0, 0.0
    for raw in text.splitlines():
        try:
            line = Line(raw)
        except Exception:  # pygcode rejects checksums, Klipper commands, ...
            continue
        for g in line.block.gcodes:
            if g.word_key is not None and str(g.word_key) in ("G01", "G1"):
                n += 1
                xs += float(g.params["X"].value) if "X" in g.params else 0.0
    return n, xs


def memory_use(path: Path) -> tuple[float, float]:
    """Peak memory a one-thread parse adds (fresh process, MB) and the output table's size (MB)."""
    import subprocess

    # VmHWM (peak RSS of this address space); ru_maxrss would carry over the parent's peak.
    code = (
        "import re, sys; from threedpai import gcode; "
        "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); "
        "base = hwm(); t = gcode.parse(sys.argv[1], threads=1); "
        "print((hwm() - base) / 1024, t.nbytes / 1e6)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    peak, size = out.stdout.split()
    return float(peak), float(size)


def prefix(data: bytes, size: int) -> bytes:
    cut = data.rfind(b"\n", 0, size)
    return data[: cut + 1] if cut > 0 else data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--peer-mb", type=float, default=4.0, help="bytes of each file given to the slow peers")
    ap.add_argument("--repeat", type=int, default=10, help="runs of threedpai (best kept: the machine may be noisy)")
    ap.add_argument("--peer-repeat", type=int, default=3, help="runs of the split loop and gcodeparser (pygcode: 1)")
    args = ap.parse_args()
    files = args.files or [CORPUS / f for f in DEFAULT_FILES]
    files = [f for f in files if f.exists()]
    if not files:
        print(f"no input files (the corpus is expected at {CORPUS})", file=sys.stderr)
        return 1
    cores = os.cpu_count() or 1
    summary: dict[str, list[float]] = {}
    print(f"{'file':44} {'parser':28} {'MB':>7} {'MB/s':>8} {'Mlines/s':>9} {'x gcodeparser':>14}")
    for path in files:
        data = path.read_bytes()
        mb = len(data) / 1e6
        lines = data.count(b"\n")
        rows: list[tuple[str, float, float, int]] = []
        # threedpai on the whole file: check, then time.
        reference = g1_stats_threedpai(gcode.parse(path))
        for label, threads in (("threedpai 1 thread", 1), (f"threedpai {cores} threads", cores)):
            secs, table = best_of(lambda t=threads, p=path: gcode.parse(p, threads=t), args.repeat)
            assert g1_stats_threedpai(table) == reference
            rows.append((label, mb, secs, lines))
        # Peers on a prefix, each checked against threedpai on the same prefix.
        head = prefix(data, int(args.peer_mb * 1e6))
        head_text = head.decode("utf-8", "replace")
        expect = g1_stats_threedpai(gcode.parse(head))
        head_lines = head.count(b"\n")
        for label, fn in (
            ("python split loop", plain_split),
            ("gcodeparser 0.3.0", gcodeparser_parse),
            ("pygcode 0.2.1", pygcode_parse),
        ):
            try:
                rounds = 1 if label.startswith("pygcode") else args.peer_repeat
                secs, got = best_of(lambda f=fn, t=head_text: f(t), rounds)
            except Exception as e:  # gcodeparser crashes on some real lines (M486 A<name>)
                print(f"{path.name[:44]:44} {label:28} crashed: {type(e).__name__}: {e}")
                continue
            n, xs = got
            ok = n == expect[0] and math.isclose(xs, expect[1], rel_tol=1e-9, abs_tol=1e-6)
            rows.append((label + ("" if ok else " (DIFFERS)"), len(head) / 1e6, secs, head_lines))
        peak, size = memory_use(path)
        print(
            f"{path.name[:44]:44} memory: parse adds {peak:.0f} MB peak for a {size:.0f} MB table "
            f"(input {mb:.0f} MB, mapped)"
        )
        base = next((r for r in rows if r[0].startswith("gcodeparser")), None)
        base_rate = base[1] / base[2] if base else math.nan
        for label, size, secs, n in rows:
            rate = size / secs
            if label.startswith("threedpai"):
                summary.setdefault(label, []).append(rate / base_rate)
            mlines = n / secs / 1e6
            print(f"{path.name[:44]:44} {label:28} {size:7.1f} {rate:8.1f} {mlines:9.2f} {rate / base_rate:14.1f}")
    for label, ratios in sorted(summary.items()):
        print(f"{label}: {min(ratios):.0f}-{max(ratios):.0f}x gcodeparser over {len(ratios)} files")
    print(
        f"{cores} cores; best of {args.repeat} runs for threedpai, {args.peer_repeat} for the split loop and "
        "gcodeparser, 1 for pygcode"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
