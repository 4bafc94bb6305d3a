"""Versioned datasets: commit, checkout bit for bit, diff, verify (DVC underneath)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from threedpai import dataset


def _write(root: Path, rel: str, rows: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"t": pa.array(range(rows), pa.float64())}), path)


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for phase in dataset.PHASES
        for p in sorted((root / phase).rglob("*"))
        if p.is_file()
    }


def test_a_version_comes_back_bit_for_bit_after_newer_ones(tmp_path: Path) -> None:
    _write(tmp_path, "raw/sensors/scenario=clean/run_id=a/part-0.parquet", 3)
    _write(tmp_path, "features/run/part-0.parquet", 1)
    first = _hashes(tmp_path)
    v1 = dataset.commit(tmp_path, params={"seed": 1}, message="first")

    _write(tmp_path, "raw/sensors/scenario=clean/run_id=a/part-0.parquet", 4)
    _write(tmp_path, "raw/sensors/scenario=clog_full/run_id=b/part-0.parquet", 2)
    _write(tmp_path, "aligned/moves/run_id=a/part-0.parquet", 5)
    v2 = dataset.commit(tmp_path, params={"seed": 1})
    assert v2.id != v1.id and v2.manifest["parent"] == v1.id
    _write(tmp_path, "features/run/part-0.parquet", 7)
    v3 = dataset.commit(tmp_path, params={"seed": 2})

    dataset.checkout(tmp_path, v1.id)
    assert _hashes(tmp_path) == first  # changed files restored, newer files and phases gone
    assert dataset.verify(tmp_path) == []
    dataset.checkout(tmp_path, v3.id)
    assert dataset.verify(tmp_path) == []
    assert [v.id for v in dataset.versions(tmp_path)] == [v1.id, v2.id, v3.id]


def test_same_content_and_parameters_give_the_same_id(tmp_path: Path) -> None:
    for root in (tmp_path / "a", tmp_path / "b"):
        _write(root, "raw/runs/run_id=x/part-0.parquet", 1)
    va = dataset.commit(tmp_path / "a", params={"n": 3})
    vb = dataset.commit(tmp_path / "b", params={"n": 3})
    assert va.id == vb.id
    assert dataset.commit(tmp_path / "a", params={"n": 3}).id == va.id  # nothing new: the same version
    assert dataset.commit(tmp_path / "a", params={"n": 4}).id != va.id


def test_manifest_describes_tables_partitions_and_sources(tmp_path: Path) -> None:
    runs = pa.table({"run_id": ["b", "a"], "content_hash": ["h2", "h1"], "status": ["ok", "repaired"]})
    (tmp_path / "raw/runs").mkdir(parents=True)
    pq.write_table(runs, tmp_path / "raw/runs/part-0.parquet")
    _write(tmp_path, "raw/sensors/scenario=fan_failure/run_id=a/part-0.parquet", 10)
    v = dataset.commit(tmp_path, params={"rate": 50})
    f = v.files["raw/sensors/scenario=fan_failure/run_id=a/part-0.parquet"]
    assert (f["phase"], f["table"], f["scenario"], f["run_id"], f["rows"]) == ("raw", "sensors", "fan_failure", "a", 10)
    assert v.manifest["tables"]["raw/sensors"]["rows"] == 10
    assert [s["run_id"] for s in v.manifest["sources"]] == ["a", "b"]
    assert v.manifest["params"] == {"rate": 50}


def test_verify_finds_corruption_in_the_directory_and_the_cache(tmp_path: Path) -> None:
    rel = "raw/sensors/run_id=a/part-0.parquet"
    _write(tmp_path, rel, 3)
    v = dataset.commit(tmp_path)
    (tmp_path / rel).write_bytes(b"garbage")
    (tmp_path / "raw/stray.txt").write_text("x")
    problems = dataset.verify(tmp_path)
    assert any(p.startswith(rel) and "modified" in p for p in problems)
    assert any(p.startswith("raw/stray.txt") for p in problems)
    dataset.checkout(tmp_path, v.id)
    assert dataset.verify(tmp_path) == []
    md5 = v.files[rel]["md5"]
    obj = tmp_path / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"rot")
    assert any("cache copy is corrupted" in p for p in dataset.verify(tmp_path, v.id))


def test_unknown_version_and_empty_dataset_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(dataset.DatasetError, match="nothing to version"):
        dataset.commit(tmp_path)
    with pytest.raises(dataset.DatasetError, match="no version 'nope'"):
        dataset.show(tmp_path, "nope")


def test_cli_lists_shows_and_verifies(tmp_path: Path) -> None:
    from threedpai.cli import app
    from typer.testing import CliRunner

    _write(tmp_path, "raw/sensors/run_id=a/part-0.parquet", 3)
    runner = CliRunner()
    assert runner.invoke(app, ["dataset", "commit", str(tmp_path), "-m", "first"]).exit_code == 0
    v = dataset.head(tmp_path)
    listed = runner.invoke(app, ["dataset", "list", str(tmp_path)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and v in listed.output and "first" in listed.output
    assert runner.invoke(app, ["dataset", "verify", str(tmp_path)]).exit_code == 0
    (tmp_path / "raw/sensors/run_id=a/part-0.parquet").write_bytes(b"x")
    bad = runner.invoke(app, ["dataset", "verify", str(tmp_path)], env={"COLUMNS": "200"})
    assert bad.exit_code == 1 and "modified" in bad.output
    missing = runner.invoke(app, ["dataset", "show", str(tmp_path), "nope"], env={"COLUMNS": "200"})
    assert missing.exit_code == 2 and "no version 'nope'" in missing.output
