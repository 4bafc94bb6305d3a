"""The polars version of the features (benchmarks/features_polars.py) equals threedpai.features.run.

On tests/test_features.py's synthetic runs plus one built to hit the edge cases: NaN and NULL sensor
values, a layer with the hotend target unset, a layer with no commanded flow (a constant x for
regr_slope), a planned layer with no samples, a layer with no printing moves, two faults out of order.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pytest
from test_features import _put, _run
from threedpai import features

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "features_polars.py"


def _load() -> ModuleType:
    # The script imports its sibling `timing`, as it does when run from benchmarks/.
    if str(BENCH.parent) not in sys.path:
        sys.path.append(str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("features_polars", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fp = _load()


def _edge_run(root: Path, run_id: str, rng: np.random.Generator) -> None:
    n = 650  # 10 Hz: 5 s before the first layer, then layers 0-2 of 20 s each
    t = np.arange(n) / 10.0
    lay = np.where(t < 5, 0, (t - 5) // 20).astype(np.int32)
    no_layer = t < 5
    target = np.where(lay == 1, 0.0, 210.0)
    temp = 210.0 + rng.normal(0, 3, n)
    temp[100] = np.nan  # layer 0: mean, max and overshoot become NaN
    flow = np.abs(rng.normal(2.0, 0.5, n))
    flow[(lay == 1) & ~no_layer] = 0.0  # no commanded flow on layer 1
    e_cmd = np.cumsum(flow) / 10.0
    load = 0.4 + 0.3 * flow + rng.normal(0, 0.02, n)
    load[120] = 5.0  # a spike
    duty = rng.uniform(0.2, 1.0, n)
    duty[::7] = 1.0
    fan_cmd = np.where(lay == 2, 0.0, 0.8)
    present = np.ones(n, np.int8)
    present[600:610] = 0
    reported = np.where(t % 20 < 1, lay - 1, lay).astype(np.int32)
    uniform = {
        "t": t, "layer": pa.array(lay, mask=no_layer), "hotend_temp": temp, "hotend_target": target,
        "bed_temp": 60.0 + rng.normal(0, 1, n), "bed_target": np.full(n, 60.0),
        "hotend_duty": pa.array(duty, mask=np.arange(n) == 300), "bed_duty": rng.uniform(0, 1, n),
        "fan_cmd": fan_cmd, "fan_rpm": fan_cmd * 6000.0,
        "extruder_load": pa.array(load, mask=np.arange(n) % 50 == 3), "e": e_cmd * 0.9, "e_cmd": e_cmd,
        "filament_present": present, "reported_layer": pa.array(reported, mask=no_layer),
    }  # fmt: skip
    _put(root, "aligned", "uniform", run_id, uniform)
    _put(root, "aligned", "layers", run_id, {
        "layer": np.arange(3, dtype=np.int32), "accel_rms": [150.0, 160.0, np.nan], "accel_peak": [600.0, 700.0, 800.0],
        "band_low": np.full(3, 0.5), "band_mid": np.full(3, 0.3), "band_high": np.full(3, 0.2),
    })  # fmt: skip
    # Layer 1 only travels, layer 3 (no samples) only retracts, one move has no layer, some no feature.
    mv_layer = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 0], np.int32)
    kind = ["print", "travel", "retract", "print", "travel", "travel", "print", "print", "travel", "retract",
            "retract", "print"]  # fmt: skip
    starts = np.array([5.0, 6, 7, 8, 25, 30, 45, 50, 55, 65, 66, 1])
    _put(root, "raw", "moves", run_id, {
        "layer": pa.array(mv_layer, mask=np.arange(12) == 11), "kind": kind, "distance": rng.uniform(1, 10, 12),
        "cruise_v": rng.uniform(20, 200, 12), "t_start": starts, "t_end": starts + 0.7,
        "feature": pa.array(["Perimeter", None, None, "Infill", None, None, "Infill", "Infill", None, None, None, "x"]),
        "object": ["cube"] * 6 + ["cube", "cone"] + ["cube"] * 4,
    })  # fmt: skip
    _put(root, "raw", "labels", run_id, {
        "type": pa.array(["filament_runout", "heater_weak"]), "onset_s": pa.array([50.0, 30.0]),
        "onset_layer": pa.array([2, 1], pa.int32()), "severity": pa.array([0.7, 0.4]),
    })  # fmt: skip
    _put(root, "raw", "runs", run_id, {"outcome": ["aborted"]})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    rng = np.random.default_rng(11)
    _run(root, "a", rng, None)
    _run(root, "0002", rng, 2)
    _edge_run(root, "edge", rng)
    return root


@pytest.mark.parametrize("engine", ["auto", "streaming"])
@pytest.mark.parametrize("params", [None, {"band_c": 2.0, "spike_sigma": 2.5}])
def test_polars_equals_duckdb(dataset: Path, engine: str, params: dict | None) -> None:
    got = fp.check(dataset, params, engine=engine)  # raises with every difference listed
    assert got["run_features"]["run_id"].to_list() == ["0002", "a", "edge"]


def test_the_edge_cases_are_exercised(dataset: Path) -> None:
    rows = {(r["run_id"], r["layer"]): r for r in features.run(dataset)["layer_features"].to_pylist()}
    edge = [rows["edge", k] for k in range(4)]
    assert math.isnan(edge[0]["hotend_err_mean"]) and math.isnan(edge[0]["hotend_overshoot"])
    assert edge[1]["hotend_err_mean"] is None and edge[1]["hotend_overshoot"] == 0
    assert math.isnan(edge[1]["load_per_flow"]) and edge[1]["flow_ratio"] is None
    assert edge[1]["print_speed_mean"] is None and edge[2]["fan_rpm_per_cmd"] is None
    assert edge[3]["hotend_err_mean"] is None and edge[3]["layer_time_ratio"] is None and edge[3]["vib_rms"] is None
    assert math.isnan(edge[2]["vib_rms"]) and edge[0]["load_spikes"] >= 1
    assert [r["fault_type"] for r in edge] == [None, "heater_weak", "heater_weak", "heater_weak"]
    assert edge[0]["features"] == 2  # NULL features are not counted
    run = {r["run_id"]: r for r in features.run(dataset)["run_features"].to_pylist()}["edge"]
    assert run["fault_type"] == "heater_weak" and run["faults"] == 2 and run["fault_onset_layer"] == 1


def test_a_difference_is_reported(dataset: Path) -> None:
    import polars as pl

    expected = features.run(dataset)["layer_features"]
    got = fp.polars_features(dataset)["layer_features"]
    assert fp.differences(expected, got) == []
    problems = fp.differences(expected, got.with_columns(pl.col("load_mean") * (1 + 1e-8)))
    assert problems and all(p.startswith("load_mean [") or p.startswith("load_mean:") for p in problems)
    assert fp.differences(expected, got.with_columns(pl.col("vib_rms").fill_nan(None)))  # NaN is not NULL
