"""The motion timeline through Python: against real Klipper's batch-mode times, and its API/CLI."""

from __future__ import annotations

import csv
import json
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
    short = tmp_path / "short.parquet"
    result = runner.invoke(app, ["timeline", str(path), "-o", str(short)])  # the spelling
    assert result.exit_code == 0, result.output
    assert pq.read_table(short).equals(pq.read_table(out))
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


def test_printer_from_toml_and_overrides_equal_the_cfg(tmp_path: Path) -> None:
    path = corpus_file("sliced/s3_box20_0.3_20.gcode")
    fast = timeline.read(path, REFERENCE / "ref_fast.cfg").summary["total_time_s"]
    # ref_fast differs from ref_cartesian only in these four [printer] options.
    changes = {"max_velocity": 500, "max_accel": 10000, "square_corner_velocity": 8, "minimum_cruise_ratio": 0.0}
    overridden = timeline.read(path, REFERENCE / "ref_cartesian.cfg", limits=changes).summary["total_time_s"]
    assert overridden == fast
    toml = tmp_path / "printer.toml"
    toml.write_text(
        "[printer]\nmax_velocity = 500\nmax_accel = 10000\nsquare_corner_velocity = 8\nminimum_cruise_ratio = 0.0\n"
        "max_z_velocity = 15\nmax_z_accel = 200\n[extruder]\nmax_extrude_only_velocity = 120\n"
        "max_extrude_only_accel = 3000\ninstantaneous_corner_velocity = 1.0\nmax_extrude_cross_section = 50\n"
        "[stepper_x]\nposition_min = -25\nposition_max = 350\nposition_endstop = 0\nhoming_speed = 100\n"
        "[stepper_y]\nposition_min = -25\nposition_max = 350\nposition_endstop = 0\nhoming_speed = 100\n"
        "[stepper_z]\nposition_min = -5\nposition_max = 400\nposition_endstop = 0\nhoming_speed = 15\n"
        "[gcode_arcs]\nresolution = 1.0\n[firmware_retraction]\nretract_length = 0.8\nretract_speed = 35\n"
        "unretract_speed = 35\n"
    )
    assert timeline.read(path, toml).summary["total_time_s"] == fast
    cli = ["timeline", "summary", str(path), "--printer", str(REFERENCE / "ref_cartesian.cfg"), "--json"]
    sets = [x for k, v in changes.items() for x in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(app, cli + sets)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total_time_s"] == fast


def test_bad_moves_are_reported_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.gcode"
    path.write_bytes(b"G28\nG1 X10 F0\nG1 X20 Y10 F6000\nG1 X9999 F6000\nG2 X1 Y1 R0.1\nG1 Y20\n")
    t = timeline.read(path)
    lines = {d["line"] for d in t.diagnostics}
    assert {2, 4} <= lines and all(d["message"] for d in t.diagnostics)
    assert t.summary["total_time_s"] > 0 and t.table.num_rows > 3


def test_totals_add_up_to_the_moves() -> None:
    path = corpus_file("public/cop_prusaslicer_2.4_m486.gcode")
    t = timeline.read(path)
    motion = float(np.sum(t.table.column("t_end").to_numpy() - t.table.column("t_start").to_numpy()))
    for key in ("kind", "layer", "feature", "object"):
        totals = t.totals(key)
        assert sum(totals.values()) == pytest.approx(motion), key
    by_feature = t.totals("feature")
    assert by_feature["Perimeter"] > by_feature["Bridge infill"] > 0
    assert set(timeline.summary(path)["time_by_layer"]) == set(t.totals("layer"))


def test_nan_coordinates_and_strict_mode(tmp_path: Path) -> None:
    path = tmp_path / "nan.gcode"
    path.write_bytes(b"G28\nG1 X10 F600\nG1 Xnan Y5\nG1 X20 F-5\nG1 Y20\n")
    lenient = timeline.read(path)
    assert [(d["line"], d["code"]) for d in lenient.diagnostics] == [(3, "unparsable-move"), (4, "invalid-speed")]
    assert not lenient.summary["stopped_at_error"]
    strict = timeline.read(path, strict=True)
    assert strict.summary["stopped_at_error"] and strict.summary["first_error"][0] == 3
    assert strict.table.num_rows < lenient.table.num_rows
    assert strict.table.column("line").to_pylist()[-1] < 3


def test_cli_reports_a_broken_file_by_name(tmp_path: Path) -> None:
    cut = tmp_path / "cut.bgcode"
    cut.write_bytes(corpus_file("public/mk_prusaslicer_2.9.1.bgcode").read_bytes()[:300_000])
    result = CliRunner().invoke(app, ["timeline", "summary", str(cut)])
    assert result.exit_code == 1
    assert "cut.bgcode" in result.output and "truncated" in result.output and "block 11" in result.output
