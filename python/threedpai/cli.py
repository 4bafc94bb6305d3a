"""The ``threedpai`` command line."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from typer.core import TyperGroup

app = typer.Typer(help="threedpai: the data and AI toolkit for 3D printing.", no_args_is_help=True)
gcode_app = typer.Typer(help="Parse G-code and binary G-code (.bgcode).", no_args_is_help=True)
app.add_typer(gcode_app, name="gcode")


class _PlanByDefault(TyperGroup):
    """`threedpai timeline FILE ...` means `threedpai timeline plan FILE ...`."""

    def resolve_command(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["plan", *args]
        return super().resolve_command(ctx, args)


timeline_app = typer.Typer(
    cls=_PlanByDefault,
    help="Motion timeline: when each move runs, planned as Klipper plans it. "
    "`threedpai timeline FILE -o OUT` is short for `threedpai timeline plan FILE -o OUT`.",
    no_args_is_help=True,
)
app.add_typer(timeline_app, name="timeline")
console = Console()

FORMATS = ("parquet", "csv", "jsonl")


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def atomic_write(path: Path, write) -> None:
    """Writes through a temporary file in the same folder, then renames: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain(table):
    """Dictionary and map columns as plain strings, for CSV and JSON Lines."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = []
    for col in table.columns:
        if pa.types.is_dictionary(col.type):
            col = pc.cast(col, pa.string())
        elif pa.types.is_map(col.type):
            col = pa.array([None if v is None else json.dumps(dict(v)) for v in col.to_pylist()], pa.string())
        cols.append(col)
    return pa.table(cols, names=table.column_names)


# Files above this size are parsed as a stream (bounded memory, progress bar).
STREAM_ABOVE = 256 << 20


def _write_table(table, output: Path, fmt: str) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if fmt == "parquet":
        atomic_write(output, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    elif fmt == "csv":
        atomic_write(output, lambda tmp: pcsv.write_csv(_plain(table), tmp))
    else:
        atomic_write(output, lambda tmp: _write_jsonl(_plain(table).to_batches(65536), tmp, "w"))


def _write_jsonl(batches, path: str, mode: str) -> None:
    with open(path, mode, encoding="utf-8") as f:
        for batch in batches:
            for row in batch.to_pylist():
                f.write(json.dumps(row, allow_nan=False, default=str) + "\n")


def _stream_to(file: Path, output: Path, fmt: str, strict: bool) -> dict[str, Any]:
    """Parses a large file batch by batch straight into the output, with a progress bar."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from threedpai import gcode

    reader = gcode.GcodeReader(file, strict=strict)
    size = file.stat().st_size

    def write(tmp: str) -> None:
        with _progress() as progress:
            task = progress.add_task(f"parsing {file.name}", total=size)
            if fmt == "parquet":
                with pq.ParquetWriter(tmp, gcode.SCHEMA, compression="zstd") as writer:
                    for batch in reader:
                        writer.write_batch(batch)
                        progress.update(task, completed=reader.bytes_read)
                    summary = gcode._public_summary(reader.summary or {})
                    writer.add_key_value_metadata({"threedpai.summary": json.dumps(summary)})
            elif fmt == "csv":
                writer = None
                for batch in reader:
                    plain = _plain(pa.Table.from_batches([batch]))
                    writer = writer or pcsv.CSVWriter(tmp, plain.schema)
                    writer.write_table(plain)
                    progress.update(task, completed=reader.bytes_read)
                if writer:
                    writer.close()
            else:
                Path(tmp).write_text("")
                for batch in reader:
                    _write_jsonl(_plain(pa.Table.from_batches([batch])).to_batches(), tmp, "a")
                    progress.update(task, completed=reader.bytes_read)

    atomic_write(output, write)
    summary = reader.summary or {}
    return {"summary": summary, "diagnostics": reader.diagnostics, "rows": summary.get("lines", 0)}


