"""threedpai.align kernels side by side with pandas, polars, DuckDB and numpy (``python
benchmarks/align_throughput.py [--samples N] [--moves M]``).

A 1 kHz sensor stream with jitter (N samples, 5 channels) and M moves tiling its span. Every peer's
result is checked equal to threedpai's before it is timed; best of 5 runs for threedpai and numpy,
best of 2 (1 for the slowest) for the others. threedpai runs on one thread; polars and DuckDB use
all cores. Rows are sensor samples. GB/s counts the bytes the kernel must read and write once.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
from threedpai import align
from timing import best_of

CHANNELS = [f"c{i}" for i in range(5)]
AGG = ("count", "mean", "min", "max", "std")


def bandwidth() -> float:
    """GB/s of a plain read (numpy sum of 800 MB)."""
    a = np.ones(100_000_000)
    return a.nbytes / best_of(a.sum, 5)[0] / 1e9


def data(n: int, m: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.0005, 0.0015, n))
    starts = np.sort(rng.uniform(t[0], t[-1], m))
    ends = np.r_[starts[1:], t[-1] + 1.0]
    values = {c: rng.normal(size=n) for c in CHANNELS}
    return {"t": t, "starts": starts, "ends": ends, "values": values}


# --- as-of: the move each sample falls after -------------------------------------------------------


def asof_peers(d: dict[str, Any]) -> dict[str, Callable[[], np.ndarray]]:
    t, starts = d["t"], d["starts"]
    left_pd = pd.DataFrame({"t": t})
    right_pd = pd.DataFrame({"t": starts, "move": np.arange(len(starts))})
    left_pl = pl.DataFrame({"t": t}).set_sorted("t")
    right_pl = pl.DataFrame({"t": starts, "move": np.arange(len(starts))}).set_sorted("t")
    con = duckdb.connect()
    con.register("s", pa.table({"t": t}))
    con.register("m", pa.table({"t": starts, "move": np.arange(len(starts))}))
    sql = "SELECT m.move FROM s ASOF LEFT JOIN m ON s.t >= m.t ORDER BY s.t"
    return {
        "pandas": lambda: pd.merge_asof(left_pd, right_pd, on="t")["move"].fillna(-1).to_numpy(np.int64),
        "polars": lambda: left_pl.join_asof(right_pl, on="t")["move"].fill_null(-1).to_numpy(),
        "duckdb": lambda: con.sql(sql).fetchnumpy()["move"].filled(-1).astype(np.int64),
        "numpy": lambda: np.searchsorted(starts, t, side="right") - 1,
    }


# --- per-move statistics of 5 channels -------------------------------------------------------------


def aggregate_threedpai(d: dict[str, Any]) -> dict[str, np.ndarray]:
    return align.aggregate(d["t"], d["values"], d["starts"], d["ends"], stats=AGG)


def as_dense(m: int, moves: np.ndarray, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A peer's grouped result (moves with samples only) on every move, as threedpai gives it."""
    out = {}
    for key, col in columns.items():
        dense = np.zeros(m, dtype=np.int64) if key.endswith("_count") else np.full(m, np.nan)
        dense[moves] = col
        out[key] = dense
    return out


