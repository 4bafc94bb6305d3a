"""threedpai's DuckDB feature queries side by side with a polars lazy-scan version of the same features
(``python benchmarks/features_polars.py DATASET [--repeat 3]``).

``polars_features`` computes every feature of ``sql/layer_features.sql`` and ``sql/run_features.sql`` with
``pl.scan_parquet`` over the same hive-partitioned folders (DATASET/<phase>/<table>/run_id=<id>/), same
column names, types and order, same NULL/NaN behaviour as DuckDB gives it. Before anything is timed its
result is checked against ``threedpai.features.run``: same rows in the same order, same columns and
dtypes, integers, strings and booleans equal, floats within rtol 1e-9 (or 1e-12 of the column's scale,
for near-zero results of cancelling sums such as a flat trend), and NULL and NaN in the very same cells
(no normalisation of one into the other is needed; any mismatch fails loudly, listing the cells).

How the SQL maps onto polars, where it is not a one-to-one translation:

- DuckDB orders NaN above every number: ``max`` returns NaN when there is one (polars ``nan_max``),
  ``min`` skips it (polars ``min``), ``greatest(NaN, 0)`` is NaN (so not ``pl.max_horizontal``), and
  ``NaN > 0`` is true (as in polars).
- SQL ``sum`` over no non-NULL value is NULL, polars' is 0: ``_sum`` guards it. ``sum`` of BIGINT is a
  HUGEINT in DuckDB (Arrow decimal128(38, 0)); the polars columns are cast to the same. Counts are Int64.
- ``regr_slope`` is covar_pop / var_pop over the pairs with both values set: NULL without pairs, NaN
  (0 / 0) when x is constant (DuckDB's Welford variance is then exactly 0). Polars computes it in two
  passes, with the constant case tested explicitly (a two-pass mean of equal values may be off by an ulp).
- ``stddev_pop`` for the load-spike threshold is two-pass too; ``lag(...) OVER (PARTITION BY run_id
  ORDER BY t)`` is ``shift(1).over("run_id", order_by="t")``, over the rows with a layer (WHERE comes first).
- ``arg_min(v, k)`` skips rows where v or k is NULL and keeps the first of ties (file order here).
- The LATERAL join (the earliest-onset fault among those with ``onset_layer <= layer``) is, exactly,
  the run's earliest-onset fault when its onset layer is ``<= layer`` and NULL otherwise: one per-run
  aggregate and a left join instead of a join per layer.
- Integer counts compared with a mean-plus-sigma threshold (load_spikes) could differ if a sample sat
  within an ulp of the threshold, as the two engines' means and deviations may differ in the last bit.

Timed, best of --repeat: threedpai.features.run (DuckDB on one thread, as threedpai runs it for
reproducible float sums), the same SQL and views on a DuckDB connection with its default threads, and
polars with its default thread pool (in-memory and streaming engines). DuckDB reads the Parquet
through the pyarrow datasets threedpai registers as views; polars reads it itself. Rows/s counts
uniform input rows (all of them, with or without a layer).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
from threedpai import features
from timing import best_of

Engine = Literal["auto", "in-memory", "streaming"]
PARTITIONS = ("scenario", "run_id")
HUGEINT = pl.Decimal(38, 0)  # DuckDB's sum of BIGINT, as Arrow gets it
RTOL = 1e-9
SCALE_TOL = 1e-12
# run_features slopes over layers -> the layer_features column they are the slope of (their scale).
TRENDS = {
    "hotend_err_trend": "hotend_err_mean",
    "hotend_duty_trend": "hotend_duty_mean",
    "load_trend": "load_mean",
    "flow_ratio_trend": "flow_ratio",
    "vib_trend": "vib_rms",
}


# --- polars ------------------------------------------------------------------------------------------


def scan(root: Path, phase: str, table: str) -> pl.LazyFrame:
    """One input table; partition values stay strings (a run named 0002 is not the number 2)."""
    folder = root / phase / table
    if not any(folder.rglob("*.parquet")):
        raise features.FeatureError(f"{root}: no {phase}/{table} tables")
    hive = {p: pl.String for p in PARTITIONS if any(folder.glob(f"**/{p}=*"))}
    # Like the pyarrow dataset DuckDB reads: the first file's schema, missing columns as nulls.
    return pl.scan_parquet(
        folder / "**" / "*.parquet",
        hive_partitioning=True,
        hive_schema=hive or None,
        try_parse_hive_dates=False,
        missing_columns="insert",
        extra_columns="ignore",
    )


def _sum(e: pl.Expr) -> pl.Expr:
    """SQL sum: NULL when there is no non-NULL value."""
    return pl.when(e.count() > 0).then(e.sum())


def _nullif0(e: pl.Expr) -> pl.Expr:
    return pl.when(e != 0).then(e)


def _count(cond: pl.Expr) -> pl.Expr:
    """count(*) FILTER (WHERE cond): rows where cond is true (not NULL)."""
    return cond.sum().cast(pl.Int64)


def _any_value(e: pl.Expr) -> pl.Expr:
    """DuckDB any_value: the first non-NULL value."""
    return e.drop_nulls().first()


def _arg_min(value: pl.Expr, key: pl.Expr) -> pl.Expr:
    """DuckDB arg_min: value on the row with the smallest key, over rows with both set; first of ties."""
    both = value.is_not_null() & key.is_not_null()
    return value.filter(both).sort_by(key.filter(both), maintain_order=True).first()


def _regr_slope(y: pl.Expr, x: pl.Expr) -> pl.Expr:
    """DuckDB regr_slope(y, x) = covar_pop(y, x) / var_pop(x) over pairs with both set."""
    both = y.is_not_null() & x.is_not_null()
    xs, ys = x.filter(both).cast(pl.Float64), y.filter(both).cast(pl.Float64)
    dx, dy = xs - xs.mean(), ys - ys.mean()
    slope = (dx * dy).sum() / (dx * dx).sum()
    return (
        pl.when(both.sum() == 0)
        .then(None)
        .when(xs.min() == xs.nan_max())  # var_pop exactly 0: DuckDB divides 0 by 0
        .then(math.nan)
        .otherwise(slope)
    )


def layer_features(root: Path, band_c: float, spike_sigma: float) -> pl.LazyFrame:
    """sql/layer_features.sql."""
    uniform = scan(root, "aligned", "uniform")
    dt = uniform.group_by("run_id").agg(
        dt=(pl.col("t").nan_max() - pl.col("t").min()) / pl.max_horizontal(pl.len().cast(pl.Int64) - 1, 1)
    )
    u = (
        uniform.filter(pl.col("layer").is_not_null())
        .join(dt, on="run_id", how="inner")
        .with_columns(
            he=pl.col("hotend_temp") - pl.col("hotend_target"),
            be=pl.col("bed_temp") - pl.col("bed_target"),
            flow_cmd=(pl.col("e_cmd") - pl.col("e_cmd").shift(1).over("run_id", order_by="t")) / pl.col("dt"),
            flow_seen=(pl.col("e") - pl.col("e").shift(1).over("run_id", order_by="t")) / pl.col("dt"),
            on_reported=pl.col("reported_layer") == pl.col("layer"),
        )
    )
    he, be, load = pl.col("he"), pl.col("be"), pl.col("extruder_load")
    flow_cmd, flow_seen = pl.col("flow_cmd"), pl.col("flow_seen")
    hot, bed = pl.col("hotend_target") > 0, pl.col("bed_target") > 0
    dt1 = _any_value(pl.col("dt"))
    load_sd = ((load - load.mean()) ** 2).mean().sqrt()  # stddev_pop
    fed = flow_cmd > 0
    sensed = u.group_by("run_id", "layer").agg(
        hotend_err_mean=he.filter(hot).mean(),
        hotend_err_abs_max=he.abs().filter(hot).nan_max(),
        hotend_overshoot=pl.when(he.filter(hot).nan_max() > 0).then(he.filter(hot).nan_max()).otherwise(0.0),
        hotend_out_of_band_s=_count(hot & (he.abs() > band_c)) * dt1,
        bed_err_mean=be.filter(bed).mean(),
        bed_out_of_band_s=_count(bed & (be.abs() > band_c)) * dt1,
        hotend_duty_mean=pl.col("hotend_duty").mean(),
        hotend_duty_saturated=pl.when(pl.col("hotend_duty") >= 0.98).then(1.0).otherwise(0.0).mean(),
        bed_duty_mean=pl.col("bed_duty").mean(),
        fan_cmd_mean=pl.col("fan_cmd").mean(),
        fan_rpm_per_cmd=(pl.col("fan_rpm") / pl.col("fan_cmd")).filter(pl.col("fan_cmd") > 0.1).mean(),
        load_mean=load.mean(),
        load_per_flow=_regr_slope(load, flow_cmd),
        load_spikes=_count(load > load.mean() + spike_sigma * load_sd),
        flow_ratio=_sum(flow_seen.filter(fed)) / _nullif0(_sum(flow_cmd.filter(fed))),
        filament_missing_s=_count(pl.col("filament_present") == 0) * dt1,
        reported_layer_s=_count(pl.col("on_reported")) * dt1,
    )
    kind, dist = pl.col("kind"), pl.col("distance")
    xy = kind.is_in(["print", "travel"])
    planned = (
        scan(root, "raw", "moves")
        .filter(pl.col("layer").is_not_null())
        .group_by("run_id", "layer")
        .agg(
            planned_s=pl.col("t_end").nan_max() - pl.col("t_start").min(),
            print_speed_mean=_sum((pl.col("cruise_v") * dist).filter(kind == "print"))
            / _nullif0(_sum(dist.filter(kind == "print"))),
            speed_max=pl.col("cruise_v").nan_max(),
            travel_ratio=_sum(dist.filter(kind == "travel")) / _nullif0(_sum(dist.filter(xy))),
            retractions=_count(kind == "retract"),
            features=pl.col("feature").drop_nulls().n_unique().cast(pl.Int64),
            objects=pl.col("object").drop_nulls().n_unique().cast(pl.Int64),
        )
    )
    vib = scan(root, "aligned", "layers").select(
        "run_id",
        "layer",
        vib_rms="accel_rms",
        vib_peak="accel_peak",
        vib_band_low="band_low",
        vib_band_mid="band_mid",
        vib_band_high="band_high",
    )
    # LATERAL (arg_min(type, onset_layer) over the run's faults with onset_layer <= layer): the minimum over
    # that subset is the run's minimum whenever the subset is not empty, so one aggregate per run does it.
    candidate = pl.col("type").is_not_null() & pl.col("onset_layer").is_not_null()
    first = (
        scan(root, "raw", "labels")
        .group_by("run_id")
        .agg(
            first_onset_layer=pl.col("onset_layer").filter(candidate).min(),
            first_type=_arg_min(pl.col("type"), pl.col("onset_layer")),
        )
    )
    fault_type = pl.when(pl.col("layer") >= pl.col("first_onset_layer")).then(pl.col("first_type"))
    sensed_cols = [c for c in sensed.collect_schema().names() if c not in ("run_id", "layer")]
    planned_cols = [c for c in planned.collect_schema().names() if c not in ("run_id", "layer", "planned_s")]
    return (
        planned.join(sensed, on=["run_id", "layer"], how="left")
        .join(vib, on=["run_id", "layer"], how="left")
        .join(first, on="run_id", how="left")
        .with_columns(fault_type=fault_type)
        .select(
            "run_id",
            "layer",
            "planned_s",
            (pl.col("reported_layer_s") / _nullif0(pl.col("planned_s"))).alias("layer_time_ratio"),
            *sensed_cols,
            *planned_cols,
            *vib.collect_schema().names()[2:],
            pl.col("fault_type").is_not_null().alias("fault_active"),
            "fault_type",
        )
        .sort("run_id", "layer")
    )


def run_features(root: Path, lf: pl.LazyFrame, band_c: float) -> pl.LazyFrame:
    """sql/run_features.sql, over ``lf`` (the layer features)."""
    hot = pl.col("hotend_target") > 0
    settle = (
        scan(root, "aligned", "uniform")
        .group_by("run_id")
        .agg(
            target_set=pl.col("t").filter(hot).min(),
            in_band=pl.col("t").filter(hot & ((pl.col("hotend_temp") - pl.col("hotend_target")).abs() <= band_c)).min(),
        )
    )
    onset_s = pl.col("onset_s")
    first_fault = (
        scan(root, "raw", "labels")
        .group_by("run_id")
        .agg(
            f_fault_type=_arg_min(pl.col("type"), onset_s),
            f_fault_onset_s=onset_s.min(),
            f_fault_onset_layer=_arg_min(pl.col("onset_layer"), onset_s),
            f_fault_severity=_arg_min(pl.col("severity"), onset_s),
            f_faults=pl.len().cast(pl.Int64),
        )
    )
    runs = scan(root, "raw", "runs").select("run_id", r_outcome="outcome")
    c = pl.col
    return (
        lf.join(settle, on="run_id", how="left")
        .join(runs, on="run_id", how="left")
        .join(first_fault, on="run_id", how="left")
        .group_by("run_id")
        .agg(
            layers=pl.len().cast(pl.Int64),
            planned_total_s=_sum(c("planned_s")),
            hotend_settle_s=_any_value(c("in_band") - c("target_set")),
            hotend_err_abs_max_run=c("hotend_err_abs_max").nan_max(),
            hotend_out_of_band_run_s=_sum(c("hotend_out_of_band_s")),
            hotend_duty_run_mean=c("hotend_duty_mean").mean(),
            load_run_mean=c("load_mean").mean(),
            load_spikes_run=_sum(c("load_spikes")).cast(HUGEINT),
            flow_ratio_run_min=c("flow_ratio").min(),
            filament_missing_run_s=_sum(c("filament_missing_s")),
            fan_rpm_per_cmd_min=c("fan_rpm_per_cmd").min(),
            vib_rms_run_max=c("vib_rms").nan_max(),
            hotend_err_trend=_regr_slope(c("hotend_err_mean"), c("layer")),
            hotend_duty_trend=_regr_slope(c("hotend_duty_mean"), c("layer")),
            load_trend=_regr_slope(c("load_mean"), c("layer")),
            flow_ratio_trend=_regr_slope(c("flow_ratio"), c("layer")),
            vib_trend=_regr_slope(c("vib_rms"), c("layer")),
            layer_time_ratio_max=c("layer_time_ratio").nan_max(),
            travel_ratio_run=c("travel_ratio").mean(),
            retractions_run=_sum(c("retractions")).cast(HUGEINT),
            objects_run=c("objects").max(),
            outcome=_any_value(c("r_outcome")),
            fault_type=_any_value(c("f_fault_type")),
            fault_onset_s=_any_value(c("f_fault_onset_s")),
            fault_onset_layer=_any_value(c("f_fault_onset_layer")),
            fault_severity=_any_value(c("f_fault_severity")),
            faults=_any_value(c("f_faults")).fill_null(0),
        )
        .sort("run_id")
    )


def polars_lazy(dataset: str | Path, params: dict[str, Any] | None = None) -> dict[str, pl.LazyFrame]:
    """The two feature sets as LazyFrames; nothing is read until they are collected."""
    root, values = Path(dataset), features.DEFAULTS | (params or {})
    lf = layer_features(root, float(values["band_c"]), float(values["spike_sigma"]))
    return {"layer_features": lf, "run_features": run_features(root, lf, float(values["band_c"]))}


def polars_features(
    dataset: str | Path, params: dict[str, Any] | None = None, *, engine: Engine = "auto"
) -> dict[str, pl.DataFrame]:
    """Both feature sets, collected together (the layer plan is shared, not run twice)."""
    plans = polars_lazy(dataset, params)
    return dict(zip(plans, pl.collect_all(plans.values(), engine=engine), strict=True))


# --- DuckDB ------------------------------------------------------------------------------------------


def duckdb_features(dataset: str | Path, params: dict[str, Any] | None = None) -> dict[str, pa.Table]:
    """threedpai.features.run's SQL and views on a connection with DuckDB's default threads."""
    root, values = Path(dataset), features.DEFAULTS | (params or {})
    con = duckdb.connect()
    for view, (phase, table) in features.INPUTS.items():
        con.register(view, features._table(root, phase, table))
    out = {}
    for name in features.FEATURE_SETS:
        text = features.sql(name)
        out[name] = con.sql(text, params={k: v for k, v in values.items() if f"${k}" in text}).to_arrow_table()
        con.register(name, out[name])
    return out


def duckdb_threads() -> int:
    return int(duckdb.connect().sql("SELECT current_setting('threads')").fetchall()[0][0])


# --- equality ----------------------------------------------------------------------------------------


def _magnitude(column: pl.Series | pa.ChunkedArray) -> float:
    x = np.asarray(column.to_numpy(), dtype=float)
    return float(np.abs(np.where(np.isfinite(x), x, 0.0)).max(initial=0.0))


def differences(
    expected: pa.Table, got: pl.DataFrame, rtol: float = RTOL, scales: dict[str, float] | None = None, limit: int = 5
) -> list[str]:
    """What differs between DuckDB's table and polars' frame; empty when they agree.

    Floats: within ``rtol`` of the value, or within SCALE_TOL of the column's scale (its largest finite
    magnitude, or ``scales[column]`` where larger): near-zero results of cancelling sums (a flat trend, a
    mean error of ~0) keep fewer significant digits than the values they come from.
    """
    exp = pl.from_arrow(expected)
    assert isinstance(exp, pl.DataFrame)
    if exp.columns != got.columns:
        return [f"columns differ: duckdb {exp.columns} vs polars {got.columns}"]
    out = [f"{c}: dtype {exp.schema[c]} vs {got.schema[c]}" for c in exp.columns if exp.schema[c] != got.schema[c]]
    if exp.height != got.height:
        return [*out, f"rows differ: duckdb {exp.height} vs polars {got.height}"]
    keys = [c for c in ("run_id", "layer") if c in exp.columns]
    for col in exp.columns:
        a, b = exp[col], got[col]
        if a.dtype == pl.Float64 and b.dtype == pl.Float64:
            x, y = a.to_numpy(), b.to_numpy()  # nulls become NaN here, so check them first
            bad = (a.is_null() != b.is_null()).to_numpy() | (a.is_nan() != b.is_nan()).fill_null(False).to_numpy()
            finite = ~np.isnan(x) & ~np.isnan(y)
            scale = max(_magnitude(a), (scales or {}).get(col, 0.0))
            bad |= finite & ~np.isclose(x, y, rtol=rtol, atol=SCALE_TOL * scale)
        else:
            bad = ~a.eq_missing(b.cast(a.dtype, strict=False)).to_numpy()
        for i in np.flatnonzero(bad)[:limit]:
            where = ", ".join(f"{k}={exp[k][int(i)]}" for k in keys)
            out.append(f"{col} [{where}]: duckdb {a[int(i)]!r} vs polars {b[int(i)]!r}")
        if bad.sum() > limit:
            out.append(f"{col}: {int(bad.sum()) - limit} more differences")
    return out


def check(
    dataset: str | Path, params: dict[str, Any] | None = None, *, engine: Engine = "auto"
) -> dict[str, pl.DataFrame]:
    """polars' feature sets, after asserting they equal threedpai.features.run's."""
    expected = features.run(dataset, params=params)
    got = polars_features(dataset, params, engine=engine)
    # A slope over layers is as precise as the values it is the slope of (x, the layer, steps by 1).
    scales = {t: _magnitude(expected["layer_features"][y]) for t, y in TRENDS.items()}
    problems = [
        f"{name}: {p}" for name in features.FEATURE_SETS for p in differences(expected[name], got[name], scales=scales)
    ]
    if problems:
        raise AssertionError(f"polars ({engine}) differs from threedpai.features.run:\n  " + "\n  ".join(problems))
    return got


# --- timing ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per engine; the best counts")
    args = parser.parse_args()
    root: Path = args.dataset

    got = check(root)
    check(root, engine="streaming")
    uniform_rows = scan(root, "aligned", "uniform").select(pl.len()).collect().item()
    n_layer, n_run = got["layer_features"].height, got["run_features"].height
    print(
        f"{root}: {uniform_rows:,} uniform rows -> {n_layer:,} layer_features rows, {n_run:,} run_features rows; "
        f"polars equals threedpai.features.run (rtol {RTOL:g}, NULL and NaN in the same cells)\n"
    )
    pl_threads = f"{pl.thread_pool_size()} (default)"
    peers: list[tuple[str, str, Callable[[], Any]]] = [
        ("threedpai.features.run (DuckDB)", "1", lambda: features.run(root)),
        ("DuckDB, same SQL and views", f"{duckdb_threads()} (default)", lambda: duckdb_features(root)),
        ("polars lazy scan, in-memory", pl_threads, lambda: polars_features(root)),
        ("polars lazy scan, streaming", pl_threads, lambda: polars_features(root, engine="streaming")),
    ]
    times = {name: best_of(fn, args.repeat)[0] for name, _, fn in peers}
    base = times[peers[0][0]]
    print(f"best of {args.repeat}; ratio = threedpai.features.run seconds / this engine's seconds (>1: faster)\n")
    print("| engine | threads | seconds | uniform rows/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, threads, _ in peers:
        s = times[name]
        print(f"| {name} | {threads} | {s:.3f} | {uniform_rows / s:,.0f} | {base / s:.2f} |")
    print()
    for duck, _, _ in peers[:2]:
        for name, _, _ in peers[2:]:
            print(f"{duck} / {name}: {times[duck] / times[name]:.2f}")


if __name__ == "__main__":
    main()
