"""The end-of-run report of the pipeline: ``report.md``, ``report.json`` and PNG plots in one folder.

>>> write_report(pipeline_report)      # DATASET/_pipeline/report/ (or the config's report folder)

The folder is built beside its final place and swapped in, so a crash leaves the old report or the
new one, never half of one. Every dataset table is optional: what is missing is said in report.md.
Plots use matplotlib's ``Figure`` directly (no pyplot), so they need no display and are thread-safe.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from threedpai.ingest.write import run_folders

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from threedpai.pipeline import PipelineReport, StageResult

MAX_RUNS = 4  # runs plotted
INGEST_STATUSES = ("ok", "repaired", "skipped", "quarantined")
# Run features averaged per fault type, when the features table has them.
FEATURE_MEANS = ("hotend_err_abs_max_run", "load_run_mean", "vib_rms_run_max")
_HOTEND = (("hotend_temp", "hotend", "-"), ("hotend_target", "hotend target", "--"))  # column, label, style
_BED = (("bed_temp", "bed", "-"), ("bed_target", "bed target", "--"))
Series = tuple[tuple[str, str, str], ...]
_ACCEL = ("accel_x", "accel_y", "accel_z")
_MAX_POINTS = 20_000  # per line: more only slows rendering at this figure size
ONSET_GID = "fault-onset"  # the gid of the onset lines, for whoever inspects a figure


@dataclass(frozen=True)
class RunPick:
    """A run to plot: its first labelled fault (None for a clean run) and that fault's onset (s)."""

    run_id: str
    fault_type: str | None = None
    onset_s: float | None = None


def report_dir(report: PipelineReport) -> Path:
    cfg = report.config
    return cfg.report if cfg.report is not None else cfg.dataset / "_pipeline" / "report"


def write_report(report: PipelineReport) -> Path:
    """Writes the report folder (replacing any old one) and returns it."""
    target = report_dir(report)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would make the report private
        facts = collect(report)
        facts["plots"] = _plots(report, tmp)
        text = json.dumps(_jsonable(facts), indent=2, allow_nan=False)
        (tmp / "report.json").write_text(text + "\n", encoding="utf-8")
        (tmp / "report.md").write_text(markdown(facts), encoding="utf-8")
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _swap(new: Path, target: Path) -> None:
    """Puts ``new`` at ``target``; a folder cannot be renamed over a non-empty one, so the old moves aside first."""
    if not target.exists():
        os.replace(new, target)
        return
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --- facts ---------------------------------------------------------------------------------------


def collect(report: PipelineReport) -> dict[str, Any]:
    """The report's facts (all but the plots), as report.json holds them."""
    total = report.seconds
    return {
        "dataset": str(report.config.dataset),
        "version": report.version,
        "seconds": total,
        "stages": [_stage_facts(s, total) for s in report.stages],
        "runs": run_counts(report.stages),
        "quarantined": [_quarantined(q) for q in report.quarantined],
        "features": feature_facts(report.config.dataset),
    }


def _stage_facts(stage: StageResult, total: float) -> dict[str, Any]:
    share = stage.seconds / total if total > 0 else None
    return {"name": stage.name, "seconds": stage.seconds, "share": share, "counts": dict(stage.counts)}


def run_counts(stages: list[StageResult]) -> dict[str, int] | None:
    """Runs per ingest status (zeros included); None when no ingest stage ran."""
    ingest = next((s for s in stages if s.name == "ingest"), None)
    if ingest is None:
        return None
    counts = {k: int(ingest.counts.get(k, 0)) for k in INGEST_STATUSES}
    return counts | {"total": sum(counts.values())}


def _quarantined(entry: dict[str, Any]) -> dict[str, Any]:
    reasons = entry.get("reasons") or []
    return {"key": entry.get("key"), "reasons": [reasons] if isinstance(reasons, str) else list(reasons)}


