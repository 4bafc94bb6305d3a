"""Finding run folders: loose, nested, or packed in .tar, .tar.gz or .zip archives (also nested).

Archives are unpacked by hand, member by member, into a scratch folder. A member with an absolute
path, a ``..`` component, a link that leaves the archive, a device file, or a size over the limits
(one member, the whole archive, or a zip member's compression ratio) makes the archive unsafe: it is
not unpacked further and goes to the quarantine whole, with one reason per bad member.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from threedpai import runs
from threedpai.ingest.reasons import Reason

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bounds on what an archive may unpack to (a zip bomb or a huge stray file stops here)."""

    max_member_bytes: int = 16 << 30
    max_total_bytes: int = 512 << 30
    max_ratio: float = 1000.0  # unpacked / packed bytes, per zip member and per compressed tar
    max_members: int = 2_000_000
    max_depth: int = 4  # archives inside archives


@dataclass
class Candidate:
    """A folder that looks like a run: ``key`` names it inside the input ("batch.tar.gz/run-0001")."""

    key: str
    path: Path
    run_id_hint: str | None = None


@dataclass
class UnsafeArchive:
    key: str
    path: Path
    reasons: list[Reason]
    content_hash: str


@dataclass
class Found:
    runs: list[Candidate] = field(default_factory=list)
    unsafe: list[UnsafeArchive] = field(default_factory=list)
    skipped_archives: list[str] = field(default_factory=list)


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def is_run_folder(names: set[str]) -> bool:
    return (
        runs.METADATA in names
        or runs.SENSORS in names
        or any(g in names for g in runs.GCODE_NAMES)
        or any(n.endswith(runs.KLIPPER_LOG_SUFFIXES[0]) for n in names)
    )


def file_hash(path: Path) -> str:
    """SHA-256, 160 bits kept (as the run content hash)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()[:40]


def _run_id_hint(folder: Path) -> str | None:
    """The run_id metadata.json claims, if it can be read at all (the checks judge it properly later)."""
    try:
        value = json.loads((folder / runs.METADATA).read_bytes()).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def discover(source: Path, scratch: Path, limits: Limits, known_unsafe: dict[str, str] | None = None) -> Found:
    """Every run folder under ``source`` (a folder, a run folder or an archive), in a stable order.

    Archives are unpacked under ``scratch``. ``known_unsafe`` maps archive keys already in the
    quarantine to their content hash: an unchanged one is not unpacked again (listed as skipped).
    """
    found = Found()
    source = Path(source)
    if source.is_dir():
        _walk(source, "", scratch, limits, 0, found, known_unsafe or {})
    elif is_archive(source.name):
        _archive(source, source.name, scratch, limits, 0, found, known_unsafe or {})
    else:
        raise ValueError(f"{source} is neither a folder nor a .tar, .tar.gz, .tgz or .zip archive")
    found.runs.sort(key=lambda c: c.key)
    return found


def _walk(
    top: Path, prefix: str, scratch: Path, limits: Limits, depth: int, found: Found, known: dict[str, str]
) -> None:
    for root, dirs, files in os.walk(top):
        dirs.sort()
        rel = Path(root).relative_to(top).as_posix()
        key = "/".join(p for p in (prefix, "" if rel == "." else rel) if p)
        if is_run_folder(set(files)):
            found.runs.append(Candidate(key or top.name, Path(root), _run_id_hint(Path(root))))
            dirs.clear()  # frames/ and the like belong to the run
            continue
        for name in sorted(files):
            path = Path(root) / name
            if is_archive(name) and not path.is_symlink():
                _archive(path, f"{key}/{name}" if key else name, scratch, limits, depth, found, known)


def _archive(
    path: Path, key: str, scratch: Path, limits: Limits, depth: int, found: Found, known: dict[str, str]
) -> None:
    digest = file_hash(path)
    if known.get(key) == digest:
        found.skipped_archives.append(key)
        return
    if depth >= limits.max_depth:
        reason = Reason("archive.too_deep", f"archives nested deeper than {limits.max_depth}", file=key)
        found.unsafe.append(UnsafeArchive(key, path, [reason], digest))
        return
    target = scratch / f"a{len(list(scratch.iterdir())) if scratch.exists() else 0}"
    target.mkdir(parents=True)
    try:
        reasons = _unpack(path, target, limits)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        reasons = [Reason("archive.unreadable", f"cannot read the archive: {e}", file=key)]
    if reasons:
        shutil.rmtree(target, ignore_errors=True)
        found.unsafe.append(UnsafeArchive(key, path, [_in(key, r) for r in reasons], digest))
        return
    _walk(target, key, scratch, limits, depth + 1, found, known)


def _in(key: str, r: Reason) -> Reason:
    """A member's reason names the archive as its file and the member in the details."""
    return Reason(r.code, r.message, file=key, details={"member": r.file})


