"""threedpai simulate: run folders that follow the contract (threedpai.runs) and carry each fault's
physical signature; deterministic for a seed whatever the worker count."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import wave
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from conftest import corpus_file, run_part
from test_ingest import CORRUPTIONS, _edit_meta, _set_cell, assert_quarantined, latest, snapshot
from threedpai import timeline
from threedpai.cli import app
from threedpai.ingest import ingest
from threedpai.kinematics import Kinematics
from threedpai.runs import SENSOR_RANGES, Fault, FaultType, RunMetadata, sensor_convert_options
from threedpai.simulate import Options, fault_schedule, sample_gcode, simulate, simulate_run
from typer.testing import CliRunner

RATE = 50.0
N = 12  # with a clean share of 1/12: every fault type once, one clean run


class Run:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta = RunMetadata.model_validate_json((path / "metadata.json").read_text())
        table = pcsv.read_csv(path / "sensors.csv", convert_options=sensor_convert_options())
        self.cols = {name: table.column(name).to_numpy() for name in table.column_names}
        clock = self.meta.sensor_clock
        assert clock is not None
        self.t = (self.cols["t"] - clock.offset_s) / (1 + clock.drift_ppm * 1e-6)  # timeline clock

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    @property
    def fault(self) -> Fault:
        return self.meta.faults[0]

    def planned_filament(self) -> np.ndarray:
        return Kinematics(timeline.read(self.path / "print.gcode")).state(self.t).filament


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_gcode(tmp_path_factory.mktemp("src") / "box.gcode", size=16.0, height=2.4)


@pytest.fixture(scope="module")
def archive(source: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    out = tmp_path_factory.mktemp("archive")
    results = simulate([source], N, out, seed=11, clean_share=1 / N, options=Options(rate_hz=RATE), workers=2)
    assert [r.path.name for r in results] == [f"run-{i:05d}" for i in range(N)]
    runs = [Run(r.path) for r in results]
    return {(r.meta.faults[0].type.value if r.meta.faults else "clean"): r for r in runs}


def test_every_fault_type_and_the_contract(archive: dict[str, Run], source: Path) -> None:
    assert set(archive) == {f.value for f in FaultType} | {"clean"}
    for name, run in archive.items():
        assert run.meta.source == "simulated" and run.meta.sensor_rate_hz == RATE
        assert (run.path / "print.gcode").read_bytes() == source.read_bytes()
        assert "[printer]" in (run.path / "printer.cfg").read_text()
        assert np.all(np.diff(run["t"]) > 0), name
        assert abs(np.median(np.diff(run["t"])) - 1 / RATE) < 1e-4
        for col, (lo, hi) in SENSOR_RANGES.items():
            assert lo <= run[col].min() and run[col].max() <= hi, (name, col)
        if name != "clean":
            f = run.fault
            assert 0 <= f.onset_s <= run.meta.planned_time_s and 0 <= f.severity <= 1
            assert f.onset_layer == run["layer"][np.searchsorted(run.t, f.onset_s)]
        frames = sorted((run.path / "frames").glob("*.png")) if (run.path / "frames").exists() else []
        if run.meta.outcome != "aborted":
            assert len(frames) == run.meta.layer_count == 12, name
        # A frame's name is its sensor-clock time in ms, inside the log.
        for frame in frames:
            assert run["t"][0] <= int(frame.stem) / 1000 <= run["t"][-1] + 1e-3


def test_clean_run_tracks_its_targets(archive: dict[str, Run]) -> None:
    run = archive["clean"]
    assert run.meta.outcome == "success" and run.meta.faults == []
    steady = (run.t > 20) & (run.t < run.meta.planned_time_s - 10)
    assert np.abs(run["hotend_temp"][steady] - run["hotend_target"][steady]).max() < 4.0
    assert np.abs(run["bed_temp"][steady] - run["bed_target"][steady]).max() < 4.0
    # The heat-up is logged before the print starts: it starts hot.
    assert run.t[0] < -30 and run["hotend_temp"][0] < 40 and run["hotend_duty"][0] == 1.0
    assert run["layer"][-1] == 11 and run["filament_present"].min() == 1
    assert np.all(np.diff(run["e"][run.t > 0]) > -1.0)  # only retractions run back


def test_fan_failure_stops_the_fan_while_commanded(archive: dict[str, Run]) -> None:
    for name in ("fan_failure", "clean"):
        run = archive[name]
        full = float(run.meta.notes["fan_max_rpm"])
        on = run["fan_cmd"] > 0.4
        after = on & (run.t > run.fault.onset_s + 5) if name != "clean" else on
        assert after.sum() > 10
        rpm = run["fan_rpm"][after] / run["fan_cmd"][after]
        if name == "clean":
            assert np.median(rpm) == pytest.approx(full, rel=0.03)
        else:
            assert rpm.max() <= 0.32 * full


def test_runout_pauses_and_aborts(archive: dict[str, Run]) -> None:
    run = archive["filament_runout"]
    onset = run.fault.onset_s
    assert run.meta.outcome == "aborted"
    assert run["filament_present"][run.t < onset].min() == 1 and run["filament_present"][run.t > onset].max() == 0
    late = run.t > onset + 1.5
    assert late.sum() > 10 and np.ptp(run["e"][late]) == 0.0
    assert np.ptp(run["x"][late]) == 0.0 and np.ptp(run["y"][late]) == 0.0
    # Paused until the operator cancels; then the heaters go off and the log ends.
    assert run.t[-1] == pytest.approx(float(run.fault.details["cancel_s"]) + 3.0, abs=0.05)
    assert run["hotend_target"][-1] == 0 and run["hotend_target"][late & (run.t < run.t[-1] - 4)].min() > 0


def test_full_clog_stops_the_filament_and_grinds(archive: dict[str, Run]) -> None:
    run = archive["clog_full"]
    blocked = run.t > run.fault.onset_s + float(run.fault.details["choke_s"]) + 0.5
    assert np.ptp(run["e"][blocked]) < 1e-6
    assert run.meta.outcome == "failed"
    commanded = np.diff(run.planned_filament())[blocked[1:]] > 0.05
    assert np.median(run["extruder_load"][1:][blocked[1:]][commanded]) > 2.0


def test_partial_clog_raises_load_and_slows_the_filament(archive: dict[str, Run]) -> None:
    run = archive["clog_partial"]
    restriction, ramp = float(run.fault.details["restriction"]), float(run.fault.details["ramp_s"])
    fed, planned = np.diff(run["e"]), np.diff(run.planned_filament())
    extruding = planned > 0.05
    grown = np.clip((run.t[1:] - run.fault.onset_s) / ramp, 0, 1)
    after = extruding & (grown > 0.5)
    assert after.sum() > 20
    expected = (planned[after] * (1 - 0.7 * restriction * grown[after])).sum()
    assert fed[after].sum() == pytest.approx(expected, rel=0.02)
    assert fed[after].sum() < 0.95 * planned[after].sum()
    load = run["extruder_load"][1:]
    before = extruding & (run.t[1:] < run.fault.onset_s)
    assert np.median(load[after]) > 1.3 * np.median(load[before])


@pytest.mark.parametrize("name", ["over_extrusion", "under_extrusion"])
def test_flow_errors_scale_the_filament(archive: dict[str, Run], name: str) -> None:
    run = archive[name]
    fed, planned = np.diff(run["e"]), np.diff(run.planned_filament())
    after = (planned > 0.05) & (run.t[1:] > run.fault.onset_s + 3)
    change = float(run.fault.details["flow_change"])
    assert (change > 0) == (name == "over_extrusion")
    assert fed[after].sum() / planned[after].sum() == pytest.approx(1 + change, abs=0.01)


def test_thermal_runaway_shuts_the_printer_down(archive: dict[str, Run]) -> None:
    run = archive["thermal_runaway"]
    f = run.fault
    assert run.meta.outcome == "aborted" and f.end_s is not None and "shutdown" in f.details
    assert run.t[-1] < f.end_s + 1.5
    after = (run.t > f.onset_s + 3) & (run.t < f.end_s)
    if f.details["mode"] == "heater_stuck_on":  # heating with the firmware's duty at zero
        assert run["hotend_temp"][after].max() > 280 and run["hotend_duty"][run.t > f.end_s - 2].max() < 0.05
    else:  # a loose thermistor reads low, so the heater runs flat out
        assert run["hotend_duty"][after].mean() > 0.9 and run["hotend_temp"][after].min() < 180


def test_thermistor_fault_spikes(archive: dict[str, Run]) -> None:
    run = archive["thermistor_fault"]
    jumps = np.abs(np.diff(run["hotend_temp"]))
    steady = (run.t[1:] > 20) & (run.t[1:] < run.fault.onset_s)
    assert jumps[steady].max() < 2.0
    assert jumps[run.t[1:] >= run.fault.onset_s].max() > 5.0


def test_adhesion_loss_shakes_the_toolhead(archive: dict[str, Run]) -> None:
    run = archive["adhesion_loss"]
    z = run["accel_z"]
    before = (run.t > 0) & (run.t < run.fault.onset_s)
    after = run.t > run.fault.onset_s + 60
    assert np.std(z[after]) > 2.0 * np.std(z[before])


def test_layer_shift_knock_and_frames(archive: dict[str, Run]) -> None:
    run = archive["layer_shift"]
    axis = str(run.fault.details["axis"])
    a = np.abs(run[f"accel_{axis}"])
    near = np.abs(run.t - run.fault.onset_s) < 0.1
    assert a[near].max() > 1.5 * a[~near].max()
    # The reported position knows nothing of it (open loop); the frames do.
    frames = sorted((run.path / "frames").glob("*.png"))
    assert len(frames) == run.meta.layer_count


def test_heater_weak_saturates_and_sags(tmp_path: Path, source: Path) -> None:
    result = simulate_run(source, tmp_path, fault=FaultType.HEATER_WEAK, severity=0.7, seed=5,
                          options=Options(rate_hz=10, frames=False))  # fmt: skip
    run = Run(result.path)
    after = run.t > run.fault.onset_s + float(run.fault.details["ramp_s"])
    assert run["hotend_duty"][after].max() == 1.0
    assert (run["hotend_temp"][after] < run["hotend_target"][after] - 3).sum() > 5


def test_accelerometer_follows_the_planned_motion(tmp_path: Path, source: Path) -> None:
    result = simulate_run(source, tmp_path, seed=2, options=Options(rate_hz=1000, frames=False))
    run = Run(result.path)
    # The second difference of the reported position (5 ms blocks against its 1 µm rounding)
    # against the accelerometer, on the sensor clock, drift and jitter included.
    k = len(run["t"]) // 5 * 5
    t, x, ax = (run[c][:k].reshape(-1, 5).mean(axis=1) for c in ("t", "x", "accel_x"))
    ref = np.diff(x, 2) / (np.diff(t)[1:] * np.diff(t)[:-1])
    smooth = np.abs(ref) < 20_000  # not across the jumps of homing
    assert smooth.mean() > 0.99
    assert np.corrcoef(ref[smooth], ax[1:-1][smooth])[0, 1] > 0.75
    assert run["accel_z"].mean() == pytest.approx(9806.65, rel=0.01)  # gravity


def test_sensor_clock_maps_to_the_timeline(archive: dict[str, Run]) -> None:
    run = archive["clean"]
    clock = run.meta.sensor_clock
    assert clock is not None and clock.drift_ppm != 0
    tl = Kinematics(timeline.read(run.path / "print.gcode"))
    # Planned positions at the mapped times are the logged ones: the mapping is the truth.
    state = tl.state(run.t)
    assert np.abs(state.pos[:, 0] - run["x"]).max() < 2e-3
    # The offset is not the identity: the log starts before the print, on its own clock.
    assert clock.offset_s > 0 and run["t"][0] >= 0


def test_same_seed_same_bytes_whatever_the_workers(archive: dict[str, Run], source: Path, tmp_path: Path) -> None:
    again = simulate([source], 3, tmp_path / "a", seed=11, clean_share=1 / N, options=Options(rate_hz=RATE), workers=1)
    for result in again:
        mine = archive[result.fault.value if result.fault else "clean"].path
        for name in ("sensors.csv", "metadata.json"):
            assert (result.path / name).read_bytes() == (mine / name).read_bytes()
        assert [p.read_bytes() for p in sorted((result.path / "frames").iterdir())] == [
            p.read_bytes() for p in sorted((mine / "frames").iterdir())
        ]
    other = simulate([source], 1, tmp_path / "b", seed=12, options=Options(rate_hz=RATE, frames=False))
    first = archive["clog_partial"].path  # run 0 of seed 11
    assert other[0].fault is FaultType.CLOG_PARTIAL
    assert (other[0].path / "sensors.csv").read_bytes() != (first / "sensors.csv").read_bytes()


def test_fault_schedule() -> None:
    plan = fault_schedule(20, list(FaultType), 0.2)
    assert plan.count(None) == 4 and set(plan) - {None} <= set(FaultType)
    assert fault_schedule(3, [], 0.0) == [None, None, None]
    with pytest.raises(ValueError):
        fault_schedule(3, list(FaultType), 1.5)


def test_glitches_are_recorded(tmp_path: Path, source: Path) -> None:
    result = simulate_run(source, tmp_path, seed=3, options=Options(rate_hz=20, frames=False, glitches=True))
    run = Run(result.path)
    glitches = run.meta.notes["glitches"]
    t = run["t"]
    assert (np.diff(t) == 0).sum() >= 1 and (np.diff(t) < 0).sum() >= 1
    gap_from, gap_to = glitches["gap"]
    assert not np.any((t > gap_from) & (t < gap_to))
    assert len(t) > 0.9 * run.meta.sensor_rate_hz * (t.max() - t.min())


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="1 Hz to 10 kHz"):
        Options(rate_hz=20_000)


def test_cli(tmp_path: Path, source: Path) -> None:
    out = tmp_path / "out"
    args = ["simulate", str(source), "-n", "2", "-o", str(out), "--faults", "fan_failure", "--clean-share", "0.5",
            "--rate", "5", "--no-frames", "--workers", "1"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 simulated runs" in result.output and "runs/min" in result.output
    faults = [json.loads((out / f"run-0000{i}" / "metadata.json").read_text())["faults"] for i in range(2)]
    assert faults[0][0]["type"] == "fan_failure" and faults[1] == []
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "exists" in again.output
    before = (out / "run-00001" / "sensors.csv").read_bytes()
    resumed = CliRunner().invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert (out / "run-00001" / "sensors.csv").read_bytes() == before
    bad = CliRunner().invoke(app, ["simulate", "-n", "1", "-o", str(tmp_path / "x"), "--faults", "clog"])
    assert bad.exit_code == 1 and "unknown fault" in bad.output


def test_corpus_file_with_audio_and_motion(tmp_path: Path) -> None:
    path = corpus_file("public/libbgcode_prusaslicer_2.8.1_mini_cube.gcode")
    opts = Options(rate_hz=5, frame_px=64, audio=True, audio_rate_hz=2000, motion=True, motion_rate_hz=50)
    result = simulate_run(path, tmp_path, run_id="cube", fault=FaultType.CLOG_FULL, seed=1, options=opts)
    run = Run(result.path)
    assert run.meta.outcome == "failed" and run.meta.motion_rate_hz == 50
    end = float(run.meta.notes["data_end_s"])
    lines = (run.path / "motion.csv").read_text().splitlines()
    assert len(lines) == int(end * 50) + 1 and lines[0].startswith("DATA OUTPUT,")
    assert all(len(line.split(",")) == 5 for line in lines[:100])
    with wave.open(str(run.path / "audio.wav")) as w:
        assert w.getframerate() == 2000 and w.getsampwidth() == 2 and w.getnchannels() == 1
        assert w.getnframes() / 2000 == pytest.approx(end, abs=0.01)
    assert run.meta.audio_start_s == pytest.approx(run.meta.sensor_clock.offset_s)  # type: ignore[union-attr]


SMALL = Options(rate_hz=5, frame_px=32)  # small and quick, frames included: whole folders are compared


@pytest.fixture(scope="module")
def small(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three runs made one after the other: what every other way of making them must equal, byte for byte."""
    out = tmp_path_factory.mktemp("small")
    simulate([source], 3, out, seed=4, options=SMALL, workers=1)
    return out


