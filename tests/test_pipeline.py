"""threedpai pipeline: the whole ETL on a small simulated archive, resumable, the same dataset
version whatever the engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from threedpai import dataset, pipeline
from threedpai.cli import app
from typer.testing import CliRunner

CONFIG = """
dataset = "out/dataset"

[simulate]
out = "out/archive"
runs = 4
seed = 3
rate_hz = 20.0
faults = ["clog_full", "thermal_runaway", "fan_failure"]
clean_share = 0.25
frames = true
audio = false

[align]
rate_hz = 5.0

[engine]
kind = "{kind}"
workers = 2
"""


def write_config(folder: Path, kind: str = "local", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.toml"
    path.write_text(CONFIG.format(kind=kind) + extra)
    return path


def events(root: Path) -> list[dict]:
    log = root / "out" / "dataset" / "_pipeline" / "log.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pipeline.PipelineReport]:
    root = tmp_path_factory.mktemp("pipeline")
    return root, pipeline.run(write_config(root))


def test_every_stage_runs_and_the_version_verifies(first: tuple[Path, pipeline.PipelineReport]) -> None:
    root, report = first
    assert [s.name for s in report.stages] == ["simulate", "ingest", "align", "features", "version", "report"]
    counts = {s.name: s.counts for s in report.stages}
    assert counts["simulate"] == {"runs": 4, "faulty": 3}
    assert counts["ingest"].get("ok", 0) + counts["ingest"].get("repaired", 0) == 4
    assert counts["align"] == {"aligned": 4, "skipped": 0, "failed": 0}
    assert counts["features"] == {"layer_features": counts["features"]["layer_features"], "run_features": 4}
    ds = root / "out" / "dataset"
    assert report.version == dataset.head(ds) and dataset.verify(ds) == []
    manifest = dataset.show(ds, report.version).manifest
    assert {"raw/runs", "aligned/uniform", "features/run_features"} <= set(manifest["tables"])
    assert manifest["params"]["simulate"]["runs"] == 4
    # a structured log line per stage start and end, and the report with its plots
    names = [e["event"] for e in events(root)]
    assert names[0] == "pipeline.start" and names[-1] == "pipeline.done"
    assert names.count("stage.done") == 6
    assert report.report_dir is not None and (report.report_dir / "report.md").is_file()
    assert len(list(report.report_dir.glob("run-*.png"))) == 4


def test_a_rerun_gives_the_same_version(first: tuple[Path, pipeline.PipelineReport], tmp_path: Path) -> None:
    root, report = first
    again = pipeline.run(root / "pipeline.toml")
    assert again.version == report.version
    assert {s.name: s.counts for s in again.stages}["align"]["skipped"] == 4


def test_an_interrupted_pipeline_finishes_to_the_same_version(
    first: tuple[Path, pipeline.PipelineReport], tmp_path: Path
) -> None:
    root, report = first
    # as if killed after simulating two runs and ingesting one: fresh folders, partial work
    copy = tmp_path / "p"
    write_config(copy)
    shutil.copytree(root / "out" / "archive", copy / "out" / "archive")
    for run in sorted((copy / "out" / "archive").glob("run-*"))[2:]:
        shutil.rmtree(run)
    (copy / "out" / "archive" / ".run-00002.x.tmp").mkdir()  # a run folder half written
    from threedpai.ingest import ingest

    ingest(copy / "out" / "archive", copy / "out" / "dataset", workers=1)
    again = pipeline.run(copy / "pipeline.toml")
    assert again.version == report.version


def test_a_bad_run_in_the_archive_is_quarantined_and_reported(tmp_path: Path) -> None:
    root = tmp_path / "p"
    config = write_config(root, extra='\n[ingest]\narchive = "archive"\n')
    archive = root / "archive"
    src = pipeline.load(write_config(tmp_path / "src"))
    assert src.simulate is not None
    from threedpai.simulate import Options, simulate

    simulate(None, 2, archive, seed=1, options=Options(rate_hz=20.0, frames=False), workers=1)
    (archive / "run-00001" / "metadata.json").write_text("{ not json")
    text = config.read_text().replace("[simulate]", "[unused]").split("[unused]")[0]
    config.write_text(text + '\n[ingest]\narchive = "archive"\n[engine]\nkind = "local"\nworkers = 1\n')
    report = pipeline.run(config)
    assert [q["key"] for q in report.quarantined] == ["run-00001"]
    assert report.report_dir is not None
    md = (report.report_dir / "report.md").read_text()
    assert "run-00001" in md and "metadata.json" in md


def test_the_dask_engine_gives_the_same_version(first: tuple[Path, pipeline.PipelineReport], tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    _, report = first
    root = tmp_path / "dask"
    again = pipeline.run(write_config(root, kind="dask"))
    assert again.version == report.version


def test_bad_configs_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('dataset = "d"\n[simulate]\nout = "a"\nruns = 0\n')
    with pytest.raises(pipeline.PipelineError, match="runs"):
        pipeline.load(bad)
    bad.write_text('dataset = "d"\n[ingest]\narchiv = "a"\n')
    with pytest.raises(pipeline.PipelineError, match="archiv"):
        pipeline.load(bad)
    bad.write_text('dataset = "d"\n')
    with pytest.raises(pipeline.PipelineError, match="nothing to ingest"):
        pipeline.run(bad)


def test_cli_runs_the_pipeline(first: tuple[Path, pipeline.PipelineReport]) -> None:
    root, report = first
    result = CliRunner().invoke(app, ["pipeline", "run", str(root / "pipeline.toml"), "--quiet", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"version {report.version}" in result.output and "report.md" in result.output
