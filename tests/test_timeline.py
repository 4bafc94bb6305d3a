"""The motion timeline through Python: against real Klipper's batch-mode times, and its API/CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import SHARED, corpus_file
from threedpai import gcode, timeline
from threedpai.cli import app
from typer.testing import CliRunner

REFERENCE = SHARED / "klipper-reference"


def klipper_rows() -> list[dict[str, str]]:
    path = REFERENCE / "reference.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return [r for r in csv.DictReader(f) if r["status"] == "ok" and not r["config_override"]]


SMALL = [r for r in klipper_rows() if int(r["size_bytes"]) < 1_500_000]


@pytest.mark.skipif(not SMALL, reason=f"needs the Klipper reference in {REFERENCE}")
@pytest.mark.parametrize("row", SMALL, ids=lambda r: f"{r['file']}:{r['config']}")
def test_total_time_equals_klippers(row: dict[str, str]) -> None:
    path = corpus_file(f"{row['corpus']}/{row['file']}")
    t = timeline.read(path, REFERENCE / f"{row['config']}.cfg")
    expected = float(row["klipper_print_time_s"])
    assert t.summary["total_time_s"] == pytest.approx(expected, rel=1e-4), row["file"]


def test_timeline_rows_are_consistent_and_tied_to_lines() -> None:
    path = corpus_file("public/cop_prusaslicer_2.4_m486.gcode")
    t = timeline.read(path)
    tab = t.table
    start, end = tab.column("t_start").to_numpy(), tab.column("t_end").to_numpy()
    assert np.all(end >= start) and np.all(start[1:] >= end[:-1] - 1e-9), "moves follow each other"
    assert end[-1] <= t.summary["total_time_s"] + 1e-9
    # Each move's phases add up and its distance is what its trapezoid covers.
    a, c, d = (tab.column(x).to_numpy() for x in ("accel_t", "cruise_t", "decel_t"))
    v0, v, acc = (tab.column(x).to_numpy() for x in ("start_v", "cruise_v", "accel"))
    covered = v0 * a + acc * a**2 / 2 + v * (c + d) - acc * d**2 / 2
    xyz = np.isin(tab.column("kind").to_pylist(), ["print", "travel", "home"])
    assert np.allclose(covered[xyz], tab.column("distance").to_numpy()[xyz], rtol=1e-6, atol=1e-6)
    # Rows point at real G1/G2/G3 lines of the file.
    lines = gcode.parse(path)
    commands = lines.column("command").to_pylist()
    moves = tab.filter(pc.equal(tab.column("kind").cast(pa.string()), "print"))
    assert {commands[n - 1] for n in moves.column("line").to_pylist()} <= {"G1", "G2", "G3"}
    # Lookup: elapsed grows with the line; remaining is total minus elapsed.
    elapsed, remaining = t.at_line(np.arange(1, lines.num_rows + 1))
    assert np.all(np.diff(elapsed) >= 0) and np.allclose(elapsed + remaining, t.summary["total_time_s"])


def test_annotate_writes_progress_that_counts_down(tmp_path: Path) -> None:
    path = corpus_file("public/cop_prusaslicer_2.4_m486.gcode")
    out = tmp_path / "annotated.gcode"
    result = CliRunner().invoke(app, ["timeline", "annotate", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = gcode.parse(out)
    m73 = table.filter(pc.fill_null(pc.equal(table.column("command").cast(pa.string()), "M73"), False))
    percent, minutes = m73.column("P").to_numpy(), m73.column("R").to_numpy()
    assert len(m73) > 50 and percent[0] == 0 and percent[-1] == 100 and minutes[-1] == 0
    assert np.all(np.diff(percent) >= 0) and np.all(np.diff(minutes) <= 0)
    original = gcode.parse(path)
    keep = lambda t: [c for c in t.column("command").cast(pa.string()).to_pylist() if c != "M73"]  # noqa: E731
    assert keep(table) == keep(original), "only M73 lines change"


def test_plan_and_summary_commands(tmp_path: Path) -> None:
    path = corpus_file("public/cop_prusaslicer_2.4_m486.gcode")
    out = tmp_path / "t.parquet"
    runner = CliRunner()
    result = runner.invoke(app, ["timeline", "plan", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).num_rows == timeline.plan(path).num_rows > 1000
    result = runner.invoke(app, ["timeline", "summary", str(path), "--json"])
    assert result.exit_code == 0 and '"total_time_s"' in result.output


@pytest.mark.parametrize(
    "name", ["sliced/ps_mk3s_box20_0.20_15gyroid.gcode", "sliced/ps_ender3_cylinder_0.20_100rect.gcode"]
)
def test_marlin_model_matches_prusaslicers_own_estimate(name: str) -> None:
    path = corpus_file(name)
    estimate = gcode.summary(path)["estimated_time_s"]
    slicer_like = timeline.read(path, model="marlin-slicer").summary["total_time_s"]
    assert slicer_like == pytest.approx(estimate, rel=0.005)
    # On the printer G4 dwells take their time; the slicer's estimate leaves them out.
    assert timeline.read(path, model="marlin").summary["total_time_s"] >= slicer_like


def test_unknown_model_is_a_clear_error() -> None:
    path = corpus_file("sliced/s3_box20_0.3_20.gcode")
    with pytest.raises(ValueError, match="model must be klipper, marlin or marlin-slicer"):
        timeline.read(path, model="reprap")
    result = CliRunner().invoke(app, ["timeline", "summary", str(path), "--model", "reprap"])
    assert result.exit_code != 0 and "model" in result.output
