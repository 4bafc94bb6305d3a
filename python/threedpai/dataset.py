"""Versioned datasets: immutable snapshots of a dataset directory, stored and restored with DVC.

A dataset directory holds phases (``raw/``, ``aligned/``, ``features/``), each organized by table
(modality) and partition (``scenario=…/run_id=…``). :func:`commit` records the phases in DVC's
content-addressed cache and writes a manifest (every file's hash, size, rows and schema; the source
runs; the parameters and threedpai version that made it; the parent version). A version's id is a
hash of its content and parameters, so re-running the same pipeline gives the same id.

>>> v = commit("dataset", params={"seed": 1})
>>> checkout("dataset", v.id)       # the directory as it was, bit for bit
>>> verify("dataset", v.id)         # [] when every file still has its recorded hash
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from threedpai.errors import ThreedpaiError

PHASES = ("raw", "aligned", "features")
META_DIR = ".threedpai"  # versions live here, beside DVC's own .dvc/
PathLike = str | os.PathLike[str]


class DatasetError(ThreedpaiError, ValueError):
    """A dataset or version that does not exist or cannot be used."""


@dataclass(frozen=True)
class Version:
    id: str
    manifest: dict[str, Any]

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return self.manifest["files"]


def _versions_dir(root: Path) -> Path:
    return root / META_DIR / "versions"


def _repo(root: Path) -> Any:
    from dvc.repo import Repo  # heavy import, only when versioning

    if not (root / ".dvc").is_dir():
        logging.getLogger("dvc").setLevel(logging.WARNING)  # not "Initialized DVC repository."
        return Repo.init(str(root), no_scm=True)
    return Repo(str(root))


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _dir_listing(root: Path, pointer: dict[str, Any]) -> list[dict[str, str]]:
    """The (relpath, md5) list DVC stored for a tracked directory."""
    md5 = pointer["outs"][0]["md5"]
    obj = root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    return json.loads(obj.read_text())


def _cache_object(root: Path, md5: str) -> Path:
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def _describe(path: Path) -> dict[str, Any]:
    """Rows and schema of a Parquet file (from its footer); other files only have a size."""
    out: dict[str, Any] = {"size": path.stat().st_size}
    if path.suffix == ".parquet":
        meta = pq.read_metadata(path)
        out["rows"] = meta.num_rows
        out["schema"] = hashlib.sha256(meta.schema.to_arrow_schema().to_string().encode()).hexdigest()[:16]
    return out


def _parts(relpath: str) -> dict[str, str]:
    """phase, table and partition keys (``scenario=clog_full``) of a file's path."""
    parts = relpath.split("/")
    out = {"phase": parts[0], "table": parts[1] if len(parts) > 2 else ""}
    out |= dict(p.split("=", 1) for p in parts[2:-1] if "=" in p)
    return out


def _sources(root: Path) -> list[dict[str, Any]]:
    """The runs a dataset was made from, from its ``raw/runs`` table when there is one."""
    files = sorted((root / "raw" / "runs").rglob("*.parquet"))
    if not files:
        return []
    table = pq.ParquetDataset([str(f) for f in files]).read()
    keep = [c for c in ("run_id", "content_hash", "status") if c in table.column_names]
    return sorted(table.select(keep).to_pylist(), key=lambda r: str(r.get("run_id")))


def commit(
    dataset: PathLike, *, params: dict[str, Any] | None = None, message: str = "", parent: str | None = None
) -> Version:
    """Snapshots the phases present in ``dataset`` as a version; returns it (an existing version when
    the content and parameters are the same). ``parent`` defaults to the version checked out."""
    import yaml  # a dependency of DVC, which writes the pointer files

    from threedpai import __version__

    root = Path(dataset).resolve()
    phases = [p for p in PHASES if (root / p).is_dir()]
    if not phases:
        raise DatasetError(f"{root}: nothing to version (no {', '.join(PHASES)} folder)")
    repo = _repo(root)
    repo.add([str(root / p) for p in phases])
    pointers: dict[str, str] = {}
    files: dict[str, dict[str, Any]] = {}
    for phase in phases:
        dvc_file = root / f"{phase}.dvc"
        pointers[phase] = dvc_file.read_text()
        dvc_file.unlink()  # a version's pointers live with the version, not where DVC looks for them
        for entry in _dir_listing(root, yaml.safe_load(pointers[phase])):
            rel = f"{phase}/{entry['relpath']}"
            files[rel] = {"md5": entry["md5"], **_describe(root / rel), **_parts(rel)}
    sources = _sources(root)
    params = params or {}
    content = {"files": {k: v["md5"] for k, v in sorted(files.items())}, "params": params}
    vid = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
    vdir = _versions_dir(root) / vid
    if not (vdir / "manifest.json").exists():
        manifest = {
            "id": vid,
            "created": datetime.now(UTC).isoformat(),
            "parent": parent if parent is not None else head(root),
            "message": message,
            "threedpai_version": __version__,
            "params": params,
            "sources": sources,
            "tables": _tables(files),
            "files": dict(sorted(files.items())),
        }
        for phase, text in pointers.items():
            (vdir / "pointers").mkdir(parents=True, exist_ok=True)
            (vdir / "pointers" / f"{phase}.yaml").write_text(text)
        _write_json(vdir / "manifest.json", manifest)  # written last: a version without it does not exist
    (root / META_DIR / "HEAD").write_text(vid)
    return show(root, vid)