def aggregate_peers(d: dict[str, Any]) -> dict[str, Callable[[], dict[str, np.ndarray]]]:
    t, starts, ends, values = d["t"], d["starts"], d["ends"], d["values"]
    m = len(starts)
    sensor_pd = pd.DataFrame({"t": t, **values})
    moves_pd = pd.DataFrame({"start": starts, "end": ends, "move": np.arange(m)})
    sensor_pl = pl.DataFrame({"t": t, **values}).set_sorted("t")
    moves_pl = pl.DataFrame({"start": starts, "end": ends, "move": np.arange(m)}).set_sorted("start")
    con = duckdb.connect()
    con.register("s", pa.table({"t": t, **values}))
    con.register("m", pa.table({"start": starts, "end": ends, "move": np.arange(m)}))
    names = {"count": "count", "mean": "avg", "min": "min", "max": "max", "std": "stddev_samp"}
    select = ", ".join(f'{names[f]}(s.{c}) AS "{c}_{f}"' for c in CHANNELS for f in AGG)
    sql = f"SELECT m.move, {select} FROM s ASOF JOIN m ON s.t >= m.start WHERE s.t < m.end GROUP BY m.move"

    def pandas_agg() -> dict[str, np.ndarray]:
        j = pd.merge_asof(sensor_pd, moves_pd, left_on="t", right_on="start")
        g = j[j["t"] < j["end"]].groupby("move")[CHANNELS].agg(list(AGG))
        return as_dense(
            m, g.index.to_numpy().astype(np.int64), {f"{c}_{f}": g[(c, f)].to_numpy() for c in CHANNELS for f in AGG}
        )

    def polars_agg() -> dict[str, np.ndarray]:
        exprs = [getattr(pl.col(c), f)().alias(f"{c}_{f}") for c in CHANNELS for f in AGG]
        g = (
            sensor_pl.lazy()
            .join_asof(moves_pl.lazy(), left_on="t", right_on="start")
            .filter(pl.col("t") < pl.col("end"))
            .group_by("move")
            .agg(exprs)
            .collect()
        )
        return as_dense(m, g["move"].to_numpy(), {k: g[k].to_numpy() for k in g.columns if k != "move"})

    def duckdb_agg() -> dict[str, np.ndarray]:
        g = con.sql(sql).fetchnumpy()
        cols = {k: np.ma.filled(v, np.nan if v.dtype.kind == "f" else 0) for k, v in g.items() if k != "move"}
        return as_dense(m, g["move"], cols)

    def numpy_agg() -> dict[str, np.ndarray]:
        lo, hi = np.searchsorted(t, starts), np.searchsorted(t, ends)
        nonempty = hi > lo
        at, count = lo[nonempty], (hi - lo)[nonempty]  # the moves tile the span: segments end at the next
        out = {}
        for c in CHANNELS:
            x = values[c]
            s = np.add.reduceat(x, at)
            # two passes (squares about each move's mean): sum(x²) - sum(x)²/n cancels for moves
            # whose samples are nearly equal and then misses pandas' and threedpai's std by > 1e-9
            dev = x[at[0] :] - np.repeat(s / count, count)
            ss = np.add.reduceat(dev * dev, at - at[0])
            with np.errstate(invalid="ignore", divide="ignore"):
                std = np.sqrt(ss / (count - 1))
            std[count < 2] = np.nan
            cols = {"count": count, "mean": s / count, "min": np.minimum.reduceat(x, at)}
            cols |= {"max": np.maximum.reduceat(x, at), "std": std}
            out |= {f"{c}_{f}": v for f, v in cols.items()}
        return as_dense(m, np.flatnonzero(nonempty), out)

    return {"pandas": pandas_agg, "polars": polars_agg, "duckdb": duckdb_agg, "numpy": numpy_agg}


# --- 5 channels resampled to 100 Hz ------------------------------------------------------------------


def resample_threedpai(d: dict[str, Any]) -> np.ndarray:
    grid, v = align.resample(d["t"], d["values"], 100.0)
    return np.vstack([grid, *v.values()])


def resample_peers(d: dict[str, Any]) -> dict[str, Callable[[], np.ndarray]]:
    t, values = d["t"], d["values"]
    grid = align.resample(t[:2], t[:2], 100.0, start=None, end=float(t[-1]))[0]
    grid = grid[grid >= t[0]]
    sensor_pd = pd.DataFrame(values, index=pd.Index(t, name="t"))
    stacked_pl = pl.DataFrame({"t": t, **values, "grid": np.zeros(len(t), dtype=bool)})
    grid_pl = pl.DataFrame({"t": grid, "grid": np.ones(len(grid), dtype=bool)})
    con = duckdb.connect()
    con.register("s", pa.table({"t": t, **values}))
    con.register("g", pa.table({"t": grid}))
    lerp = ", ".join(
        f"CASE WHEN f.t = b.t THEN b.{c} ELSE b.{c} + (g.t - b.t) / (f.t - b.t) * (f.{c} - b.{c}) END" for c in CHANNELS
    )
    sql = f"SELECT g.t, {lerp} FROM g ASOF JOIN s b ON g.t >= b.t ASOF JOIN s f ON g.t <= f.t ORDER BY g.t"

    def pandas_resample() -> np.ndarray:
        both = sensor_pd.reindex(sensor_pd.index.union(pd.Index(grid))).interpolate(method="index")
        return np.vstack([grid, both.reindex(grid).to_numpy().T])

    def polars_resample() -> np.ndarray:
        out = (
            pl.concat([stacked_pl, grid_pl], how="diagonal")
            .sort("t", maintain_order=True)
            .with_columns(pl.col(c).interpolate_by("t") for c in CHANNELS)
            .filter(pl.col("grid"))
        )
        return np.vstack([out["t"].to_numpy(), *(out[c].to_numpy() for c in CHANNELS)])

    def duckdb_resample() -> np.ndarray:
        return np.vstack(list(con.sql(sql).fetchnumpy().values()))

    def numpy_resample() -> np.ndarray:
        return np.vstack([grid, *(np.interp(grid, t, values[c], left=np.nan, right=np.nan) for c in CHANNELS)])

    return {"pandas": pandas_resample, "polars": polars_resample, "duckdb": duckdb_resample, "numpy": numpy_resample}


