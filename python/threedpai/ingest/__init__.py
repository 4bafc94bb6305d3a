"""``threedpai ingest``: check archives of printer runs and turn them into a Parquet dataset.

>>> report = ingest("runs.tar.gz", "dataset", workers=4)
>>> report.counts                       # {"ok": 180, "repaired": 12, "quarantined": 8}

Run folders are found loose, nested or inside archives (:mod:`.discover`), each is checked
(:mod:`.checks`), parsed and planned with the Rust core, and written per run, all or nothing
(:mod:`.write`), on a local process pool or an executor given (a Dask one too). Every run gets a
line in ``_ingest/log.jsonl``; broken runs are copied untouched to ``quarantine/`` with their
reasons. Re-running skips runs already ingested (same content hash) and finishes the rest. The
layout is described in docs/ingest.md.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from threedpai.cli import atomic_write
from threedpai.engine import completed, process_pool
from threedpai.ingest import write
from threedpai.ingest.discover import Candidate, Limits, discover
from threedpai.ingest.process import STAGES, Result, Task, process
from threedpai.ingest.reasons import Reason

__all__ = ["IngestReport", "Limits", "Reason", "Result", "ingest"]

SUMMARY_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("run_id", pa.string()),
        ("status", pa.string()),
        ("codes", pa.list_(pa.string())),
        ("reasons", pa.string()),
        ("content_hash", pa.string()),
        ("input_bytes", pa.int64()),
    ]
)


@dataclass
class IngestReport:
    dataset: Path
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0
    discover_seconds: float = 0.0
    workers: int = 1

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r.status for r in self.results))

    @property
    def input_bytes(self) -> int:
        return sum(r.input_bytes for r in self.results)

    def stage_seconds(self) -> dict[str, float]:
        """Seconds per stage summed over runs (worker time), plus the discovery (unpacking) in the main process."""
        out = {"discover": self.discover_seconds} | dict.fromkeys(STAGES, 0.0)
        for r in self.results:
            for k, v in r.seconds.items():
                out[k] += v
        return out


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise RuntimeError(f"another ingest is writing to {path.parent.parent}") from e
        yield


def _markers(dataset: Path) -> dict[str, dict[str, Any]]:
    folder = dataset / "_ingest" / "done"
    out = {}
    for p in sorted(folder.glob("*.json")) if folder.exists() else []:
        m = json.loads(p.read_text())
        out[m["run_id"]] = m
    return out


def _quarantined(dataset: Path) -> dict[str, dict[str, Any]]:
    folder = dataset / "quarantine"
    out = {}
    for p in sorted(folder.rglob("reason.json")) if folder.exists() else []:
        m = json.loads(p.read_text())
        out[m["key"]] = m
    return out


def _tasks(found: list[Candidate], dataset: Path, keep_media: bool) -> list[Task]:
    markers = _markers(dataset)
    quarantined = _quarantined(dataset)
    first: dict[str, str] = {}
    tasks = []
    for c in found:
        dup = first.get(c.run_id_hint) if c.run_id_hint else None
        if c.run_id_hint and dup is None:
            first[c.run_id_hint] = c.key
        q = quarantined.get(c.key)
        done = markers.get(c.run_id_hint) if c.run_id_hint and not dup else None
        tasks.append(Task(c.key, c.path, dataset, done, q["content_hash"] if q else None, dup, keep_media))
    return tasks


def _progress(enabled: bool, total: int) -> Any:
    if not enabled:
        return nullcontext(None)
    from threedpai.cli import _progress as make

    bar = make()
    bar.add_task("ingesting", total=total)
    return bar


def write_summary(dataset: Path) -> pa.Table:
    """``_ingest/summary.parquet``: one row per run in the dataset or the quarantine (not per attempt)."""
    rows = []
    for m in _markers(dataset).values():
        rows.append(m | {"codes": [r["code"] for r in m["reasons"]]})
    for m in _quarantined(dataset).values():
        rows.append(m | {"run_id": None, "codes": [r["code"] for r in m["reasons"]], "input_bytes": None})
    rows.sort(key=lambda r: r["key"])
    for r in rows:
        r["reasons"] = json.dumps(r["reasons"], sort_keys=True)
    table = pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA)
    atomic_write(dataset / "_ingest" / "summary.parquet", lambda tmp: write.write_table(table, Path(tmp)))
    return table


def ingest(
    source: str | os.PathLike[str],
    dataset: str | os.PathLike[str],
    *,
    workers: int | None = None,
    limits: Limits | None = None,
    keep_media: bool = True,
    progress: bool = False,
    executor: Executor | None = None,
    _kill_after: int | None = None,
) -> IngestReport:
    """Ingests every run under ``source`` (a folder or a .tar/.tar.gz/.zip archive) into ``dataset``.

    ``workers``: processes (default: every core; 1 runs in this process). ``keep_media``: copy
    frames and audio to ``media/<run_id>/``. ``executor``: process the runs there instead of on a
    pool of our own (e.g. a Dask ``client.get_executor()``; its workers must see ``source`` and
    ``dataset``, archives are unpacked under ``dataset/_ingest/tmp``); the caller shuts it down.
    ``_kill_after``: a test hook that kills this process (SIGKILL, no clean-up) after that many
    runs are done, to test resuming.
    """
    source, dataset = Path(source), Path(dataset)
    workers = max(1, workers or os.cpu_count() or 1)
    meta = dataset / "_ingest"
    start = time.perf_counter()
    report = IngestReport(dataset, workers=workers)
    with _lock(meta / "lock"):
        for leftover in (meta / "staging", meta / "tmp"):  # from an interrupted ingest
            shutil.rmtree(leftover, ignore_errors=True)
        found = discover(
            source, meta / "tmp", limits or Limits(), {k: m["content_hash"] for k, m in _quarantined(dataset).items()}
        )
        report.discover_seconds = time.perf_counter() - start
        tasks = _tasks(found.runs, dataset, keep_media)
        with open(meta / "log.jsonl", "a", encoding="utf-8") as log, _progress(progress, len(tasks)) as bar:

            def record(r: Result) -> None:
                report.results.append(r)
                entry = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "source": str(source)}
                log.write(json.dumps(entry | _as_log(r), sort_keys=False) + "\n")
                log.flush()
                if bar is not None:
                    bar.advance(bar.task_ids[0])
                if _kill_after is not None and len(report.results) >= _kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)

            for u in found.unsafe:
                reasons = [r.as_dict() for r in u.reasons]
                entry = {"key": u.key, "status": "quarantined", "content_hash": u.content_hash, "reasons": reasons}
                write.quarantine(dataset, u.key, u.path, write.staging(dataset, "archive"), entry)
                record(Result(u.key, "quarantined", None, reasons, u.content_hash, u.path.stat().st_size))
            for key in found.skipped_archives:
                record(Result(key, "skipped", note="unsafe archive already in the quarantine"))
            _run_tasks(tasks, workers, executor, record)
        write_summary(dataset)
        for scratch in (meta / "staging", meta / "tmp"):
            shutil.rmtree(scratch, ignore_errors=True)
    report.seconds = time.perf_counter() - start
    return report


def _run_tasks(tasks: list[Task], workers: int, executor: Executor | None, record: Callable[[Result], None]) -> None:
    if executor is not None:
        _submit_all(executor, tasks, record)
    elif workers == 1 or len(tasks) <= 1:
        for task in tasks:
            record(process(task))
    else:
        # workers start from a fork server that already imported the ingest modules
        with process_pool(min(workers, len(tasks)), preload=["threedpai.ingest.process"]) as pool:
            _submit_all(pool, tasks, record)


def _submit_all(pool: Executor, tasks: list[Task], record: Callable[[Result], None]) -> None:
    for result in completed(pool, process, [(t,) for t in tasks]):
        record(result)


def _as_log(r: Result) -> dict[str, Any]:
    return {
        "key": r.key,
        "run_id": r.run_id,
        "status": r.status,
        "note": r.note,
        "reasons": r.reasons,
        "content_hash": r.content_hash,
        "input_bytes": r.input_bytes,
        "seconds": {k: round(v, 4) for k, v in r.seconds.items()},
    }


def report_table(report: IngestReport) -> Any:
    """A rich table: runs per status, the reasons of the quarantined, throughput."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"ingest -> {report.dataset}", show_header=False, title_justify="left")
    t.add_column("key", style="bold")
    t.add_column("value")
    for status in ("ok", "repaired", "skipped", "quarantined"):
        t.add_row(status, str(report.counts.get(status, 0)))
    mb = report.input_bytes / 1e6
    rate = f"{mb / report.seconds:.1f} MB/s" if report.seconds else "-"
    t.add_row("input", f"{mb:.1f} MB in {report.seconds:.1f} s ({rate}, {report.workers} worker(s))")
    for r in report.results:
        if r.status == "quarantined":
            why = "; ".join(
                f"{x['code']}" + (f" ({x['file']}:{x.get('line', '')})" if "file" in x else "")
                for x in r.reasons
                if x["severity"] == "error"
            )
            t.add_row(escape(r.key), f"[red]{escape(why)}[/red]")
    return t