def _tables(files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per phase/table: files, rows, bytes and the schemas seen."""
    out: dict[str, dict[str, Any]] = {}
    for f in files.values():
        key = f"{f['phase']}/{f['table']}" if f["table"] else f["phase"]
        t = out.setdefault(key, {"files": 0, "rows": 0, "bytes": 0, "schemas": []})
        t["files"] += 1
        t["rows"] += f.get("rows", 0)
        t["bytes"] += f["size"]
        if "schema" in f and f["schema"] not in t["schemas"]:
            t["schemas"].append(f["schema"])
    return dict(sorted(out.items()))


def head(dataset: PathLike) -> str | None:
    """The id of the version the directory was last committed or checked out as."""
    path = Path(dataset) / META_DIR / "HEAD"
    return path.read_text().strip() if path.exists() else None


def versions(dataset: PathLike) -> list[Version]:
    """All versions, oldest first."""
    vdir = _versions_dir(Path(dataset))
    found = [show(dataset, p.name) for p in vdir.iterdir() if (p / "manifest.json").exists()] if vdir.is_dir() else []
    return sorted(found, key=lambda v: (v.manifest["created"], v.id))


def show(dataset: PathLike, version: str) -> Version:
    path = _versions_dir(Path(dataset)) / version / "manifest.json"
    if not path.exists():
        raise DatasetError(f"{dataset}: no version {version!r} (see `threedpai dataset list`)")
    return Version(version, json.loads(path.read_text()))


def checkout(dataset: PathLike, version: str) -> Version:
    """Restores the phases of ``version`` exactly (files of other versions are removed)."""
    root = Path(dataset).resolve()
    v = show(root, version)
    pointers = sorted((_versions_dir(root) / version / "pointers").glob("*.yaml"))
    for phase in PHASES:
        if phase not in {p.stem for p in pointers} and (root / phase).exists():
            shutil.rmtree(root / phase)  # a phase the version does not have
    targets = []
    for p in pointers:
        shutil.copyfile(p, root / f"{p.stem}.dvc")
        targets.append(str(root / f"{p.stem}.dvc"))
    try:
        _repo(root).checkout(targets=targets, force=True)
    finally:
        for t in targets:
            Path(t).unlink(missing_ok=True)
    (root / META_DIR / "HEAD").write_text(version)
    return v


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify(dataset: PathLike, version: str | None = None) -> list[str]:
    """Problems found, none when sound: every file of the version's cache objects, and of the
    working directory when that version is checked out, must have its recorded hash."""
    root = Path(dataset).resolve()
    version = version or head(root)
    if version is None:
        raise DatasetError(f"{root}: no version to verify")
    v = show(root, version)
    problems = []
    checked_out = head(root) == version
    for rel, f in v.files.items():
        obj = _cache_object(root, f["md5"])
        if not obj.exists():
            problems.append(f"{rel}: missing from the cache")
        elif _md5(obj) != f["md5"]:
            problems.append(f"{rel}: cache copy is corrupted (hash differs)")
        if checked_out:
            work = root / rel
            if not work.exists():
                problems.append(f"{rel}: missing from the directory")
            elif _md5(work) != f["md5"]:
                problems.append(f"{rel}: modified (hash differs from version {version})")
    if checked_out:
        listed = set(v.files)
        for phase in PHASES:
            for p in _walk(root / phase):
                rel = p.relative_to(root).as_posix()
                if rel not in listed:
                    problems.append(f"{rel}: not part of version {version}")
    return problems


def _walk(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        yield from sorted(p for p in folder.rglob("*") if p.is_file())


def diff(dataset: PathLike, a: str, b: str) -> dict[str, Any]:
    """Files added, removed and changed from version ``a`` to ``b``, and rows per table."""
    fa, fb = show(dataset, a).files, show(dataset, b).files
    ta, tb = show(dataset, a).manifest["tables"], show(dataset, b).manifest["tables"]
    return {
        "added": sorted(set(fb) - set(fa)),
        "removed": sorted(set(fa) - set(fb)),
        "changed": sorted(k for k in set(fa) & set(fb) if fa[k]["md5"] != fb[k]["md5"]),
        "rows": {
            t: (ta.get(t, {}).get("rows", 0), tb.get(t, {}).get("rows", 0))
            for t in sorted(set(ta) | set(tb))
            if ta.get(t, {}).get("rows", 0) != tb.get(t, {}).get("rows", 0)
        },
    }