def feature_facts(dataset: Path) -> dict[str, Any]:
    """Rows of the feature tables (None where absent) and, per fault type, runs and feature means."""
    folder = Path(dataset) / "features"
    runs = _read_features(folder / "run_features")
    return {
        "layer_features": _row_count(folder / "layer_features"),
        "run_features": None if runs is None else runs.num_rows,
        "by_fault": [] if runs is None else by_fault(runs),
    }


def _row_count(folder: Path) -> int | None:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return None
    try:
        return sum(pq.read_metadata(f).num_rows for f in files)
    except (OSError, pa.ArrowException):
        return None


def _read_features(folder: Path) -> pa.Table | None:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return None
    try:
        names = set(pq.read_schema(files[0]).names)
        columns = [c for c in ("fault_type", *FEATURE_MEANS) if c in names]
        return pa.concat_tables(pq.read_table(f, columns=columns) for f in files)
    except (OSError, pa.ArrowException):
        return None


def by_fault(run_features: pa.Table) -> list[dict[str, Any]]:
    """Per fault type ("clean" for none), clean first: runs and the mean of each of FEATURE_MEANS it has."""
    data = run_features.to_pydict()
    types = data.get("fault_type", [None] * run_features.num_rows)
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(types):
        groups.setdefault(t or "clean", []).append(i)
    means = [c for c in FEATURE_MEANS if c in data]
    order = sorted(groups, key=lambda t: (t != "clean", t))
    return [
        {"fault_type": t, "runs": len(groups[t]), "means": {c: _mean(data[c][i] for i in groups[t]) for c in means}}
        for t in order
    ]


def _mean(values: Any) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def _jsonable(value: Any) -> Any:
    """Stage counts may hold paths, numpy scalars or NaN: JSON gets strings, numbers and nulls."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# --- dataset tables ------------------------------------------------------------------------------


def _partitions(dataset: Path, phase: str, table: str) -> dict[str, Path]:
    """run_id -> its partition folder (below any other partition key, e.g. scenario=…)."""
    folder = dataset / phase / table
    if not folder.is_dir():
        return {}
    return {p.name.removeprefix("run_id="): p for p in sorted(folder.rglob("run_id=*")) if p.is_dir()}


def _read_run(dataset: Path, phase: str, table: str, run_id: str) -> pa.Table | None:
    """One run's table, None when absent or unreadable (a report never fails on one bad file)."""
    files = [f for part in run_folders(dataset, phase, table, run_id) for f in sorted(part.glob("*.parquet"))]
    if not files:
        return None
    try:
        return pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")
    except (OSError, pa.ArrowException):
        return None


def _numeric(table: pa.Table | None) -> dict[str, np.ndarray]:
    """The numeric columns as float arrays, nulls as NaN."""
    if table is None:
        return {}
    out = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type):
            out[name] = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    return out


def first_fault(labels: pa.Table | None) -> tuple[str | None, float | None]:
    """The earliest labelled fault's type and onset (s); (None, None) for a clean run."""
    if labels is None or labels.num_rows == 0:
        return None, None
    rows = labels.to_pylist()
    timed = [r for r in rows if isinstance(r.get("onset_s"), int | float) and math.isfinite(r["onset_s"])]
    row = min(timed, key=lambda r: r["onset_s"]) if timed else rows[0]
    kind = row.get("type") if row.get("type") is not None else row.get("fault")
    return (None if kind is None else str(kind)), (float(row["onset_s"]) if timed else None)


def pick_runs(dataset: Path, limit: int = MAX_RUNS) -> list[RunPick]:
    """Runs worth plotting, among those with aligned tables: faulty ones of different fault types first,
    then one clean run, then more of either, ``limit`` at most."""
    dataset = Path(dataset)
    aligned = sorted({*_partitions(dataset, "aligned", "uniform"), *_partitions(dataset, "aligned", "layers")})
    picks = [RunPick(r, *first_fault(_read_run(dataset, "raw", "labels", r))) for r in aligned]
    return choose(picks, limit)