# --- sort and de-duplicate a nearly sorted stream ------------------------------------------------------


def messy(d: dict[str, Any], seed: int = 1) -> dict[str, Any]:
    """The stream with 1 % of its samples in swapped 50-sample blocks and 0.5 % repeated times."""
    rng = np.random.default_rng(seed)
    t = d["t"].copy()
    n = len(t)
    for a in rng.choice(n // 100 - 1, n // 10_000, replace=False) * 100:
        t[a : a + 100] = np.r_[t[a + 50 : a + 100], t[a : a + 50]]
    dup = rng.choice(np.arange(1, n), n // 200, replace=False)
    t[dup] = t[dup - 1]
    return {"t": t, "values": d["values"]}


def sort_threedpai(d: dict[str, Any]) -> np.ndarray:
    t, v, _ = align.sort_dedup(d["t"], d["values"])
    return np.vstack([t, *v.values()])


def sort_peers(d: dict[str, Any]) -> dict[str, Callable[[], np.ndarray]]:
    t, values = d["t"], d["values"]
    df_pd = pd.DataFrame({"t": t, **values})
    df_pl = pl.DataFrame({"t": t, **values})
    con = duckdb.connect()
    con.register("s", pa.table({"t": t, **values, "i": np.arange(len(t))}))
    cols = ", ".join(["t", *CHANNELS])
    sql = f"SELECT {cols} FROM s QUALIFY row_number() OVER (PARTITION BY t ORDER BY i DESC) = 1 ORDER BY t"

    def numpy_sort() -> np.ndarray:
        order = np.argsort(t, kind="stable")
        ts = t[order]
        idx = order[np.r_[ts[1:] != ts[:-1], True]]
        return np.vstack([t[idx], *(values[c][idx] for c in CHANNELS)])

    return {
        "pandas": lambda: df_pd.sort_values("t", kind="stable").drop_duplicates("t", keep="last").to_numpy().T,
        "polars": lambda: (
            df_pl.sort("t", maintain_order=True).unique("t", keep="last", maintain_order=True).to_numpy().T
        ),
        "duckdb": lambda: np.vstack(list(con.sql(sql).fetchnumpy().values())),
        "numpy": numpy_sort,
    }


# --- the table ------------------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000_000)
    parser.add_argument("--moves", type=int, default=5_000_000)
    parser.add_argument("--skip", default="", help="peers to leave out, comma separated (e.g. pandas)")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    n, m = args.samples, args.moves
    d = data(n, m)
    bw = bandwidth()
    print(f"{n:,} samples (1 kHz, 5 channels), {m:,} moves; read bandwidth {bw:.1f} GB/s\n")
    f8 = 8
    kernels = [
        ("as-of (backward)", lambda: align.asof(d["t"], d["starts"]), asof_peers, d, f8 * (2 * n + m)),
        ("aggregate 5 ch x 5 stats", lambda: aggregate_threedpai(d), aggregate_peers, d, f8 * (6 * n + 27 * m)),
        ("resample 5 ch to 100 Hz", lambda: resample_threedpai(d), resample_peers, d, f8 * 6 * n),
        ("sort + dedup (1 % out of order)", None, sort_peers, messy(d), f8 * 12 * n),
    ]
    header = "| kernel | rows | threedpai M rows/s | pandas | polars | duckdb | numpy | × best peer | GB/s | % bw |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, ours, peers_of, inputs, nbytes in kernels:
        if ours is None:
            ours = lambda inputs=inputs: sort_threedpai(inputs)  # noqa: E731
        expected = ours()
        rates = {}
        for peer, fn in peers_of(inputs).items():
            if peer in skip:
                continue
            if not same(expected, fn()):
                raise SystemExit(f"{name}: {peer} disagrees with threedpai")
            rates[peer] = n / best_of(fn, 1 if peer == "pandas" else 2 if peer != "numpy" else 5)[0] / 1e6
        secs = best_of(ours, 5)[0]
        rate = n / secs / 1e6
        cells = " | ".join(f"{rates[p]:.1f}" if p in rates else "—" for p in ("pandas", "polars", "duckdb", "numpy"))
        ratio = rate / max(rates.values()) if rates else np.nan
        gbs = nbytes / secs / 1e9
        print(f"| {name} | {n:,} | **{rate:.0f}** | {cells} | {ratio:.1f} | {gbs:.1f} | {100 * gbs / bw:.0f} |")


if __name__ == "__main__":
    main()
