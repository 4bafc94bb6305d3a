"""threedpai align: ingested runs on the timeline's clock, checked against independent numpy
computations and the simulator's known clocks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_part
from threedpai import aligned, features
from threedpai.cli import app
from threedpai.ingest import ingest
from threedpai.kinematics import Kinematics
from threedpai.runs import FaultType
from threedpai.simulate import Options, sample_gcode, simulate
from typer.testing import CliRunner

RATE = 50.0  # sensor rows per second
FAULTS = [FaultType.CLOG_PARTIAL, FaultType.LAYER_SHIFT, FaultType.THERMAL_RUNAWAY]


def table(root: Path, phase: str, name: str, run_id: str) -> dict[str, np.ndarray]:
    t = pq.read_table(run_part(root, phase, name, run_id) / "part-0.parquet")
    return {c: t.column(c).to_numpy(zero_copy_only=False) for c in t.column_names}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("aligned")
    src = sample_gcode(base / "box.gcode", size=16.0, height=2.4)
    opts = Options(rate_hz=RATE, audio=True, motion=True, motion_rate_hz=2000.0)
    simulate([src], 4, base / "archive", seed=5, faults=FAULTS, clean_share=0.25, options=opts, workers=1)
    ingest(base / "archive", base / "dataset", workers=1)
    report = aligned.align_dataset(base / "dataset", rate_hz=10.0)
    assert report.counts() == {"aligned": 4, "skipped": 0, "failed": 0}
    return base / "dataset"


def test_the_clock_is_recovered_within_a_fraction_of_a_sample(dataset: Path) -> None:
    for run_id in aligned.ingested_runs(dataset):
        clock = table(dataset, "aligned", "clock", run_id)
        assert clock["method"][0] == "estimated", run_id
        # the simulator's true map: t_sensor = offset + (1 + d) t_timeline
        runs = table(dataset, "raw", "runs", run_id)
        drift = runs["clock_drift_ppm"][0]
        assert clock["true_drift_ppm"][0] == pytest.approx(-drift / (1 + drift * 1e-6), abs=1e-6)
        assert clock["est_error_s"][0] < 0.5 / RATE, run_id  # within half a sample over the whole log
        assert abs(clock["drift_ppm"][0] - clock["true_drift_ppm"][0]) < 20, run_id


def test_layer_and_move_statistics_match_numpy(dataset: Path) -> None:
    run_id = aligned.ingested_runs(dataset)[0]
    clock = table(dataset, "aligned", "clock", run_id)
    sensors = table(dataset, "raw", "sensors", run_id)
    t = clock["offset_s"][0] + clock["scale"][0] * sensors["t"]
    layers = table(dataset, "aligned", "layers", run_id)
    assert np.all(layers["t_start"][1:] == layers["t_end"][:-1])  # layers tile the print
    for k in range(len(layers["layer"])):
        inside = (t >= layers["t_start"][k]) & (t < layers["t_end"][k])
        assert layers["samples"][k] == inside.sum()
        temp = sensors["hotend_temp"][inside]
        assert layers["hotend_temp_mean"][k] == pytest.approx(temp.mean(), rel=1e-12)
        assert layers["hotend_temp_max"][k] == temp.max()
        assert layers["hotend_temp_std"][k] == pytest.approx(temp.std(ddof=1), rel=1e-9)
        acc = np.stack([sensors[f"accel_{a}"][inside] for a in "xyz"], axis=1)
        dyn = acc - acc.mean(axis=0)
        assert layers["accel_rms"][k] == pytest.approx(np.sqrt((dyn**2).sum(axis=1).mean()), rel=1e-9)
        shares = layers["band_low"][k] + layers["band_mid"][k] + layers["band_high"][k]
        assert shares == pytest.approx(1.0)
    moves = table(dataset, "aligned", "moves", run_id)
    long = np.flatnonzero(moves["samples"] >= 3)[:50]
    for i in long:
        inside = (t >= moves["t_start"][i]) & (t < moves["t_end"][i])
        assert moves["bed_temp_mean"][i] == pytest.approx(sensors["bed_temp"][inside].mean(), rel=1e-12)


def test_uniform_table_carries_plan_and_sensors(dataset: Path) -> None:
    run_id = aligned.ingested_runs(dataset)[0]
    u = table(dataset, "aligned", "uniform", run_id)
    assert np.allclose(np.diff(u["t"]), 0.1)
    moves = pq.read_table(run_part(dataset, "raw", "moves", run_id) / "part-0.parquet")
    kin = Kinematics(moves)
    assert np.array_equal(u["e_cmd"], kin.state(u["t"]).filament)
    printing = ~np.isnan(u["layer"].astype(float))
    assert printing.any() and np.all(u["t"][printing] >= 0) and np.all(u["t"][printing] <= kin.total)
    # The printer's own layer report agrees with the planned layer (off by one at boundaries only).
    agree = u["reported_layer"][printing] == u["layer"][printing]
    assert agree.mean() > 0.97
    assert set(u) >= {"hotend_temp", "hotend_target", "fan_cmd", "extruder_load", "speed_cmd"}


def test_faults_show_in_the_aligned_tables(dataset: Path) -> None:
    by_fault = {}
    for run_id in aligned.ingested_runs(dataset):
        labels = table(dataset, "raw", "labels", run_id)
        by_fault[labels["type"][0] if len(labels["type"]) else "clean"] = run_id
    # thermal runaway: the hotend leaves its target after the onset layer, not before
    hot = table(dataset, "aligned", "layers", by_fault["thermal_runaway"])
    onset = table(dataset, "raw", "labels", by_fault["thermal_runaway"])["onset_layer"][0]
    excess = hot["hotend_temp_max"] - hot["hotend_target_max"]
    assert np.nanmax(excess[(hot["layer"] < onset) & (hot["layer"] > 0)]) < 5
    assert np.nanmax(excess[hot["layer"] >= onset]) > 15
    # the motion stream is the commanded path: on the plan (a layer shift is lost steps, seen in
    # frames, not in commanded positions) until a run is stopped, then the toolhead stays put
    for run_id in by_fault.values():
        dev = table(dataset, "aligned", "layers", run_id)["motion_dev_max"]
        stopped = table(dataset, "raw", "runs", run_id)["outcome"][0] == "aborted"
        assert np.nanmax(dev) > 1 if stopped else np.nanmax(dev) < 0.01, run_id
        if stopped:
            assert np.nanmax(dev[hot["layer"] < onset]) < 0.01
    clean = table(dataset, "aligned", "layers", by_fault["clean"])
    # audio: every printed layer has samples, and the layer sums are the moves' sums
    moves = table(dataset, "aligned", "moves", by_fault["clean"])
    assert clean["audio_count"].sum() == moves["audio_count"].sum() and np.all(clean["audio_count"][1:] > 0)
    energy = [c for c in clean if c.startswith("audio_energy")]
    assert energy and np.isclose(clean[energy[0]].sum(), np.nansum(moves[energy[0]]))


def test_frames_land_on_the_layer_they_show(dataset: Path) -> None:
    for run_id in aligned.ingested_runs(dataset):
        frames = table(dataset, "aligned", "frames", run_id)
        raw = table(dataset, "raw", "frames", run_id)
        assert len(frames["t"]) == len(raw["t"]) > 0
        layers = table(dataset, "aligned", "layers", run_id)
        assert layers["frames"].sum() == np.sum(~np.isnan(frames["layer"].astype(float)))
        # the simulated camera takes one frame as each layer ends (and one where a run stopped)
        if table(dataset, "raw", "runs", run_id)["outcome"][0] != "aborted":
            assert np.all(layers["frames"] == 1), run_id
            assert np.array_equal(frames["layer"], layers["layer"])


def test_features_run_on_the_aligned_dataset(dataset: Path) -> None:
    tables = features.run(dataset)
    runs = tables["run_features"].to_pylist()
    assert len(runs) == 4
    assert {r["fault_type"] for r in runs} == {f.value for f in FAULTS} | {None}
    assert all(r["vib_rms_run_max"] is None or r["vib_rms_run_max"] > 0 for r in runs)


def test_realign_skips_unchanged_and_redoes_changed_runs(dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    again = aligned.align_dataset(copy, rate_hz=10.0)
    assert again.counts() == {"aligned": 0, "skipped": 4, "failed": 0}
    before = (copy / "aligned" / "uniform").rglob("*.parquet")
    digests = {p.relative_to(copy): p.read_bytes() for p in before}
    finer = aligned.align_dataset(copy, rate_hz=20.0)  # new parameters: every run again
    assert finer.counts()["aligned"] == 4
    u = table(copy, "aligned", "uniform", aligned.ingested_runs(copy)[0])
    assert np.allclose(np.diff(u["t"]), 0.05)
    back = aligned.align_dataset(copy, rate_hz=10.0)
    assert back.counts()["aligned"] == 4
    assert {p.relative_to(copy): p.read_bytes() for p in (copy / "aligned" / "uniform").rglob("*.parquet")} == digests


def test_a_run_without_position_falls_back_to_the_known_clock(dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    run_id = aligned.ingested_runs(copy)[0]
    path = run_part(copy, "raw", "sensors", run_id) / "part-0.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["x", "y"]), path)
    tables = aligned.align_run(copy, run_id)
    clock = tables["clock"].to_pylist()[0]
    assert clock["method"] == "metadata" and "no toolhead position" in clock["note"]
    assert clock["offset_s"] == clock["true_offset_s"]


def test_a_broken_run_is_reported_not_dropped(dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    run_id = aligned.ingested_runs(copy)[1]
    shutil.rmtree(run_part(copy, "raw", "moves", run_id))
    (copy / "_align" / "done" / f"{run_id}.json").unlink()
    report = aligned.align_dataset(copy)
    failed = [r for r in report.runs if r.status == "failed"]
    assert [r.run_id for r in failed] == [run_id] and "moves" in (failed[0].reason or "")
    assert json.loads((copy / "_align" / "failed" / f"{run_id}.json").read_text())["run_id"] == run_id
    assert run_part(copy, "aligned", "layers", run_id).is_dir()  # the earlier version stays


def test_cli_aligns_a_run_folder(tmp_path: Path) -> None:
    src = sample_gcode(tmp_path / "box.gcode", size=12.0, height=1.2)
    simulate([src], 1, tmp_path / "archive", seed=2, options=Options(rate_hz=20.0, frames=False), workers=1)
    result = CliRunner().invoke(app, ["align", str(tmp_path / "archive"), "-o", str(tmp_path / "ds"), "--rate", "5"])
    assert result.exit_code == 0, result.output
    assert "aligned" in result.output and (tmp_path / "ds" / "aligned" / "uniform").is_dir()
    result = CliRunner().invoke(app, ["align", str(tmp_path / "archive")])
    assert result.exit_code != 0 and "-o" in result.output