@gcode_app.command("parse")
def gcode_parse(
    file: Annotated[Path, typer.Argument(help="A .gcode or .bgcode file.", exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="OUT.parquet, OUT.csv or OUT.jsonl.")],
    strict: Annotated[bool, typer.Option(help="Stop at the first problem instead of reporting it.")] = False,
    threads: Annotated[int, typer.Option(help="Worker threads (0: every core).")] = 0,
) -> None:
    """Parse FILE into one row per line (see docs/gcode.md for the columns).

    Text files over 256 MB are parsed as a stream, in bounded memory, with a progress bar.
    """
    from threedpai import gcode
    from threedpai.errors import GcodeParseError

    fmt = output.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise typer.BadParameter(f"output must end in one of {', '.join('.' + f for f in FORMATS)}", param_hint="-o")
    start = time.perf_counter()
    try:
        if file.suffix.lower() != ".bgcode" and file.stat().st_size > STREAM_ABOVE:
            result = _stream_to(file, output, fmt, strict)
            summary, diagnostics, rows = result["summary"], result["diagnostics"], result["rows"]
        else:
            parsed = gcode.read(file, strict=strict, threads=threads)
            _write_table(parsed.table, output, fmt)
            summary, diagnostics, rows = parsed.summary, parsed.diagnostics, parsed.table.num_rows
    except GcodeParseError as e:
        console.print(escape(f"error {e}"), style="red")
        raise typer.Exit(1) from e
    seconds = time.perf_counter() - start
    mb = summary["bytes"] / 1e6
    console.print(
        escape(f"{file}: {rows:,} lines, {mb:.1f} MB parsed and written in {seconds * 1000:.0f} ms -> {output}")
    )
    _print_diagnostics(diagnostics, summary["diagnostics"])


def _print_diagnostics(diags: list[dict[str, Any]], total: int, shown: int = 10) -> None:
    if not total:
        return
    console.print(f"[yellow]{total} diagnostic(s)[/yellow]")
    for d in diags[:shown]:
        console.print(escape(f"  line {d['line']}: [{d['code']}] {d['message']}"))
    if total > shown:
        console.print(f"  ... {total - shown} more")


def _summary_table(path: Path, s: dict[str, Any]) -> Table:
    t = Table(title=str(path), show_header=False, title_justify="left")
    t.add_column("key", style="bold")
    t.add_column("value")
    producer = " ".join(p for p in (s["producer"], s["producer_version"]) if p) or "unknown"
    t.add_row("producer", producer)
    t.add_row("flavour", s["flavour"] or "unknown")
    t.add_row("container", s["container"])
    t.add_row("size", f"{s['bytes'] / 1e6:.2f} MB, {s['lines']:,} lines")
    stated = f" (file states {s['layer_count_stated']})" if s["layer_count_stated"] is not None else ""
    t.add_row("layers", f"{s['layer_count']} from {s['layer_source']}{stated}")
    top = ", ".join(f"{k}:{v}" for k, v in list(s["commands"].items())[:12])
    t.add_row("commands", top)
    t.add_row("features", escape(", ".join(s["features"])) or "-")
    t.add_row("objects", escape(", ".join(s["objects"])) or "-")
    for mode, seconds in s["estimates"]:
        t.add_row(f"estimate ({mode})", time.strftime("%H:%M:%S", time.gmtime(seconds)) + f"  ({seconds:.0f} s)")
    for unit, value in s["filament"]:
        t.add_row(escape(f"filament [{unit}]"), f"{value:g}")
    t.add_row("settings", f"{len(s['settings'])} entries")
    thumbs = ", ".join(f"{th['width']}x{th['height']} {th['format']}" for th in s["thumbnails"])
    t.add_row("thumbnails", thumbs or "-")
    if s["checksums"]:
        t.add_row("checksums", f"{s['checksums_ok']}/{s['checksums']} ok")
    t.add_row("diagnostics", str(s["diagnostics"]))
    return t


