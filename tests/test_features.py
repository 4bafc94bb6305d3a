"""Features in DuckDB SQL, checked against an independent numpy computation on a synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from threedpai import features

RATE = 10.0  # Hz of the uniform table


def _put(root: Path, phase: str, table: str, run_id: str, data: dict) -> None:
    path = root / phase / table / f"run_id={run_id}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(data), path)


def _run(root: Path, run_id: str, rng: np.random.Generator, fault_layer: int | None) -> dict:
    """A 4-layer print: 20 s per layer on the uniform clock, moves alternating print and travel."""
    n = int(80 * RATE)
    t = np.arange(n) / RATE
    layer = (t // 20).astype(np.int32)
    target = np.full(n, 210.0)
    temp = target + rng.normal(0, 3, n) + np.where(layer >= 2, 0.5 * layer, 0.0)
    flow = np.abs(rng.normal(2.0, 0.5, n))
    e_cmd = np.cumsum(flow) / RATE
    load = 0.4 + 0.3 * flow + rng.normal(0, 0.02, n)
    uniform = {
        "t": t, "layer": layer, "hotend_temp": temp, "hotend_target": target,
        "bed_temp": np.full(n, 60.0), "bed_target": np.full(n, 60.0), "hotend_duty": rng.uniform(0.2, 1.0, n),
        "bed_duty": np.full(n, 0.3), "fan_cmd": np.full(n, 1.0), "fan_rpm": np.full(n, 5000.0),
        "extruder_load": load, "e": e_cmd * 0.9, "e_cmd": e_cmd,
        "filament_present": np.ones(n, np.int8), "reported_layer": layer,
    }  # fmt: skip
    _put(root, "aligned", "uniform", run_id, uniform)
    layers = np.arange(4, dtype=np.int32)
    _put(root, "aligned", "layers", run_id, {
        "layer": layers, "accel_rms": rng.uniform(100, 200, 4), "accel_peak": rng.uniform(500, 900, 4),
        "band_low": np.full(4, 0.5), "band_mid": np.full(4, 0.3), "band_high": np.full(4, 0.2),
    })  # fmt: skip
    m = 40  # moves per layer
    mv_layer = np.repeat(layers, m)
    kind = np.where(np.arange(4 * m) % 2 == 0, "print", "travel")
    dist = rng.uniform(1, 10, 4 * m)
    starts = mv_layer * 20.0 + np.tile(np.arange(m) * 0.5, 4)
    _put(root, "raw", "moves", run_id, {
        "layer": mv_layer, "kind": kind, "distance": dist, "cruise_v": rng.uniform(20, 200, 4 * m),
        "t_start": starts, "t_end": starts + 0.5, "feature": np.full(4 * m, "Perimeter"),
        "object": np.full(4 * m, "cube"),
    })  # fmt: skip
    faults = [] if fault_layer is None else [fault_layer]
    _put(root, "raw", "labels", run_id, {
        "type": pa.array(["clog_partial"] * len(faults), pa.string()),
        "onset_s": pa.array([20.0 * f for f in faults], pa.float64()),
        "onset_layer": pa.array(faults, pa.int32()), "severity": pa.array([0.5] * len(faults), pa.float64()),
    })  # fmt: skip
    _put(root, "raw", "runs", run_id, {"outcome": ["failed" if faults else "success"]})
    return {"uniform": uniform, "dist": dist, "kind": kind, "mv_layer": mv_layer}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("dataset")
    rng = np.random.default_rng(7)
    truth = {"a": _run(root, "a", rng, None), "0002": _run(root, "0002", rng, 2)}
    return root, truth


def test_layer_features_match_numpy(synthetic: tuple[Path, dict]) -> None:
    root, truth = synthetic
    got = features.run(root, params={"band_c": 4.0})["layer_features"].to_pylist()
    assert [(r["run_id"], r["layer"]) for r in got] == [(r, k) for r in ("0002", "a") for k in range(4)]
    for row in got:
        u, k = truth[row["run_id"]]["uniform"], row["layer"]
        sel = u["layer"] == k
        err = u["hotend_temp"][sel] - u["hotend_target"][sel]
        assert row["hotend_err_mean"] == pytest.approx(err.mean())
        assert row["hotend_out_of_band_s"] == pytest.approx((np.abs(err) > 4.0).sum() / RATE)
        assert row["hotend_overshoot"] == pytest.approx(max(err.max(), 0))
        # load against commanded feed rate: the slope the synthetic data was made with, per numpy
        flow = np.diff(u["e_cmd"], prepend=np.nan) * RATE
        ok = sel & ~np.isnan(flow)
        assert row["load_per_flow"] == pytest.approx(np.polyfit(flow[ok], u["extruder_load"][ok], 1)[0])
        assert row["flow_ratio"] == pytest.approx(0.9)
        mv = truth[row["run_id"]]
        in_layer = mv["mv_layer"] == k
        travel = mv["dist"][in_layer & (mv["kind"] == "travel")].sum()
        assert row["travel_ratio"] == pytest.approx(travel / mv["dist"][in_layer].sum())
        assert row["fault_active"] == (row["run_id"] == "0002" and k >= 2)


def test_run_features_trends_and_labels(synthetic: tuple[Path, dict]) -> None:
    root, truth = synthetic
    out = features.run(root)
    runs = {r["run_id"]: r for r in out["run_features"].to_pylist()}
    assert set(runs) == {"a", "0002"}  # a run named 0002 stays a string
    assert runs["0002"]["fault_type"] == "clog_partial" and runs["0002"]["fault_onset_layer"] == 2
    assert runs["a"]["fault_type"] is None and runs["a"]["faults"] == 0 and runs["a"]["outcome"] == "success"
    per_layer = [r["hotend_err_mean"] for r in out["layer_features"].to_pylist() if r["run_id"] == "a"]
    assert runs["a"]["hotend_err_trend"] == pytest.approx(np.polyfit(np.arange(4), per_layer, 1)[0])


def test_every_packaged_sql_file_plans(synthetic: tuple[Path, dict]) -> None:
    root, _ = synthetic
    con = duckdb.connect()
    for view, (phase, table) in features.INPUTS.items():
        con.register(view, features._table(root, phase, table))
    for name in features.FEATURE_SETS:
        text = features.sql(name)
        params = {k: v for k, v in features.DEFAULTS.items() if f"${k}" in text}
        con.execute("EXPLAIN " + text, params)
        con.register(name, con.sql(text, params=params).to_arrow_table())
        assert features.definitions(name), f"{name} defines no features"


def test_write_and_docs_are_current(synthetic: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = synthetic
    paths = features.write(tmp_path, features.run(root))
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "features/layer_features/part-0.parquet",
        "features/run_features/part-0.parquet",
    ]
    docs = Path(__file__).resolve().parents[1] / "docs" / "features.md"
    assert docs.read_text() == features.docs(), "docs/features.md is stale: run `threedpai features --docs`"


def test_missing_inputs_and_parameters_are_clear(tmp_path: Path) -> None:
    with pytest.raises(features.FeatureError, match="aligned/uniform.*threedpai align"):
        features.run(tmp_path)
    with pytest.raises(features.FeatureError, match="unknown feature parameters: nope"):
        features.run(tmp_path, params={"nope": 1})


def test_cli_writes_features_and_prints_docs(synthetic: tuple[Path, dict], tmp_path: Path) -> None:
    import shutil

    from threedpai.cli import app
    from typer.testing import CliRunner

    root, _ = synthetic
    copy = tmp_path / "ds"
    shutil.copytree(root, copy)
    runner = CliRunner()
    result = runner.invoke(app, ["features", str(copy), "--set", "band_c=3"])
    assert result.exit_code == 0, result.output
    assert pq.read_table(copy / "features/run_features/part-0.parquet").num_rows == 2
    assert runner.invoke(app, ["features", "--docs"]).output == features.docs()
    assert runner.invoke(app, ["features", str(copy), "--set", "band_c=hot"]).exit_code == 2
