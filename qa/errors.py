"""The one small error hierarchy of the core; the CLI turns it into a one-line message."""

from __future__ import annotations


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


class CommittedInterrupt(QAError):
    """Cancelled or interrupted after the point of no return: the update *was* committed.

    `report` says what changed; the index is usable (a vector file left behind the store is
    rebuilt from the stored vectors when the index is next opened).
    """

    exit_code = 130

    def __init__(self, message: str, report: object) -> None:
        super().__init__(message)
        self.report = report


class IndexCorruptError(QAError):
    """The index files cannot be read."""


class ModelError(QAError):
    """The embedding model cannot be loaded or is not the file it claims to be."""


class InputError(QAError):
    """A file given on the command line (questions, articles) cannot be used."""


class ReportedInterrupt(KeyboardInterrupt):
    """Ctrl+C in a command that has already told the user what it kept (and how to go on):
    the command line exits 130 without a second message."""
