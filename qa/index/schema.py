"""The index folder's files and the SQLite store: connecting (readers and the one writer),
the meta table, the settings every vector shares, opening for a write (with repair and the
migrations of `qa.index.migrations`), the write lock.

- `store.sqlite` is the source of truth: files seen, unique article texts ("documents"),
  articles (one per path or record, pointing at a document, so syndicated copies are stored
  and embedded once), chunks with offsets and their vectors, and an FTS5 table for BM25.
  Every build or update is one transaction, in WAL mode so readers keep the last committed
  state while a writer works.
- `.lock` keeps a second writer out.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.chunking import ChunkSettings
from qa.errors import (
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    QAError,
    StorageError,
    storage_reason,
)
from qa.index.migrations import KEYWORD_TABLE, migrate, transaction

FORMAT_VERSION = 2


STORE_FILE = "store.sqlite"


FAISS_FILE = "vectors.faiss"


MANIFEST_FILE = "manifest.json"


LOCK_FILE = ".lock"


AUTO_FAISS = "auto"


DEFAULT_FAISS = AUTO_FAISS
"""Chosen by size (`faiss_factory_for`); `--faiss FACTORY` picks one."""


QUICK_CHECK_LIMIT = 1 << 30
WAL_SIZE_LIMIT = 64 << 20


@contextlib.contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """Exclusive writer lock; released by the OS if the process dies."""
    path = index_dir / LOCK_FILE
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as exc:
        reason = storage_reason(exc)
        if reason is None:
            raise
        raise StorageError(
            f"{index_dir}: cannot write the index: {reason}. Questions still work; building "
            "or updating it needs a writable folder"
        ) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IndexBusyError(
                f"{index_dir} is being written by {holder}; wait for it to finish and try again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"qa (pid {os.getpid()})")
        handle.flush()
        yield
    finally:
        handle.close()


def connect(path: Path, readonly: bool = False, immutable: bool = False) -> sqlite3.Connection:
    if readonly:
        flags = "mode=ro&immutable=1" if immutable else "mode=ro"
        conn = sqlite3.connect(
            f"file:{path}?{flags}", uri=True, check_same_thread=False, isolation_level=None
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # A build is one transaction, so the WAL grows to the size of the index (24 GB for a
        # million articles) and would stay that big on disk: cut it back after checkpoints.
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def connect_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection, also to an index in a read-only folder or on read-only media.

    A WAL database normally needs its `-shm` file created even for reading; where that is
    impossible (nobody can write there, so nobody can change the store either) the store
    is opened as immutable.
    """
    try:
        conn = connect(path, readonly=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        message = str(exc).lower()
        if "readonly" not in message and "unable to open" not in message:
            raise
    return connect(path, readonly=True, immutable=True)


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    return {row["key"]: row["value"] for row in conn.execute("SELECT key, value FROM meta")}


def set_meta(conn: sqlite3.Connection, **values: Any) -> None:
    conn.executemany(
        "INSERT INTO meta(key, value) VALUES(?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()],
    )


@dataclass(frozen=True)
class IndexSettings:
    """What vectors in one index must share; a mismatch means `build`, never a mix."""

    model: str
    weights_sha256: str | None
    backend: str
    dimension: int
    chunking: ChunkSettings
    faiss: str = DEFAULT_FAISS

    def as_meta(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "weights_sha256": self.weights_sha256 or "",
            "backend": self.backend,
            "dimension": str(self.dimension),
            "chunking": self.chunking.as_dict(),
            "faiss": self.faiss,
        }

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> IndexSettings:
        problem = meta_problem(meta)
        if problem is not None:
            raise IndexCorruptError(
                f"index settings are unreadable ({problem}); run qa index build"
            )
        return cls(
            model=meta["model"],
            weights_sha256=meta.get("weights_sha256") or None,
            backend=meta.get("backend", "torch"),
            dimension=int(meta["dimension"]),
            chunking=ChunkSettings(**json.loads(meta["chunking"])),
            faiss=meta.get("faiss", DEFAULT_FAISS),
        )


MAX_DIMENSION = 8192
COUNT_KEYS = ("articles", "documents", "chunks")


def meta_problem(meta: dict[str, str]) -> str | None:
    """What is wrong with an index's stored settings and counts, or None: every value is
    checked when an index is opened, so a damaged one is reported there (not as an
    AssertionError or a ValueError deep in a question or in `status`)."""
    for key in ("model", "dimension", "chunking"):
        if not meta.get(key):
            return f"'{key}' is missing"
    dimension = meta["dimension"]
    if not (dimension.isascii() and dimension.isdigit() and 0 < int(dimension) <= MAX_DIMENSION):
        return f"dimension {dimension[:20]!r} is not a vector size"
    for key in COUNT_KEYS:
        value = meta.get(key, "0")
        if not (value.isascii() and value.isdigit()):
            return f"{key} {value[:20]!r} is not a count"
    shown = repr(meta["chunking"][:40])
    try:
        chunking = json.loads(meta["chunking"])
        if not isinstance(chunking, dict) or not all(
            isinstance(chunking.get(key, 1), int) and not isinstance(chunking.get(key), bool)
            for key in ("max_tokens", "overlap_sentences", "max_word_pieces")
        ):
            return f"chunking {shown} is not chunk settings"
        ChunkSettings(**chunking)
    except (ValueError, TypeError, QAError) as exc:
        return f"chunking {shown} is not chunk settings ({exc})"
    return None


def not_a_store(store_path: Path) -> IndexCorruptError | None:
    """The error for a store path that is not a file (a folder in its place): never deleted
    for a rebuild, it may hold someone's files."""
    if store_path.exists() and not store_path.is_file():
        return IndexCorruptError(
            f"{store_path} is a folder, not the index's store; move it away, then build the "
            f"index again (qa index build --index {store_path.parent})"
        )
    return None


def open_for_write(store_path: Path, full: bool) -> sqlite3.Connection:
    problem = not_a_store(store_path)
    if problem is not None:
        raise problem
    if store_path.exists():
        try:
            conn = connect(store_path)
            version = conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
            # quick_check reads the whole file: 0.05 s for the 80 MB BBC index, minutes for
            # a million articles. Above QUICK_CHECK_LIMIT damage is found by the queries
            # that meet it (and reported the same way, by _damage_reported).
            small = store_path.stat().st_size <= QUICK_CHECK_LIMIT
            damage = conn.execute("PRAGMA quick_check").fetchone()[0] if small else "ok"
            if damage != "ok":
                # A build needs nothing from the old store: a damaged one is started afresh
                # rather than failing half-way through deleting its rows. An update refuses.
                # (0.05 s on the 80 MB BBC index: cheap next to what a missed damage costs.)
                raise sqlite3.DatabaseError(f"quick_check: {damage}")
        except sqlite3.DatabaseError as exc:
            if not full:
                raise IndexCorruptError(
                    f"{store_path} cannot be read ({exc}); rebuild it from the corpus with: "
                    f"qa index build --index {store_path.parent}"
                ) from exc
            with contextlib.suppress(Exception):
                conn.close()
            _remove_store(store_path)
            conn = connect(store_path)
            version = None
        else:
            if version is not None and version[0] != str(FORMAT_VERSION):
                conn.close()
                if not full:
                    raise IndexMismatchError(
                        f"{store_path} has index format {version[0]}, this qa writes "
                        f"{FORMAT_VERSION}; run qa index build"
                    )
                _remove_store(store_path)
                conn = connect(store_path)
    else:
        conn = connect(store_path)
    migrate(conn)
    _repair_fts(conn)
    return conn


def _repair_fts(conn: sqlite3.Connection) -> None:
    """The keyword table is derived from the stored chunks: made again and refilled when it
    was lost, refilled when it holds another number of rows."""
    chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    had_fts = (
        conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunks_fts'").fetchone() is not None
    )
    # FTS5 keeps one row a chunk in its docsize table: counting those is cheap, while
    # count(*) on the FTS table itself reads every chunk's text (20 s, cold, at 2.4 M chunks)
    if had_fts and _fts_rows(conn) == chunks:
        return
    with transaction(conn):
        conn.execute(KEYWORD_TABLE)
        conn.execute("DELETE FROM chunks_fts")
        conn.execute(
            "INSERT INTO chunks_fts(rowid, title, text) SELECT c.id, d.title, "
            "substr(d.body, c.char_start + 1, c.char_end - c.char_start) "
            "FROM chunks c JOIN documents d ON d.id = c.doc_id"
        )


def _fts_rows(conn: sqlite3.Connection) -> int:
    try:
        return int(conn.execute("SELECT count(*) FROM chunks_fts_docsize").fetchone()[0])
    except sqlite3.OperationalError:  # no docsize table: count the hard way
        return int(conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0])


def _remove_store(store_path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{store_path}{suffix}")


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """`manifest.json` of an index, or {} when it is missing or unreadable (then nothing in
    it can vouch for the FAISS file, which is rebuilt)."""
    try:
        manifest = json.loads((index_dir / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def stored_corpus_path(corpus: Path, index_dir: Path) -> str:
    """How an index records its corpus: relative to the index folder when the two share a
    parent folder (`../corpus`, so a copied or moved project keeps pointing at its own
    corpus), else absolute."""
    corpus, index_dir = corpus.resolve(), index_dir.resolve()
    if corpus.is_relative_to(index_dir.parent):
        return os.path.relpath(corpus, index_dir)
    return str(corpus)


def resolve_stored_corpus(stored: str, index_dir: Path) -> Path:
    """The corpus folder an index recorded (see `stored_corpus_path`)."""
    path = Path(stored)
    return path if path.is_absolute() else (index_dir / path).resolve()