def choose(picks: list[RunPick], limit: int = MAX_RUNS) -> list[RunPick]:
    faulty = [p for p in picks if p.fault_type is not None]
    clean = [p for p in picks if p.fault_type is None]
    seen: set[str | None] = set()
    distinct: list[RunPick] = []
    repeats: list[RunPick] = []
    for p in faulty:
        (repeats if p.fault_type in seen else distinct).append(p)
        seen.add(p.fault_type)
    keep = limit - 1 if clean else limit  # a slot for the clean run to compare against
    ordered = distinct[:keep] + clean[:1] + distinct[keep:] + repeats + clean[1:]
    return ordered[: max(limit, 0)]


# --- plots ---------------------------------------------------------------------------------------


def _plots(report: PipelineReport, folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"stages": None, "runs": []}
    fig = stage_figure(report.stages)
    if fig is not None:
        fig.savefig(folder / "stages.png", dpi=100)
        out["stages"] = "stages.png"
    for i, pick in enumerate(pick_runs(report.config.dataset), 1):
        fig = run_figure(report.config.dataset, pick)
        name = None
        if fig is not None:
            name = f"run-{i}-{re.sub(r'[^A-Za-z0-9_.-]', '_', pick.run_id)}.png"
            fig.savefig(folder / name, dpi=100)
        out["runs"].append(asdict(pick) | {"file": name})
    return out


def stage_figure(stages: list[StageResult]) -> Figure | None:
    """Stage timings as horizontal bars; None without stages."""
    from matplotlib.figure import Figure

    if not stages:
        return None
    fig = Figure(figsize=(8, 1.5 + 0.4 * len(stages)), layout="constrained")
    ax = fig.subplots()
    rows = range(len(stages))  # positions, not names: a stage may run twice
    bars = ax.barh(rows, [s.seconds for s in stages], color="C0")
    ax.set_yticks(rows, labels=[s.name for s in stages])
    ax.invert_yaxis()  # first stage on top
    ax.bar_label(bars, labels=[f"{s.seconds:.2f} s" for s in stages], padding=3, fontsize=8)
    ax.set_xlabel("seconds")
    ax.set_title("stage timings")
    ax.margins(x=0.15)  # room for the labels
    return fig


def run_figure(dataset: Path, pick: RunPick) -> Figure | None:
    """Temperatures over vibration for one run, with layer changes and the fault onset; None without
    aligned tables."""
    from matplotlib.figure import Figure

    dataset = Path(dataset)
    uniform = _numeric(_read_run(dataset, "aligned", "uniform", pick.run_id))
    layers = _numeric(_read_run(dataset, "aligned", "layers", pick.run_id))
    if not uniform and not layers:
        return None
    fig = Figure(figsize=(10, 6), layout="constrained")
    temp_ax, vib_ax = fig.subplots(2, 1, sharex=True)
    _plot_temps(temp_ax, uniform)
    _plot_vibration(vib_ax, uniform, layers)
    for ax in (temp_ax, vib_ax):
        _mark_layers(ax, layer_starts(uniform, layers))
        if pick.onset_s is not None:
            _mark_onset(ax, pick, label=ax is temp_ax)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8)
    vib_ax.set_xlabel("timeline time (s)")
    fig.suptitle(f"run {pick.run_id}: {pick.fault_type or 'clean'}")
    return fig


