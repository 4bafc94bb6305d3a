"""The end-to-end ETL: simulate (optional) → ingest (parse + timeline) → align → features → dataset
version → report, driven by one TOML file.

Every stage is resumable on its own (simulate writes whole run folders, ingest skips runs already
in the dataset by content hash, align skips runs whose aligned tables match their raw ones,
features and the version are recomputed, and the same content gives the same version id), so
re-running after an interruption finishes the work and produces the same dataset.

>>> report = run("pipeline.toml")
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from threedpai.errors import ThreedpaiError
from threedpai.runs import FaultType

PathLike = str | os.PathLike[str]


class PipelineError(ThreedpaiError, ValueError):
    """A config that cannot be run."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimulateConfig(_Section):
    out: Path = Field(description="where the simulated archive is written")
    runs: int = Field(default=24, ge=1)
    seed: int = 0
    sources: list[str] = Field(default_factory=list, description="G-code files/folders/globs; empty: built-in samples")
    rate_hz: float = Field(default=50.0, ge=1, le=10_000)
    faults: list[FaultType] | None = None
    clean_share: float = Field(default=0.2, ge=0, le=1)
    frames: bool = True
    audio: bool = False
    motion: bool = False


class IngestConfig(_Section):
    archive: Path | None = Field(default=None, description="a folder or .tar/.tar.gz/.zip; default: simulate.out")
    keep_media: bool = True


class AlignConfig(_Section):
    rate_hz: float = Field(default=10.0, gt=0, le=1000, description="rate of the uniform table")


class FeaturesConfig(_Section):
    band_c: float = 5.0
    spike_sigma: float = 4.0


class EngineConfig(_Section):
    kind: Literal["local", "dask"] = "local"
    workers: int | None = Field(default=None, ge=1)
    address: str | None = Field(default=None, description="a Dask scheduler; none: a local cluster")


class PipelineConfig(_Section):
    dataset: Path
    simulate: SimulateConfig | None = None
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    align: AlignConfig = Field(default_factory=AlignConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    report: Path | None = Field(default=None, description="report folder; default: DATASET/_pipeline/report")

    def archive(self) -> Path:
        if self.ingest.archive is not None:
            return self.ingest.archive
        if self.simulate is not None:
            return self.simulate.out
        raise PipelineError("nothing to ingest: give [ingest] archive or a [simulate] section")


def load(path: PathLike) -> PipelineConfig:
    """Reads a pipeline TOML; relative paths are relative to the file's folder."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
        cfg = PipelineConfig.model_validate(data)
    except (tomllib.TOMLDecodeError, ValidationError) as e:
        raise PipelineError(f"{path}: {e}") from None
    base = path.resolve().parent

    def fix(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else (base / p).resolve())

    updates: dict[str, Any] = {"dataset": fix(cfg.dataset), "report": fix(cfg.report)}
    if cfg.simulate is not None:
        updates["simulate"] = cfg.simulate.model_copy(update={"out": fix(cfg.simulate.out)})
    updates["ingest"] = cfg.ingest.model_copy(update={"archive": fix(cfg.ingest.archive)})
    return cfg.model_copy(update=updates)


@dataclass
class StageResult:
    name: str
    seconds: float
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineReport:
    config: PipelineConfig
    stages: list[StageResult] = field(default_factory=list)
    version: str | None = None
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    report_dir: Path | None = None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


class _Log:
    """Structured log: one JSON line per event in DATASET/_pipeline/log.jsonl."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.echo = echo

    def __call__(self, event: str, **fields: Any) -> None:
        entry = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event} | fields
        with self.path.open("a", encoding="utf-8") as f:  # a line at a time: whole lines survive a kill
            f.write(json.dumps(entry, default=str) + "\n")
        if self.echo is not None:
            self.echo(f"{event} " + " ".join(f"{k}={v}" for k, v in fields.items()))


@contextmanager
def _stage(report: PipelineReport, log: _Log, name: str) -> Iterator[StageResult]:
    result = StageResult(name, 0.0)
    log("stage.start", stage=name)
    start = time.perf_counter()
    try:
        yield result
    except BaseException as e:
        log("stage.failed", stage=name, error=repr(e))
        raise
    result.seconds = time.perf_counter() - start
    report.stages.append(result)
    log("stage.done", stage=name, seconds=round(result.seconds, 3), **result.counts)


def run(
    config: PathLike | PipelineConfig,
    *,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> PipelineReport:
    """Runs every stage of ``config`` (a TOML path or a loaded config) and returns what happened."""
    from threedpai import dataset, features, ingest
    from threedpai.engine import executor

    cfg = load(config) if not isinstance(config, PipelineConfig) else config
    report = PipelineReport(cfg)
    log = _Log(cfg.dataset / "_pipeline" / "log.jsonl", echo)
    log("pipeline.start", config=cfg.model_dump(mode="json"))
    with executor(cfg.engine.kind, cfg.engine.workers, cfg.engine.address) as pool:
        if cfg.simulate is not None:
            with _stage(report, log, "simulate") as st:
                st.counts = _simulate(cfg.simulate, pool, progress)
        with _stage(report, log, "ingest") as st:
            ing = ingest.ingest(
                cfg.archive(), cfg.dataset, executor=pool, keep_media=cfg.ingest.keep_media, progress=progress
            )
            st.counts = dict(ing.counts)
            report.quarantined = [
                {"key": r.key, "reasons": r.reasons} for r in ing.results if r.status == "quarantined"
            ]
        with _stage(report, log, "align") as st:
            st.counts = _align(cfg, pool, progress)
    with _stage(report, log, "features") as st:
        tables = features.run(cfg.dataset, params=cfg.features.model_dump())
        features.write(cfg.dataset, tables)
        st.counts = {name: t.num_rows for name, t in tables.items()}
    with _stage(report, log, "version") as st:
        v = dataset.commit(cfg.dataset, params=_params(cfg), message="threedpai pipeline")
        report.version = v.id
        st.counts = {"version": v.id, "files": len(v.files)}
    with _stage(report, log, "report") as st:
        from threedpai.report import write_report

        report.report_dir = write_report(report)
        st.counts = {"path": str(report.report_dir)}
    log("pipeline.done", seconds=round(report.seconds, 3), version=report.version)
    return report


def _params(cfg: PipelineConfig) -> dict[str, Any]:
    """What made the dataset, without where it was written (so the version id follows content)."""
    data = cfg.model_dump(mode="json", exclude={"dataset", "report", "engine"})
    if data.get("simulate"):
        data["simulate"].pop("out")
    data["ingest"].pop("archive")
    return data


def _simulate(sc: SimulateConfig, pool: Executor, progress: bool) -> dict[str, Any]:
    from rich.progress import Progress

    from threedpai.simulate import Options, simulate

    opts = Options(rate_hz=sc.rate_hz, frames=sc.frames, audio=sc.audio, motion=sc.motion)
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("simulating", total=sc.runs)
        results = simulate(
            sc.sources, sc.runs, sc.out, seed=sc.seed, faults=sc.faults, clean_share=sc.clean_share,
            options=opts, executor=pool, resume=True, progress=lambda _: bar.advance(task),
        )  # fmt: skip
    return {"runs": len(results), "faulty": sum(1 for r in results if r.fault is not None)}


def _align(cfg: PipelineConfig, pool: Executor, progress: bool) -> dict[str, Any]:
    from threedpai.aligned import align_dataset

    rep = align_dataset(cfg.dataset, rate_hz=cfg.align.rate_hz, executor=pool, progress=progress)
    return rep.counts()