@gcode_app.command("summary")
def gcode_summary(
    files: Annotated[list[Path], typer.Argument(help="G-code files.", exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print what a file says about itself: producer, flavour, layers, features, objects, estimates."""
    from threedpai import gcode

    results = []
    with _progress() as progress:
        task = progress.add_task("summarizing", total=len(files), visible=len(files) > 1)
        for f in files:
            s = gcode._public_summary(gcode.summary(f))
            results.append((f, s))
            progress.advance(task)
    if as_json:
        out = {str(f): s for f, s in results}
        print(json.dumps(out if len(results) > 1 else results[0][1], indent=2))
        return
    for f, s in results:
        console.print(_summary_table(f, s))


@gcode_app.command("thumbnails")
def gcode_thumbnails(
    file: Annotated[Path, typer.Argument(help="A .gcode or .bgcode file.", exists=True, dir_okay=False)],
    out_dir: Annotated[Path, typer.Option("-o", "--output", help="Folder for the images.")] = Path("."),
) -> None:
    """Extract the embedded thumbnails as image files."""
    from threedpai import gcode

    s = gcode.summary(file)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, t in enumerate(s["thumbnails"]):
        path = out_dir / f"{file.stem}_{i}_{t['width']}x{t['height']}.{t['format']}"
        atomic_write(path, lambda tmp, data=t["data"]: Path(tmp).write_bytes(data))
        console.print(str(path))
    if not s["thumbnails"]:
        console.print("no thumbnails")


PrinterOption = Annotated[
    Path | None,
    typer.Option(
        "--printer", help="Klipper printer.cfg, or a .toml with the same sections (default: generic).", exists=True
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a printer option: [section.]key=value, e.g. max_accel=5000 (repeatable)."),
]


def _limits(settings: list[str] | None) -> dict[str, str]:
    out = {}
    for item in settings or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not [section.]key=value", param_hint="--set")
        out[key.strip()] = value.strip()
    return out


ModelOption = Annotated[
    str,
    typer.Option(
        help="klipper, marlin (classic jerk, limits from the file's M201/M203/M204/M205), or marlin-slicer "
        "(Marlin with PrusaSlicer's estimator conventions)."
    ),
]
HeaterOption = Annotated[
    float | None, typer.Option(help="Seconds per heater wait (default: none, as Klipper's batch mode).")
]


def _plan(
    file: Path,
    printer: Path | None,
    strict: bool,
    heater_wait: float | None,
    model: str = "klipper",
    settings: list[str] | None = None,
):
    from threedpai import timeline
    from threedpai.errors import GcodeParseError

    try:
        limits = _limits(settings)
        return timeline.read(file, printer, strict=strict, heater_wait_s=heater_wait, model=model, limits=limits)
    except GcodeParseError as e:  # a ValueError too: caught first
        console.print(escape(f"error {e}"), style="red")
        raise typer.Exit(1) from e
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--model") from e


@timeline_app.command("plan")
def timeline_plan(
    file: Annotated[Path, typer.Argument(help="A .gcode or .bgcode file.", exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="OUT.parquet or OUT.csv.")],
    printer: PrinterOption = None,
    strict: Annotated[bool, typer.Option(help="Stop where Klipper would stop with an error.")] = False,
    heater_wait: HeaterOption = None,
    model: ModelOption = "klipper",
    settings: SetOption = None,
) -> None:
    """Plan FILE: one row per move with its start time, phases, speeds and positions."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    fmt = output.suffix.lstrip(".").lower()
    if fmt not in ("parquet", "csv"):
        raise typer.BadParameter("output must end in .parquet or .csv", param_hint="-o")
    start = time.perf_counter()
    t = _plan(file, printer, strict, heater_wait, model, settings)
    if fmt == "parquet":
        meta = {"threedpai.timeline": json.dumps(_json_summary(t.summary))}
        table = t.table.replace_schema_metadata(meta)
        atomic_write(output, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    else:
        atomic_write(output, lambda tmp: pcsv.write_csv(_plain(t.table), tmp))
    seconds = time.perf_counter() - start
    total = t.summary["total_time_s"]
    console.print(
        escape(
            f"{file}: {t.table.num_rows:,} moves, print time {_hms(total)} ({total:.1f} s); "
            f"planned in {seconds * 1000:.0f} ms -> {output}"
        )
    )


def _hms(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(seconds)) if seconds < 86400 else f"{seconds / 3600:.1f} h"


def _json_summary(s: dict[str, Any]) -> dict[str, Any]:
    return {k: ({str(kk): vv for kk, vv in v.items()} if isinstance(v, dict) else v) for k, v in s.items()}


@timeline_app.command("summary")
def timeline_summary(
    file: Annotated[Path, typer.Argument(help="A .gcode or .bgcode file.", exists=True, dir_okay=False)],
    printer: PrinterOption = None,
    heater_wait: HeaterOption = None,
    model: ModelOption = "klipper",
    settings: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Print time, homing, arcs, unknown commands, and time per move kind and feature."""
    planned = _plan(file, printer, False, heater_wait, model, settings)
    s = planned.summary | {f"time_by_{key}": planned.totals(key) for key in ("kind", "layer", "feature", "object")}
    if as_json:
        print(json.dumps(_json_summary(s), indent=2))
        return
    t = Table(title=str(file), show_header=False, title_justify="left")
    t.add_column("key", style="bold")
    t.add_column("value")
    t.add_row("print time", f"{_hms(s['total_time_s'])} ({s['total_time_s']:.2f} s)")
    t.add_row("moves", f"{s['moves']:,} ({s['arc_segments']:,} arc segments)")
    t.add_row("homing", f"{s['g28_count']} G28, {s['g28_time_s']:.1f} s")
    for kind, sec in sorted(s["time_by_kind"].items(), key=lambda kv: -kv[1]):
        t.add_row(f"  {kind}", f"{sec:.1f} s")
    top = sorted(((k, v) for k, v in s["time_by_feature"].items() if k), key=lambda kv: -kv[1])[:8]
    for feature, sec in top:
        t.add_row(escape(f"  {feature}"), f"{sec:.1f} s")
    unknown = ", ".join(f"{k}:{v}" for k, v in list(s["unknown_commands"].items())[:8])
    t.add_row("unknown commands", escape(unknown) or "-")
    if s["first_error"]:
        t.add_row("Klipper would stop", escape(f"line {s['first_error'][0]}: {s['first_error'][1]}"))
    console.print(t)


@timeline_app.command("annotate")
def timeline_annotate(
    file: Annotated[Path, typer.Argument(help="A .gcode file.", exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="The annotated copy.")],
    printer: PrinterOption = None,
    heater_wait: HeaterOption = None,
    model: ModelOption = "klipper",
    settings: SetOption = None,
) -> None:
    """Write a copy of FILE with M73 P<percent> R<minutes left> progress lines from the timeline."""
    from threedpai import timeline

    t = _plan(file, printer, False, heater_wait, model, settings)
    data = timeline.annotate(file, t)
    atomic_write(output, lambda tmp: Path(tmp).write_bytes(data))
    console.print(
        escape(f"{output}: {data.count(b'M73 P'):,} progress lines, print time {_hms(t.summary['total_time_s'])}")
    )


@app.command("simulate")
def simulate_cmd(
    sources: Annotated[
        list[str] | None,
        typer.Argument(help="G-code files, folders or glob patterns (default: threedpai's procedural sample prints)."),
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Archive folder (run-NNNNN/ each).")] = Path("runs"),
    runs: Annotated[int, typer.Option("-n", "--runs", min=0, help="Number of runs.")] = 10,
    seed: Annotated[int, typer.Option(help="Same seed, same archive (whatever --workers).")] = 0,
    rate: Annotated[float, typer.Option(min=1.0, max=10_000.0, help="Sensor rows per second.")] = 50.0,
    faults: Annotated[str, typer.Option(help="Fault types to inject: all, none, or a comma list.")] = "all",
    clean_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of clean runs.")] = 0.2,
    frames: Annotated[bool, typer.Option(help="A top-view frame per layer (frames/).")] = True,
    audio: Annotated[bool, typer.Option(help="Stepper sound (audio.wav).")] = False,
    motion: Annotated[bool, typer.Option(help="Prunt-style motion.csv at 10 kHz (large).")] = False,
    glitches: Annotated[bool, typer.Option(help="Logger glitches in sensors.csv: duplicates, disorder, gap.")] = False,
    shuffle: Annotated[bool, typer.Option(help="Pick sources at random (seeded) instead of in turn.")] = False,
    resume: Annotated[bool, typer.Option(help="Keep runs already in OUTPUT (same seed) and make the rest.")] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (0: every core).")] = 0,
    printer: PrinterOption = None,
) -> None:
    """Generate labelled printer runs (sensors, frames, audio, faults) from G-code (docs/simulate.md)."""
    from threedpai import simulate as sim
    from threedpai.simulate.report import parse_faults, summary_table

    try:
        kinds = parse_faults(faults)
        options = sim.Options(rate_hz=rate, frames=frames, audio=audio, motion=motion, glitches=glitches,
                              printer=str(printer) if printer else None)  # fmt: skip
        started = time.perf_counter()
        with _progress() as progress:
            task = progress.add_task("simulating", total=runs)
            results = sim.simulate(
                sources, runs, output, seed=seed, faults=kinds, clean_share=clean_share, options=options,
                workers=workers or None, shuffle=shuffle, resume=resume, progress=lambda _: progress.advance(task),
            )  # fmt: skip
    except (ValueError, OSError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(1) from None
    console.print(summary_table(results, time.perf_counter() - started))


@app.command("ingest")
def ingest_runs(
    archive: Annotated[
        Path, typer.Argument(help="A folder of run folders or a .tar, .tar.gz, .zip archive.", exists=True)
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="The dataset folder (created, or resumed).")],
    workers: Annotated[int, typer.Option(help="Worker processes (0: every core).")] = 0,
    media: Annotated[bool, typer.Option(help="Copy frames and audio into the dataset.")] = True,
) -> None:
    """Check printer runs and write them as a Parquet dataset; broken runs go to quarantine/ (docs/ingest.md)."""
    from threedpai.ingest import ingest, report_table

    try:
        report = ingest(archive, output, workers=workers or None, keep_media=media, progress=True)
    except (ValueError, RuntimeError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(1) from None
    console.print(report_table(report))


@app.command("align")
def align_cmd(
    source: Annotated[
        Path, typer.Argument(help="An ingested dataset, or runs to ingest first (give -o).", exists=True)
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Dataset to ingest SOURCE into when it is not one.")
    ] = None,
    rate: Annotated[float, typer.Option(min=0.001, max=1000.0, help="Rows per second of the uniform table.")] = 10.0,
    run: Annotated[list[str] | None, typer.Option("--run", help="Only this run id (repeatable).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (0: every core).")] = 0,
) -> None:
    """Put each run's modalities on the timeline's clock: per-move, per-layer and uniform tables (docs/align.md)."""
    from threedpai.aligned import align_dataset, report_table
    from threedpai.engine import executor

    dataset = source
    if not (source / "raw" / "runs").is_dir():
        if output is None:
            raise typer.BadParameter("SOURCE is not an ingested dataset: give -o DATASET to ingest it into")
        from threedpai.ingest import ingest
        from threedpai.ingest import report_table as ingest_table

        console.print(ingest_table(ingest(source, output, workers=workers or None, progress=True)))
        dataset = output
    started = time.perf_counter()
    with executor("local", workers or None) as pool:
        report = align_dataset(dataset, rate_hz=rate, run_ids=run, executor=pool, progress=True)
    console.print(report_table(report, time.perf_counter() - started))
    if report.counts()["failed"]:
        raise typer.Exit(1)


@app.command("features")
def features_cmd(
    dataset: Annotated[
        Path | None, typer.Argument(help="A dataset with raw/ and aligned/ tables.", exists=True, file_okay=False)
    ] = None,
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="A parameter, e.g. --set band_c=3 (see docs/features.md).")
    ] = None,
    docs: Annotated[bool, typer.Option("--docs", help="Print docs/features.md (generated from the SQL).")] = False,
) -> None:
    """Compute per-layer and per-run features with DuckDB; write DATASET/features/<set>/part-0.parquet."""
    from threedpai import features

    if docs:
        print(features.docs(), end="")
        return
    if dataset is None:
        raise typer.BadParameter("give a DATASET (or --docs)")
    try:
        params = {k: float(v) for k, v in _limits(settings).items()}
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--set") from None
    try:
        with console.status("computing features"):
            tables = features.run(dataset, params=params)
    except features.FeatureError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2) from None
    for path, (name, table) in zip(features.write(dataset, tables), tables.items(), strict=True):
        console.print(f"{name}: {table.num_rows:,} rows x {table.num_columns} columns -> {escape(str(path))}")


pipeline_app = typer.Typer(
    help="The end-to-end ETL: simulate, ingest, align, features, dataset version, report.", no_args_is_help=True
)
app.add_typer(pipeline_app, name="pipeline")


@pipeline_app.command("run")
def pipeline_run(
    config: Annotated[Path, typer.Argument(help="A pipeline TOML (see examples/pipeline.toml).", exists=True)],
    engine: Annotated[
        str | None, typer.Option(help="Override [engine] kind: local (process pool) or dask (a cluster).")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Override [engine] workers.")] = None,
    quiet: Annotated[bool, typer.Option(help="No log lines, only the summary.")] = False,
) -> None:
    """Run every stage of CONFIG; resumable: a re-run finishes what an interrupted one left."""
    from threedpai import pipeline

    try:
        cfg = pipeline.load(config)
        if engine is not None or workers is not None:
            cfg = cfg.model_copy(update={"engine": pipeline.EngineConfig.model_validate(
                cfg.engine.model_dump() | {k: v for k, v in {"kind": engine, "workers": workers}.items() if v}
            )})  # fmt: skip
        echo = None if quiet else (lambda line: console.print(f"[dim]{escape(line)}[/dim]"))
        report = pipeline.run(cfg, progress=True, echo=echo)
    except (ValueError, OSError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(1) from None
    t = Table("stage", "seconds", "counts", title=f"pipeline -> {escape(str(cfg.dataset))}")
    for st in report.stages:
        t.add_row(st.name, f"{st.seconds:.1f}", escape(", ".join(f"{k}={v}" for k, v in st.counts.items())))
    console.print(t)
    for q in report.quarantined:
        console.print(f"[yellow]quarantined {escape(q['key'])}[/yellow]: {escape(str(q['reasons'])[:200])}")
    console.print(f"version {report.version}; report {escape(str(report.report_dir))}/report.md")


dataset_app = typer.Typer(help="Versioned datasets: immutable snapshots stored with DVC.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
DatasetArg = Annotated[Path, typer.Argument(help="A dataset directory.", exists=True, file_okay=False)]


def _version_or_exit(call):  # type: ignore[no-untyped-def]
    from threedpai.dataset import DatasetError

    try:
        return call()
    except DatasetError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2) from None


@dataset_app.command("commit")
def dataset_commit(
    dataset: DatasetArg, message: Annotated[str, typer.Option("-m", "--message", help="A note.")] = ""
) -> None:
    """Snapshot the dataset's phases (raw, aligned, features) as a new version."""
    from threedpai import dataset as ds

    v = _version_or_exit(lambda: ds.commit(dataset, message=message))
    console.print(f"version {v.id}: {len(v.files):,} files")


@dataset_app.command("list")
def dataset_list(dataset: DatasetArg) -> None:
    """The versions of a dataset, oldest first (* = checked out)."""
    from threedpai import dataset as ds

    head = ds.head(dataset)
    t = Table("", "version", "created", "parent", "files", "rows", "message")
    for v in ds.versions(dataset):
        m = v.manifest
        rows = sum(x["rows"] for x in m["tables"].values())
        t.add_row("*" if v.id == head else "", v.id, m["created"][:19], m["parent"] or "-", f"{len(v.files):,}",
                  f"{rows:,}", escape(m["message"]))  # fmt: skip
    console.print(t)


@dataset_app.command("show")
def dataset_show(
    dataset: DatasetArg, version: Annotated[str | None, typer.Argument(help="Default: checked out.")] = None
) -> None:
    """Tables, rows, sources and parameters of a version."""
    from threedpai import dataset as ds

    v = _version_or_exit(lambda: ds.show(dataset, version or ds.head(dataset) or ""))
    m = v.manifest
    console.print(f"version {v.id}  created {m['created'][:19]}  parent {m['parent'] or '-'}  "
                  f"threedpai {m['threedpai_version']}  {len(m['sources'])} source runs")  # fmt: skip
    t = Table("table", "files", "rows", "MB", "schemas")
    for name, x in m["tables"].items():
        t.add_row(name, f"{x['files']:,}", f"{x['rows']:,}", f"{x['bytes'] / 1e6:.1f}", str(len(x["schemas"])))
    console.print(t)
    if m["params"]:
        console.print_json(data=m["params"])


@dataset_app.command("diff")
def dataset_diff(
    dataset: DatasetArg,
    a: Annotated[str, typer.Argument(help="Older version.")],
    b: Annotated[str, typer.Argument(help="Newer version.")],
) -> None:
    """Files added, removed and changed between two versions, and row counts that moved."""
    from threedpai import dataset as ds

    d = _version_or_exit(lambda: ds.diff(dataset, a, b))
    for key, style in (("added", "green"), ("removed", "red"), ("changed", "yellow")):
        console.print(f"[{style}]{key}[/{style}]: {len(d[key])}")
        for path in d[key][:20]:
            console.print(f"  {escape(path)}")
    for table, (ra, rb) in d["rows"].items():
        console.print(f"rows {table}: {ra:,} -> {rb:,}")


@dataset_app.command("verify")
def dataset_verify(
    dataset: DatasetArg, version: Annotated[str | None, typer.Argument(help="Default: checked out.")] = None
) -> None:
    """Check every file of a version against its recorded hash; exit 1 on any problem."""
    from threedpai import dataset as ds

    problems = _version_or_exit(lambda: ds.verify(dataset, version))
    for p in problems:
        console.print(f"[red]{escape(p)}[/red]")
    if problems:
        raise typer.Exit(1)
    console.print("ok: every file matches its recorded hash")


@dataset_app.command("checkout")
def dataset_checkout(dataset: DatasetArg, version: Annotated[str, typer.Argument(help="The version id.")]) -> None:
    """Restore the dataset directory to a version, bit for bit."""
    from threedpai import dataset as ds

    v = _version_or_exit(lambda: ds.checkout(dataset, version))
    console.print(f"checked out {v.id}: {len(v.files):,} files")


if __name__ == "__main__":
    app()
