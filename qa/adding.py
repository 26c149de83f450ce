"""Copying article files into a corpus (what `qa add` does before it updates the index).

A file is copied only when it holds at least one usable article; an existing corpus file is
never overwritten (the same bytes count as already there); a web address is refused (`qa`
works offline); inside a folder, a link whose target leaves that folder is not followed; the
copy is atomic (a temporary file renamed into place). Everything is reported as an `Added`
record, so any front end can say what happened to each file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.articles import (
    DEFAULT_MAX_BYTES,
    SkipFile,
    entry_problem,
    file_kind,
    iter_corpus_files,
    load_file,
    read_bounded,
)
from qa.errors import InputError

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


@dataclass(frozen=True)
class Added:
    """What happened to one file given to `copy_into_corpus`."""

    source: str
    status: str
    """`copied`, `present` (the same file is already in the corpus), `problem` (loaded, with a
    repair worth knowing; another record follows) or `failed` (not copied)."""
    reason: str = ""
    dest: Path | None = None
    articles: int = 0


def corpus_folder(root: Path, subdir: str) -> Path:
    """`root/subdir`, refused (`InputError`) unless it lies inside the corpus `root`."""
    target = root / subdir
    if Path(subdir).is_absolute() or not target.resolve().is_relative_to(root.resolve()):
        raise InputError(f"--to {subdir!r}: not a folder inside the corpus {root}")
    return target


def copy_into_corpus(
    sources: Sequence[str], target_dir: Path, max_bytes: int = DEFAULT_MAX_BYTES
) -> Iterator[Added]:
    """Copy each source file (or the article files of each source folder) into
    `target_dir`, one `Added` record at a time."""
    for given in sources:
        if _URL.match(given) or given.startswith("www."):
            yield Added(given, "failed", "web addresses are not fetched (qa works offline); "
                        "save the page and add the saved file")  # fmt: skip
            continue
        path = Path(given)
        if not path.exists():
            yield Added(given, "failed", "no such file")
            continue
        if not (path.is_file() or path.is_dir()):
            # a named pipe blocks a reader, a device never ends: neither is an article
            yield Added(given, "failed", f"{file_kind(path.stat().st_mode)}, not an article file")
            continue
        files = [path] if path.is_file() else list(iter_corpus_files(path))
        for file in files:
            yield from _copy_one(file, path, target_dir, max_bytes)


def _copy_one(file: Path, given: Path, target_dir: Path, max_bytes: int) -> Iterator[Added]:
    source = str(file)
    name = file.name if given.is_file() else file.relative_to(given).as_posix()
    refusal = None if given.is_file() else entry_problem(file, given)
    if refusal is not None:
        yield Added(source, "failed", f"{refusal} (skipped)")
        return
    articles, problems = load_file(file, name, max_bytes=max_bytes)
    for problem in problems:
        yield Added(source, "problem", f"{problem.reason} ({problem.action})")
    if not articles:
        yield Added(source, "failed", "no usable article")
        return
    dest = target_dir / name
    if dest.exists() or dest.is_symlink():
        try:
            # bounded, and refusing a pipe or a device: comparing must never hang or flood
            same = read_bounded(dest, max_bytes) == read_bounded(file, max_bytes)
        except (SkipFile, OSError) as exc:
            reason = exc if isinstance(exc, SkipFile) else (exc.strerror or exc)
            yield Added(source, "failed", f"{dest} exists and cannot be compared ({reason}); "
                        "not copied", dest)  # fmt: skip
            return
        if same:
            yield Added(source, "present", f"already in the corpus as {dest}", dest)
        else:
            yield Added(source, "failed", f"{dest} exists with other content; not copied", dest)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        shutil.copyfile(file, tmp)
        os.replace(tmp, dest)
    except BaseException:
        # a full disk or an interruption leaves no partial copy in the corpus
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    yield Added(source, "copied", "", dest, len(articles))
