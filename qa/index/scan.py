"""The corpus against the stored files: what is new, changed, unchanged (by size and
modification time, then content hash) or gone, and what could not be read."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qa.articles import (
    Article,
    Problem,
    entry_problem,
    iter_corpus_files,
    load_file,
    relative_name,
)
from qa.errors import (
    QAError,
)
from qa.index.progress import Progress, ProgressFn

if TYPE_CHECKING:
    pass


@dataclass
class FileScan:
    path: str
    size: int
    mtime_ns: int
    sha256: str
    articles: list[Article] | None
    """None: unchanged since the last run (not parsed)."""
    problems: list[Problem]


def scan_corpus(
    root: Path, stored: dict[str, sqlite3.Row], full: bool, max_bytes: int, progress: ProgressFn
) -> tuple[list[FileScan], set[str]]:
    if root.is_file():
        files = [root]
        base = root.parent
    elif root.is_dir():
        folder_problems: list[Problem] = []
        files = list(iter_corpus_files(root, folder_problems))
        base = root
    else:
        raise QAError(f"{root}: no such corpus folder or file")
    scans: list[FileScan] = []
    if root.is_dir():
        # An unreadable folder is reported; what was indexed from it stays (see `gone`).
        scans.extend(FileScan(p.path, 0, 0, "", [], [p]) for p in folder_problems)
    for number, file in enumerate(files, 1):
        rel = relative_name(file, base)
        refusal = entry_problem(file, base) if root.is_dir() else None
        if refusal is not None:
            scans.append(FileScan(rel, 0, 0, "", [], [Problem(rel, refusal)]))
            continue
        try:
            stat = file.stat()
        except OSError as exc:
            scans.append(FileScan(rel, 0, 0, "", [], [Problem(rel, f"cannot read: {exc}")]))
            continue
        row = stored.get(rel)
        if (
            not full
            and row is not None
            and row["size"] == stat.st_size
            and row["mtime_ns"] == stat.st_mtime_ns
        ):
            problems = [Problem(**p) for p in json.loads(row["problems"])]
            scans.append(
                FileScan(rel, stat.st_size, stat.st_mtime_ns, row["sha256"], None, problems)
            )
            continue
        digest = _file_digest(file) if stat.st_size <= max_bytes else f"size:{stat.st_size}"
        if not digest and row is not None:
            # readable before, not now (its permissions changed): what was indexed from it
            # stays, as for a folder that cannot be read
            problem = Problem(rel, "cannot read file now; what was indexed from it is kept")
            scans.append(
                FileScan(rel, row["size"], row["mtime_ns"], row["sha256"], None, [problem])
            )
            continue
        if not full and row is not None and row["sha256"] == digest:
            problems = [Problem(**p) for p in json.loads(row["problems"])]
            scans.append(FileScan(rel, stat.st_size, stat.st_mtime_ns, digest, None, problems))
            continue
        articles, problems = load_file(file, rel, max_bytes=max_bytes)
        scans.append(FileScan(rel, stat.st_size, stat.st_mtime_ns, digest, articles, problems))
        if number % 200 == 0 or number == len(files):
            progress(Progress("scan", number, len(files)))
    gone = set(stored) - {scan.path for scan in scans}
    if root.is_dir():
        unreadable = tuple(p.path for p in folder_problems)
        gone = {path for path in gone if not path.startswith(unreadable)}
    return scans, gone


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def skipped_problems(scans: list[FileScan]) -> list[dict[str, str]]:
    """The file problems of a scan, as `UpdateReport.skipped` lists them."""
    return [p.as_dict() for scan in scans for p in scan.problems]
