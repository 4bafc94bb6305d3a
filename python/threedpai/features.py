"""Features per layer and per run, computed by DuckDB from the SQL files in ``sql/`` (package data).

>>> tables = run("dataset")                      # {"layer_features": pa.Table, "run_features": pa.Table}
>>> write("dataset", tables)                     # dataset/features/<name>/part-0.parquet

Each SQL file reads fixed view names (below), set up here over the dataset's Parquet tables, and
takes its thresholds as bound parameters; no SQL text is ever formatted. Every feature is defined
in one ``-- @feature name: definition`` comment; docs/features.md is generated from them.
"""

from __future__ import annotations

import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from threedpai.errors import ThreedpaiError

PathLike = str | os.PathLike[str]

# Feature sets in the order they run: a later one may read an earlier one's result by name.
FEATURE_SETS = ("layer_features", "run_features")
# The views the SQL reads: name -> (phase, table) in the dataset.
INPUTS = {
    "uniform": ("aligned", "uniform"),
    "layers": ("aligned", "layers"),
    "moves": ("raw", "moves"),
    "labels": ("raw", "labels"),
    "runs": ("raw", "runs"),
}
DEFAULTS: dict[str, Any] = {"band_c": 5.0, "spike_sigma": 4.0}
_PARTITIONS = pa.schema([("scenario", pa.string()), ("run_id", pa.string())])
_FEATURE = re.compile(r"^\s*-- @feature (\w+): (.+)$", re.MULTILINE)


class FeatureError(ThreedpaiError, ValueError):
    """A dataset that lacks what the features need."""


@cache
def sql(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    if name not in FEATURE_SETS:
        raise FeatureError(f"no feature set {name!r}; there are {', '.join(FEATURE_SETS)}")
    return resources.files("threedpai.sql").joinpath(f"{name}.sql").read_text()


def definitions(name: str) -> list[tuple[str, str]]:
    """(feature, one-line definition) pairs of a feature set, in file order."""
    return _FEATURE.findall(sql(name))


def _table(root: Path, phase: str, table: str) -> ds.Dataset:
    folder = root / phase / table
    if not any(folder.rglob("*.parquet")):
        hint = "threedpai align" if phase == "aligned" else "threedpai ingest"
        raise FeatureError(f"{root}: no {phase}/{table} tables; run `{hint}` first")
    # Partition values stay strings: a run named 0001 is not the number 1.
    parts = [f for f in _PARTITIONS if any(folder.glob(f"**/{f.name}=*"))]
    return ds.dataset(
        folder, format="parquet", partitioning=ds.partitioning(pa.schema(parts), flavor="hive") if parts else None
    )


def run(
    dataset: PathLike, *, params: dict[str, Any] | None = None, sets: tuple[str, ...] = FEATURE_SETS
) -> dict[str, pa.Table]:
    """Runs the feature sets over ``dataset``; returns one Arrow table per set."""
    import duckdb

    root = Path(dataset)
    values = DEFAULTS | (params or {})
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise FeatureError(f"unknown feature parameters: {', '.join(sorted(unknown))}")
    # One thread: parallel float sums add in a varying order, and a dataset version must not
    # change with it (measured: last-digit differences in means between runs).
    con = duckdb.connect(config={"threads": 1})
    for view, (phase, table) in INPUTS.items():
        con.register(view, _table(root, phase, table))
    out = {}
    for name in sets:
        text = sql(name)
        bound = {k: v for k, v in values.items() if f"${k}" in text}
        out[name] = con.sql(text, params=bound).to_arrow_table()
        con.register(name, out[name])
    return out


def write(dataset: PathLike, tables: dict[str, pa.Table]) -> list[Path]:
    """Writes each table to ``features/<name>/part-0.parquet`` through a temporary file."""
    written = []
    for name, table in tables.items():
        path = Path(dataset) / "features" / name / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
        written.append(path)
    return written


def docs() -> str:
    """docs/features.md, generated from the SQL comments."""
    lines = [
        "# Features",
        "",
        "Generated from the `-- @feature` comments in `sql/*.sql` by `threedpai features --docs`; do not edit by hand.",
        f"Parameters (bound, with defaults): {', '.join(f'`${k}` = {v}' for k, v in DEFAULTS.items())}.",
    ]
    for name in FEATURE_SETS:
        lines += ["", f"## {name}", "", "| feature | definition |", "|---|---|"]
        lines += [f"| `{f}` | {d.replace('|', '/')} |" for f, d in definitions(name)]
    return "\n".join(lines) + "\n"
