"""The pipeline's end-of-run report, on a small synthetic dataset: files, numbers, plots, atomic replacement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from threedpai import report as rp
from threedpai.pipeline import PipelineConfig, PipelineReport, StageResult

RATE = 10.0  # Hz of the uniform table
LAYER_S = 10.0  # seconds per layer
# run_id -> (fault type, onset s) or None for a clean run
RUNS = {
    "a": None,
    "b": ("clog_partial", 25.0),
    "c": ("fan_failure", 32.5),
    "d": ("clog_partial", 18.0),
    "e": None,
}
REASON = {"code": "sensors.non_numeric", "message": "text in a number column", "file": "sensors.csv", "line": 17}


def _put(root: Path, phase: str, table: str, run_id: str, data: dict) -> None:
    path = root / phase / table / f"run_id={run_id}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(data), path)


def _run(root: Path, run_id: str, fault: tuple[str, float] | None, rng: np.random.Generator) -> None:
    """A 4-layer print; the first 2 s are before the first layer (layer null)."""
    n = int((2 + 4 * LAYER_S) * RATE)
    t = np.arange(n) / RATE
    layer = pa.array([None if x < 2 else int((x - 2) // LAYER_S) for x in t], pa.int32())
    _put(root, "aligned", "uniform", run_id, {
        "t": t, "layer": layer, "hotend_temp": 210 + rng.normal(0, 1, n), "hotend_target": np.full(n, 210.0),
        "bed_temp": np.full(n, 60.0), "accel_x": rng.normal(0, 50, n), "accel_y": rng.normal(0, 50, n),
        "accel_z": 9810 + rng.normal(0, 50, n),
    })  # fmt: skip
    starts = 2 + LAYER_S * np.arange(4)
    _put(root, "aligned", "layers", run_id, {
        "layer": np.arange(4, dtype=np.int32), "t_start": starts, "t_end": starts + LAYER_S,
        "accel_rms": rng.uniform(40, 80, 4),
    })  # fmt: skip
    faults = [] if fault is None else [fault]
    _put(root, "raw", "labels", run_id, {
        "type": pa.array([f[0] for f in faults], pa.string()),
        "onset_s": pa.array([f[1] for f in faults], pa.float64()),
    })  # fmt: skip


def _features(root: Path) -> None:
    ids = list(RUNS)
    run_features = {
        "run_id": ids,
        "fault_type": [None if RUNS[r] is None else RUNS[r][0] for r in ids],
        "hotend_err_abs_max_run": [1.0, 4.0, 2.0, 6.0, 3.0],
        "vib_rms_run_max": [50.0, 60.0, 90.0, None, 70.0],
    }
    for name, data in {"run_features": run_features, "layer_features": {"run_id": np.repeat(ids, 4)}}.items():
        (root / "features" / name).mkdir(parents=True)
        pq.write_table(pa.table(data), root / "features" / name / "part-0.parquet")


STAGES = [
    StageResult("ingest", 1.5, {"ok": 4, "repaired": 1, "quarantined": 1}),
    StageResult("align", 2.0, {"aligned": 5}),
    StageResult("features", 0.5, {"layer_features": 20, "run_features": 5}),
    StageResult("version", 0.0, {"version": "v123", "files": 12}),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    rng = np.random.default_rng(3)
    for run_id, fault in RUNS.items():
        _run(root, run_id, fault, rng)
    _features(root)
    return root


@pytest.fixture(scope="module")
def written(dataset: Path) -> Path:
    report = PipelineReport(
        PipelineConfig(dataset=dataset), stages=list(STAGES), version="v123",
        quarantined=[{"key": "archive/bad-run", "reasons": [REASON]}],
    )  # fmt: skip
    return rp.write_report(report)


def test_report_folder_holds_markdown_json_and_pngs(dataset: Path, written: Path) -> None:
    assert written == dataset / "_pipeline" / "report"
    names = sorted(p.name for p in written.iterdir())
    plots = [f"run-{i}-{r}.png" for i, r in enumerate("bcad", 1)]  # distinct faults, a clean run, a repeated fault
    assert names == ["report.json", "report.md", *plots, "stages.png"]
    for png in written.glob("*.png"):
        assert png.stat().st_size > 0
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 100
            im.verify()
    md = (written / "report.md").read_text()
    assert all(f"({p.name})" in md for p in written.glob("*.png")), "every plot is embedded"
    assert "`archive/bad-run`" in md and "`sensors.non_numeric` sensors.csv:17 — text in a number column" in md
    assert "| quarantined | 1 |" in md and "| skipped | 0 |" in md and "`v123`" in md


def test_report_json_has_the_numbers_given(written: Path) -> None:
    facts = json.loads((written / "report.json").read_text())
    assert facts["version"] == "v123" and facts["seconds"] == pytest.approx(4.0)
    assert [(s["name"], s["seconds"], s["counts"]) for s in facts["stages"]] == [
        (s.name, s.seconds, s.counts) for s in STAGES
    ]
    assert [s["share"] for s in facts["stages"]] == pytest.approx([0.375, 0.5, 0.125, 0.0])
    assert facts["runs"] == {"ok": 4, "repaired": 1, "skipped": 0, "quarantined": 1, "total": 6}
    assert facts["quarantined"] == [{"key": "archive/bad-run", "reasons": [REASON]}]
    feats = facts["features"]
    assert feats["layer_features"] == 20 and feats["run_features"] == 5
    assert feats["by_fault"] == [
        {"fault_type": "clean", "runs": 2, "means": {"hotend_err_abs_max_run": 2.0, "vib_rms_run_max": 60.0}},
        {"fault_type": "clog_partial", "runs": 2, "means": {"hotend_err_abs_max_run": 5.0, "vib_rms_run_max": 60.0}},
        {"fault_type": "fan_failure", "runs": 1, "means": {"hotend_err_abs_max_run": 2.0, "vib_rms_run_max": 90.0}},
    ]
    assert [(r["run_id"], r["fault_type"], r["onset_s"]) for r in facts["plots"]["runs"]] == [
        ("b", "clog_partial", 25.0), ("c", "fan_failure", 32.5), ("a", None, None), ("d", "clog_partial", 18.0)
    ]  # fmt: skip


def test_pick_prefers_distinct_faults_then_one_clean_run() -> None:
    picks = [rp.RunPick("a"), rp.RunPick("b", "x", 1.0), rp.RunPick("c", "x", 2.0), rp.RunPick("e")]
    picks += [rp.RunPick("f", "y", 3.0), rp.RunPick("g", "z", 4.0), rp.RunPick("h", "w", 5.0)]
    assert [p.run_id for p in rp.choose(picks)] == ["b", "f", "g", "a"]
    assert [p.run_id for p in rp.choose(picks[:4])] == ["b", "a", "c", "e"]
    assert [p.run_id for p in rp.choose([rp.RunPick("a"), rp.RunPick("e")], 1)] == ["a"]
    assert rp.choose([]) == []


def test_run_figure_marks_the_onset_and_layer_changes(dataset: Path) -> None:
    pick = rp.RunPick("c", "fan_failure", 32.5)
    fig = rp.run_figure(dataset, pick)
    assert fig is not None
    temp_ax, vib_ax = fig.axes[:2]
    for ax in (temp_ax, vib_ax):
        onset = [ln for ln in ax.lines if ln.get_gid() == rp.ONSET_GID]
        assert len(onset) == 1 and list(onset[0].get_xdata()) == [32.5, 32.5]
        assert onset[0].get_color() == "red" and onset[0].get_linestyle() == "--"
        layer_lines = ax.collections[-1].get_segments()
        assert sorted(seg[0][0] for seg in layer_lines) == [2.0, 12.0, 22.0, 32.0]
    assert any("fan_failure" in t.get_text() for t in temp_ax.texts)
    assert [ln.get_label() for ln in temp_ax.lines][:2] == ["hotend", "hotend target"]
    assert [ln.get_label() for ln in fig.axes[2].lines] == ["bed"]  # its own scale, on the right


def test_run_figure_plots_what_exists(tmp_path: Path) -> None:
    t = np.arange(50) / RATE
    layer = pa.array([None] * 10 + [0] * 20 + [1] * 20, pa.int32())
    _put(tmp_path, "aligned", "uniform", "u", {"t": t, "layer": layer})
    fig = rp.run_figure(tmp_path, rp.RunPick("u"))
    assert fig is not None and not any(ln.get_gid() == rp.ONSET_GID for ax in fig.axes for ln in ax.lines)
    assert {t.get_text() for ax in fig.axes for t in ax.texts} == {"no temperature channels", "no vibration channels"}
    assert list(rp.layer_starts(rp._numeric(pq.read_table(tmp_path / "aligned/uniform/run_id=u")), {})) == [1.0, 3.0]
    assert rp.run_figure(tmp_path, rp.RunPick("missing")) is None


ALL_QUARANTINED = [StageResult("ingest", 0.2, {"quarantined": 2})]


@pytest.mark.parametrize("stages", [[], ALL_QUARANTINED], ids=["nothing", "all-quarantined"])
def test_an_empty_dataset_still_gets_a_report(tmp_path: Path, stages: list[StageResult]) -> None:
    quarantined = [{"key": k, "reasons": ["unreadable"]} for k in ("x", "y")] if stages else []
    cfg = PipelineConfig(dataset=tmp_path / "ds")
    out = rp.write_report(PipelineReport(cfg, stages=stages, quarantined=quarantined))
    md = (out / "report.md").read_text()
    assert "No runs to plot" in md and "No feature tables" in md and "version: none" in md
    facts = json.loads((out / "report.json").read_text())
    assert facts["plots"]["runs"] == [] and facts["features"]["by_fault"] == []
    if stages:
        assert facts["runs"]["quarantined"] == 2 and "- `x`\n  - unreadable" in md and (out / "stages.png").exists()
    else:
        assert facts["runs"] is None and "No stage ran." in md and not list(out.glob("*.png"))


def test_a_second_write_replaces_the_first_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "elsewhere" / "rep"
    cfg = PipelineConfig(dataset=tmp_path / "ds", report=folder)
    assert rp.write_report(PipelineReport(cfg, version="first")) == folder
    (folder / "stale.txt").write_text("from an older report")
    rp.write_report(PipelineReport(cfg, version="second"))
    assert json.loads((folder / "report.json").read_text())["version"] == "second"
    assert not (folder / "stale.txt").exists()
    assert [p.name for p in folder.parent.iterdir()] == ["rep"], "no temporary folders are left behind"

    def crash(facts: dict) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(rp, "markdown", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        rp.write_report(PipelineReport(cfg, version="third"))
    assert json.loads((folder / "report.json").read_text())["version"] == "second", "a failed write keeps the old one"
    assert [p.name for p in folder.parent.iterdir()] == ["rep"]


def test_reasons_are_compact_whatever_their_keys() -> None:
    assert rp.format_reason(REASON) == "`sensors.non_numeric` sensors.csv:17 — text in a number column"
    full = REASON | {"column": "hotend_temp", "severity": "error", "details": None}
    want = "`sensors.non_numeric` sensors.csv:17:hotend_temp — text in a number column (severity=error)"
    assert rp.format_reason(full) == want
    assert rp.format_reason({"what": 1}) == "(what=1)" and rp.format_reason("plain") == "plain"