def _member_problem(name: str) -> Reason | None:
    """Absolute paths and paths climbing out with ``..``; None when the name is safe."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return Reason("archive.absolute_path", f"member {name!r} has an absolute path", file=name)
    if ".." in name.replace("\\", "/").split("/"):
        return Reason("archive.parent_path", f"member {name!r} climbs out of the archive with '..'", file=name)
    return None


def _link_problem(name: str, target: str, hard: bool) -> Reason | None:
    base = "" if hard else posixpath.dirname(name)  # tar hard links are relative to the archive root
    resolved = posixpath.normpath(posixpath.join(base, target))
    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
        kind = "hard link" if hard else "symlink"
        return Reason("archive.link_escape", f"{kind} {name!r} -> {target!r} leaves the archive", file=name)
    return None


def _size_problems(sizes: Sequence[tuple[str, int, int | None]], packed_total: int, limits: Limits) -> list[Reason]:
    """sizes: (member, unpacked bytes, packed bytes or None)."""
    out = []
    if len(sizes) > limits.max_members:
        out.append(Reason("archive.too_many_members", f"{len(sizes)} members, limit {limits.max_members}"))
    total = 0
    for name, size, packed in sizes:
        total += size
        if size > limits.max_member_bytes:
            out.append(
                Reason(
                    "archive.oversized_member",
                    f"member {name!r} is {size} bytes, limit {limits.max_member_bytes}",
                    file=name,
                )
            )
        elif packed is not None and size > 1 << 20 and size > limits.max_ratio * max(packed, 1):
            out.append(
                Reason(
                    "archive.compression_ratio",
                    f"member {name!r} unpacks {size / max(packed, 1):.0f}x, limit {limits.max_ratio:.0f}x",
                    file=name,
                )
            )
    if total > limits.max_total_bytes:
        out.append(Reason("archive.oversized_total", f"unpacks to {total} bytes, limit {limits.max_total_bytes}"))
    elif total > 1 << 20 and total > limits.max_ratio * max(packed_total, 1) and not out:
        out.append(
            Reason(
                "archive.compression_ratio",
                f"unpacks {total / packed_total:.0f}x its size, limit {limits.max_ratio:.0f}x",
            )
        )
    return out


def _unpack(path: Path, target: Path, limits: Limits) -> list[Reason]:
    if path.name.lower().endswith(".zip"):
        return _unpack_zip(path, target, limits)
    return _unpack_tar(path, target, limits)


def _copy_exact(src: IO[bytes], dest: Path, size: int) -> None:
    """Copies exactly ``size`` bytes: a member that yields more than it declared is cut off and refused."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    left = size
    with open(dest, "xb") as out:
        while left and (chunk := src.read(min(_CHUNK, left))):
            out.write(chunk)
            left -= len(chunk)
    if left or src.read(1):
        raise ValueError(f"member {dest.name!r} does not hold the {size} bytes it declares")


def _unpack_tar(path: Path, target: Path, limits: Limits) -> list[Reason]:
    with tarfile.open(path, "r:*") as tf:
        members = tf.getmembers()
        problems: list[Reason] = []
        for m in members:
            p = _member_problem(m.name)
            if p is None and (m.issym() or m.islnk()):
                p = _link_problem(m.name, m.linkname, m.islnk())
            if p is None and not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                p = Reason("archive.special_member", f"member {m.name!r} is a device or fifo", file=m.name)
            if p:
                problems.append(p)
        packed = path.stat().st_size if path.name.lower().endswith((".gz", ".tgz")) else None
        problems += _size_problems([(m.name, m.size, None) for m in members if m.isfile()], packed or 1 << 62, limits)
        if problems:
            return problems
        for m in members:
            dest = target / m.name
            if m.isdir():
                dest.mkdir(parents=True, exist_ok=True)
            elif m.isfile():
                src = tf.extractfile(m)
                assert src is not None  # a regular file always has data
                _copy_exact(src, dest, m.size)
        # Links that stay inside become copies of what they point to (never links on disk).
        for m in members:
            if m.issym() or m.islnk():
                base = target if m.islnk() else (target / m.name).parent
                src_path = (base / m.linkname).resolve()
                if src_path.is_file() and src_path.is_relative_to(target.resolve()):
                    shutil.copyfile(src_path, target / m.name)
    return []


def _unpack_zip(path: Path, target: Path, limits: Limits) -> list[Reason]:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        problems: list[Reason] = []
        links = []
        for info in infos:
            p = _member_problem(info.filename)
            mode = info.external_attr >> 16
            if p is None and stat.S_ISLNK(mode):
                link = zf.read(info).decode("utf-8", "replace")
                p = _link_problem(info.filename, link, hard=False)
                links.append((info.filename, link))
            elif p is None and stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                p = Reason(
                    "archive.special_member", f"member {info.filename!r} is a device or fifo", file=info.filename
                )
            if p:
                problems.append(p)
        sizes = [(i.filename, i.file_size, i.compress_size) for i in infos if not i.is_dir()]
        problems += _size_problems(sizes, path.stat().st_size, limits)
        if problems:
            return problems
        link_names = {name for name, _ in links}
        for info in infos:
            dest = target / info.filename
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
            elif info.filename not in link_names:
                with zf.open(info) as src:
                    _copy_exact(src, dest, info.file_size)
        for name, link in links:
            src_path = ((target / name).parent / link).resolve()
            if src_path.is_file() and src_path.is_relative_to(target.resolve()):
                shutil.copyfile(src_path, target / name)
    return []


def run_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(relative name, path) of every file in a run folder, sorted, links included as they are."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            p = Path(root) / name
            out.append((p.relative_to(folder).as_posix(), p))
    return iter(sorted(out))