def test_resume_finishes_an_interrupted_archive(small: Path, source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(small, out)
    for name in ("run-00001", "run-00002"):
        shutil.rmtree(out / name)
    leftover = out / ".run-00002.x7q1k2.tmp"  # what simulate_run leaves when it is killed mid-write
    leftover.mkdir()
    (leftover / "sensors.csv").write_text("t\n0.0\n")
    with pytest.raises(FileExistsError, match="run-00000 exists"):
        simulate([source], 3, out, seed=4, options=SMALL, workers=1)
    seen: list[str] = []
    results = simulate([source], 3, out, seed=4, options=SMALL, workers=1, resume=True,
                       progress=lambda r: seen.append(r.path.name))  # fmt: skip
    assert sorted(seen) == ["run-00000", "run-00001", "run-00002"]
    assert [r.seconds == 0 for r in results] == [True, False, False]
    assert not leftover.exists()
    assert snapshot(out) == snapshot(small)
    again = simulate([source], 3, out, seed=4, options=SMALL, workers=1, resume=True)
    assert [r.seconds for r in again] == [0.0, 0.0, 0.0]
    for kept, made in zip(again, results, strict=True):  # rebuilt from metadata.json as it was reported
        assert (kept.path, kept.fault, kept.outcome, kept.bytes_in, kept.bytes_out) == (
            made.path, made.fault, made.outcome, made.bytes_in, made.bytes_out,
        )  # fmt: skip
    # Folders of another archive are not taken for runs of this one.
    with pytest.raises(FileExistsError, match="another seed"):
        simulate([source], 3, out, seed=5, options=SMALL, workers=1, resume=True)


def test_an_executor_given_makes_the_same_archive(small: Path, source: Path, tmp_path: Path) -> None:
    # spawn: the workers start bare, so only what pickles reaches them
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = simulate([source], 3, tmp_path / "out", seed=4, options=SMALL, workers=1, executor=pool)
    assert [r.path.name for r in results] == ["run-00000", "run-00001", "run-00002"]
    assert snapshot(tmp_path / "out") == snapshot(small)


def test_a_dask_cluster_makes_the_same_archive(
    small: Path, source: Path, tmp_path: Path, dask_executor: Executor
) -> None:
    simulate([source], 3, tmp_path / "out", seed=4, options=SMALL, executor=dask_executor)
    assert snapshot(tmp_path / "out") == snapshot(small)


# Runs with the optional members and the logger glitches, beside the archive (run id -> fault, options).
EXTRAS = {
    "media-0": (None, Options(rate_hz=20, frame_px=32, audio=True, audio_rate_hz=1000, motion=True, motion_rate_hz=50)),
    "media-1": (FaultType.CLOG_FULL, Options(rate_hz=20, frames=False, glitches=True)),
    "media-2": (FaultType.LAYER_SHIFT, Options(rate_hz=20, frame_px=32, audio=True, audio_rate_hz=1000,
                                               motion=True, motion_rate_hz=50, glitches=True)),
}  # fmt: skip
# Corruptions of simulated runs (of test_ingest.CORRUPTIONS, and NaN in t) -> the run they spoil.
SPOILED = {
    "missing-sensors": "clean",
    "bad-json": "clog_full",
    "text-in-number": "thermal_runaway",
    "truncated-gcode": "filament_runout",
    "nan-t": "layer_shift",
}
NAN_T = (lambda f: _set_cell(f, 20, "t", "NaN"), "sensors.nan", {"file": "sensors.csv", "line": 20, "column": "t"})


def test_a_simulated_archive_ingests_and_its_corrupted_copies_are_quarantined(
    archive: dict[str, Run], source: Path, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    shutil.copytree(archive["clean"].path.parent, src / "archive")
    for k, (run_id, (fault, options)) in enumerate(EXTRAS.items()):
        simulate_run(source, src / "extra", run_id=run_id, fault=fault, seed=40 + k, options=options)
    spoiled = {}
    for name, victim in SPOILED.items():
        copy = src / "bad" / name
        shutil.copytree(archive[victim].path, copy)
        _edit_meta(copy, run_id=f"bad-{name}")  # a run id of its own: not a duplicate of the original
        corrupt, code, where = NAN_T if name == "nan-t" else CORRUPTIONS[name]
        corrupt(copy)
        spoiled[f"bad/{name}"] = (code, where, snapshot(copy))
    ds = tmp_path / "ds"
    report = ingest(src, ds, workers=2)
    good = {f"archive/{r.path.name}": r.path for r in archive.values()}
    good |= {f"extra/{run_id}": src / "extra" / run_id for run_id in EXTRAS}
    expected = {key: "ok" for key in good} | {f"extra/{k}": "repaired" for k, (_, o) in EXTRAS.items() if o.glitches}
    log = latest(ds)
    assert {k: e["status"] for k, e in log.items() if k in good} == expected, {
        k: e["reasons"] for k, e in log.items() if k in good and e["status"] == "quarantined"
    }
    assert report.counts == {"ok": N + 1, "repaired": 2, "quarantined": len(SPOILED)}
    for key, folder in good.items():
        _same_as_the_run(ds, folder, log[key])
    for key, (code, where, files) in spoiled.items():
        assert_quarantined(ds, key, code, where, files)


def _same_as_the_run(ds: Path, folder: Path, entry: dict[str, Any]) -> None:
    """The ingested tables hold what the run folder holds: labels, sensor rows, G-code lines, members."""
    meta = RunMetadata.model_validate_json((folder / "metadata.json").read_text())

    def table(name: str) -> list[dict[str, Any]]:
        return pq.read_table(run_part(ds, "raw", name, meta.run_id) / "part-0.parquet").to_pylist()

    labels = [{k: v for k, v in row.items() if k != "fault"} for row in table("labels")]
    assert labels == [f.model_dump(mode="json") | {"details": json.dumps(f.details, sort_keys=True)}
                      for f in meta.faults]  # fmt: skip
    t = pcsv.read_csv(folder / "sensors.csv", convert_options=sensor_convert_options()).column("t").to_pylist()
    ingested = [row["t"] for row in table("sensors")]
    assert ingested == sorted(set(t))  # duplicates dropped, disorder sorted: the glitches repaired
    if "glitches" in meta.notes:
        assert len(t) - len(ingested) == len(meta.notes["glitches"]["duplicates"])
        codes = [r["code"] for r in entry["reasons"]]
        assert {"sensors.out_of_order", "sensors.duplicate_time", "sensors.gap"} <= set(codes), codes
    else:
        assert len(ingested) == len(t)
    assert len(table("gcode")) == len((folder / "print.gcode").read_bytes().splitlines())
    if (folder / "frames").exists():
        frames = [f"frames/{p.name}" for p in sorted((folder / "frames").iterdir())]
        assert [row["file"] for row in table("frames")] == frames
    if (folder / "motion.csv").exists():
        assert len(table("motion")) == len((folder / "motion.csv").read_text().splitlines())
    if (folder / "audio.wav").exists():
        with wave.open(str(folder / "audio.wav")) as w:
            assert table("audio")[0]["frames"] == w.getnframes()
    run = table("runs")[0]
    assert (run["outcome"], run["fault_types"]) == (meta.outcome, [f.type.value for f in meta.faults])
