"""The one small error hierarchy of the core; the CLI turns it into a one-line message."""

from __future__ import annotations

import errno
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.index.progress import UpdateReport


class QAError(Exception):
    """An error the user can act on: shown as one line, never as a traceback."""

    exit_code = 1


class CorpusError(QAError):
    """The corpus folder or file cannot be read at all."""


class IndexMissingError(QAError):
    """A command needs an index and there is none where it looked."""


class IndexBusyError(QAError):
    """Another process holds the index's write lock."""


class IndexMismatchError(QAError):
    """The index was built with other settings (model, chunking) than the ones asked for."""


class MassRemovalError(QAError):
    """An update would remove most of an index (an emptied or wrong corpus folder)."""


class Cancelled(QAError):
    """Cancelled (`sync_index(cancel=...)`) before the point of no return: nothing was
    changed."""

    exit_code = 130


class CommittedInterrupt(QAError):
    """Cancelled or interrupted after the point of no return: the update *was* committed.

    `report` says what changed; the index is usable (a vector file left behind the store is
    rebuilt from the stored vectors when the index is next opened).
    """

    exit_code = 130

    def __init__(self, message: str, report: UpdateReport) -> None:
        super().__init__(message)
        self.report = report


class IndexCorruptError(QAError):
    """The index files cannot be read."""


class StorageError(QAError):
    """A file cannot be written: the disk is full, or the folder is read-only."""


def storage_reason(exc: BaseException) -> str | None:
    """Why a write failed, when the cause is the storage (the disk is full, the file system
    or folder is read-only), found anywhere in the exception's chain: a full disk during a
    SQLite commit surfaces as "cannot rollback - no transaction is active", whose context is
    the real cause. None for anything else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            if current.errno in (errno.ENOSPC, errno.EDQUOT):
                return "the disk is full"
            if current.errno == errno.EROFS:
                return "the file system is read-only"
            if current.errno in (errno.EACCES, errno.EPERM):
                return "it is not writable (permission denied)"
        if isinstance(current, sqlite3.Error):
            message = str(current).lower()
            if "disk is full" in message:
                return "the disk is full"
            if "readonly" in message or "read-only" in message:
                return "it is read-only"
        current = current.__cause__ or current.__context__
    return None


class ModelError(QAError):
    """The embedding model cannot be loaded or is not the file it claims to be."""


class InputError(QAError):
    """A file given on the command line (questions, articles) cannot be used."""


class ReportedInterrupt(KeyboardInterrupt):
    """Ctrl+C in a command that has already told the user what it kept (and how to go on):
    the command line exits 130 without a second message."""