def _thin(*arrays: np.ndarray) -> list[np.ndarray]:
    step = max(1, len(arrays[0]) // _MAX_POINTS)
    return [a[::step] for a in arrays]


def _plot_temps(ax: Axes, uniform: dict[str, np.ndarray]) -> None:
    """Hotend on the left axis, bed on a right one: on one scale the bed squashes the hotend's swings."""
    ax.set_ylabel("hotend (°C)")
    hotend = _plot_lines(ax, uniform, _HOTEND, "C3")
    bed = [c for c in _BED if c[0] in uniform]
    if bed and "t" in uniform:
        twin = ax.twinx()
        twin.set_ylabel("bed (°C)")
        _plot_lines(twin, uniform, _BED, "C0")
        twin.legend(loc="upper right", fontsize=8)
    elif not hotend:
        ax.text(0.5, 0.5, "no temperature channels", transform=ax.transAxes, ha="center", color="grey")


def _plot_lines(ax: Axes, uniform: dict[str, np.ndarray], series: Series, colour: str) -> bool:
    drawn = [s for s in series if s[0] in uniform and "t" in uniform]
    for col, label, style in drawn:
        t, y = _thin(uniform["t"], uniform[col])
        ax.plot(t, y, color=colour, linestyle=style, linewidth=1, label=label)
    return bool(drawn)


def _plot_vibration(ax: Axes, uniform: dict[str, np.ndarray], layers: dict[str, np.ndarray]) -> None:
    ax.set_ylabel("vibration (mm/s²)")
    drawn = False
    if "t" in uniform and all(c in uniform for c in _ACCEL):
        # Each axis' median is the static part (gravity on z): what is left is the vibration.
        dev = np.stack([uniform[c] - np.nanmedian(uniform[c]) for c in _ACCEL])
        t, mag = _thin(uniform["t"], np.sqrt((dev**2).sum(axis=0)))
        ax.plot(t, mag, color="grey", linewidth=0.5, alpha=0.6, label="|accel| per sample")
        drawn = True
    if all(c in layers for c in ("t_start", "t_end", "accel_rms")):
        rms, t0, t1 = layers["accel_rms"], layers["t_start"], layers["t_end"]
        ax.hlines(rms, t0, t1, colors="C1", linewidth=2, label="RMS per layer")
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no vibration channels", transform=ax.transAxes, ha="center", color="grey")


def layer_starts(uniform: dict[str, np.ndarray], layers: dict[str, np.ndarray]) -> np.ndarray:
    """Times (s) where a layer begins: the layers table's t_start, else where the uniform layer changes."""
    if "t_start" in layers:
        t = layers["t_start"]
        return t[np.isfinite(t)]
    if "t" in uniform and "layer" in uniform:
        ok = np.isfinite(uniform["layer"])  # null before the first layer
        t, layer = uniform["t"][ok], uniform["layer"][ok]
        return t[np.r_[True, np.diff(layer) != 0]] if len(t) else t
    return np.empty(0)


def _mark_layers(ax: Axes, starts: np.ndarray) -> None:
    if len(starts):
        ax.vlines(starts, 0, 1, transform=ax.get_xaxis_transform(), colors="grey", linewidth=0.5, alpha=0.3)


def _mark_onset(ax: Axes, pick: RunPick, *, label: bool) -> None:
    assert pick.onset_s is not None
    name = f"onset: {pick.fault_type}"
    ax.axvline(pick.onset_s, color="red", linestyle="--", linewidth=1.5, gid=ONSET_GID, label=name)
    if label:
        ax.annotate(
            f"{pick.fault_type} @ {pick.onset_s:.1f} s", (pick.onset_s, 1), xycoords=("data", "axes fraction"),
            xytext=(4, -14), textcoords="offset points", color="red", fontsize=9,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )  # fmt: skip


# --- markdown ------------------------------------------------------------------------------------


def markdown(facts: dict[str, Any]) -> str:
    """report.md from the facts (with their plots)."""
    parts = [_md_head(facts), _md_stages(facts), _md_runs(facts), _md_quarantined(facts), _md_features(facts)]
    parts.append(_md_plots(facts.get("plots") or {}))
    return "\n\n".join(parts) + "\n"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _md_head(facts: dict[str, Any]) -> str:
    return "\n".join([
        "# threedpai pipeline report",
        "",
        f"- dataset: `{facts['dataset']}`",
        f"- version: `{facts['version']}`" if facts["version"] else "- version: none (no version was committed)",
        f"- total: {facts['seconds']:.2f} s",
    ])  # fmt: skip


def _md_stages(facts: dict[str, Any]) -> str:
    if not facts["stages"]:
        return "## Stages\n\nNo stage ran."
    lines = ["## Stages", "", "| stage | seconds | share | counts |", "|---|---:|---:|---|"]
    for s in facts["stages"]:
        counts = ", ".join(f"{k}={v}" for k, v in s["counts"].items())
        share = "–" if s["share"] is None else f"{100 * s['share']:.1f} %"
        lines.append(f"| {_cell(s['name'])} | {s['seconds']:.2f} | {share} | {_cell(counts)} |")
    return "\n".join(lines)


def _md_runs(facts: dict[str, Any]) -> str:
    runs = facts["runs"]
    if runs is None:
        return "## Runs\n\nNo ingest stage ran, so there are no run counts."
    lines = ["## Runs", "", "| status | runs |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in runs.items()]
    return "\n".join(lines)


def format_reason(reason: Any) -> str:
    """One line per reason: `code` file:line:column — message (other keys)."""
    if not isinstance(reason, dict):
        return str(reason)
    where = ":".join(str(reason[k]) for k in ("file", "line", "column") if reason.get(k) is not None)
    shown = {"code", "file", "line", "column", "message"}
    rest = ", ".join(f"{k}={v}" for k, v in reason.items() if k not in shown and v is not None)
    parts = [
        f"`{reason['code']}`" if reason.get("code") else "",
        where,
        f"— {reason['message']}" if reason.get("message") else "",
        f"({rest})" if rest else "",
    ]
    return " ".join(p for p in parts if p)


def _md_quarantined(facts: dict[str, Any]) -> str:
    if not facts["quarantined"]:
        return "## Quarantined runs\n\nNone."
    lines = ["## Quarantined runs", ""]
    for q in facts["quarantined"]:
        lines.append(f"- `{q['key']}`")
        lines += [f"  - {format_reason(r)}" for r in q["reasons"]] or ["  - (no reasons recorded)"]
    return "\n".join(lines)


def _md_features(facts: dict[str, Any]) -> str:
    f = facts["features"]
    if f["layer_features"] is None and f["run_features"] is None:
        return "## Features\n\nNo feature tables (features/layer_features, features/run_features)."
    rows = {k: "absent" if f[k] is None else f"{f[k]} rows" for k in ("layer_features", "run_features")}
    lines = ["## Features", "", *(f"- `{k}`: {v}" for k, v in rows.items())]
    if f["by_fault"]:
        means = list(f["by_fault"][0]["means"])
        lines += ["", "| fault type | runs | " + " | ".join(f"mean {m}" for m in means) + " |"]
        lines.append("|---|---:|" + "---:|" * len(means))
        for g in f["by_fault"]:
            cells = " | ".join(_num(g["means"][m]) for m in means)
            lines.append(f"| {_cell(g['fault_type'])} | {g['runs']} | {cells} |")
    return "\n".join(lines)


def _md_plots(plots: dict[str, Any]) -> str:
    lines = ["## Plots", ""]
    if plots.get("stages"):
        lines += ["![stage timings](stages.png)", ""]
    if not plots.get("runs"):
        lines.append("No runs to plot: the dataset has no aligned tables (aligned/uniform, aligned/layers).")
    for r in plots.get("runs", []):
        onset = "" if r["onset_s"] is None else f", onset {r['onset_s']:.1f} s"
        lines.append(f"### run `{r['run_id']}`: {r['fault_type'] or 'clean'}{onset}")
        image = f"![run {r['run_id']}]({r['file']})" if r["file"] else "Its aligned tables could not be read."
        lines += ["", image, ""]
    return "\n".join(lines).rstrip()
