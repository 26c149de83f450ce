"""The index on disk: build, update, open and status.

- `store.sqlite` is the source of truth: files seen, unique article texts ("documents"),
  articles (one per path or record, pointing at a document, so syndicated copies are stored
  and embedded once), chunks with offsets and their vectors, and an FTS5 table for BM25.
  Every build or update is one transaction, in WAL mode so readers keep the last committed
  state while a writer works.
- `vectors.faiss` is derived: an `IndexIDMap2` keyed by chunk id, written to a temporary file
  and moved into place. `manifest.json` (written last) records the SQLite generation it was
  built from; a missing, stale or corrupt FAISS file is rebuilt from the stored vectors.
- `.lock` keeps a second writer out.

Every build or update is one write transaction, embedding included (a slice of chunks at a
time, so memory does not grow with the corpus): an error or interruption at any point before
COMMIT rolls it back and leaves the previous index as it was, and readers see that state
until the commit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import math
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qa.articles import (
    DEFAULT_MAX_BYTES,
    Article,
    Problem,
    entry_problem,
    iter_corpus_files,
    load_file,
)
from qa.chunking import Chunk, Chunker, ChunkSettings, embed_text
from qa.errors import (
    CommittedInterrupt,
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    MassRemovalError,
    QAError,
)
from qa.text import sentence_stems

if TYPE_CHECKING:
    import numpy as np

    from qa.embedding import Encoder, ProgressCallback

FORMAT_VERSION = 2
STORE_FILE = "store.sqlite"
FAISS_FILE = "vectors.faiss"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
AUTO_FAISS = "auto"
DEFAULT_FAISS = AUTO_FAISS
"""Chosen by size (`faiss_factory_for`); `--faiss FACTORY` picks one."""
FLAT_LIMIT = 200_000
"""Chunks below which "auto" is exact search: at 200,000 a Flat search takes about 15 ms."""
NPROBE = 64
"""Inverted lists an "auto" IVF index searches."""
TRAIN_SAMPLE = 100_000
QUICK_CHECK_LIMIT = 1 << 30
VECTOR_BATCH = 50_000
SLICE_CHUNKS = 50_000
"""Chunks embedded and written at a time, inside the one write transaction."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL, problems TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT, sha256 TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL, body TEXT NOT NULL, paragraphs TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, ref TEXT NOT NULL UNIQUE, path TEXT NOT NULL, record TEXT,
    doc_id INTEGER NOT NULL REFERENCES documents(id), title TEXT NOT NULL, byline TEXT,
    published TEXT, url TEXT, source TEXT, categories TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS articles_path ON articles(path);
CREATE INDEX IF NOT EXISTS articles_doc ON articles(doc_id);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id INTEGER NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL, char_start INTEGER NOT NULL, char_end INTEGER NOT NULL,
    token_count INTEGER NOT NULL, sentences TEXT NOT NULL, vector BLOB NOT NULL,
    sentence_vectors BLOB, stems TEXT
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, text, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""


@dataclass(frozen=True)
class Progress:
    """A progress report from a long operation."""

    stage: str
    """`scan`, `chunk`, `model` (loading it), `embed`, `write` or `faiss`."""
    done: int
    total: int
    detail: str = ""


ProgressFn = Callable[[Progress], None]

STAGES: dict[str, tuple[str, str]] = {
    "scan": ("Reading files", "files"),
    "chunk": ("Chunking", "articles"),
    "model": ("Loading model", ""),
    "embed": ("Embedding", "chunks"),
    "write": ("Writing store", ""),
    "faiss": ("Building FAISS", ""),
    "questions": ("Questions", "questions"),
}
"""What each progress stage is called in front ends, and the unit it counts."""


@dataclass
class UpdateReport:
    """What a build or update did (printed by `qa index update --json`)."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    renamed: int = 0
    unchanged: int = 0
    embedded_chunks: int = 0
    embedded_documents: int = 0
    articles: int = 0
    chunks: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    built: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """`3 added, 1 changed, 0 removed, 0 renamed`"""
        return (
            f"{self.added:,} added, {self.changed:,} changed, {self.removed:,} removed, "
            f"{self.renamed:,} renamed"
        )


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- locking


@contextlib.contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """Exclusive writer lock; released by the OS if the process dies."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / LOCK_FILE
    handle = path.open("a+")
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


# --------------------------------------------------------------------------- connections


def _connect(path: Path, readonly: bool = False, immutable: bool = False) -> sqlite3.Connection:
    if readonly:
        flags = "mode=ro&immutable=1" if immutable else "mode=ro"
        conn = sqlite3.connect(
            f"file:{path}?{flags}", uri=True, check_same_thread=False, isolation_level=None
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def _connect_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection, also to an index in a read-only folder or on read-only media.

    A WAL database normally needs its `-shm` file created even for reading; where that is
    impossible (nobody can write there, so nobody can change the store either) the store
    is opened as immutable.
    """
    try:
        conn = _connect(path, readonly=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        message = str(exc).lower()
        if "readonly" not in message and "unable to open" not in message:
            raise
    return _connect(path, readonly=True, immutable=True)


def _meta(conn: sqlite3.Connection) -> dict[str, str]:
    return {row["key"]: row["value"] for row in conn.execute("SELECT key, value FROM meta")}


def _set_meta(conn: sqlite3.Connection, **values: Any) -> None:
    conn.executemany(
        "INSERT INTO meta(key, value) VALUES(?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()],
    )


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------- settings


class Embedder(Protocol):
    """Embeds chunk texts somewhere other than in this process (`qa.cluster.RayEmbedder`):
    vectors in input order and, where the encoder gives them, the vectors of each text's
    sentence `spans`."""

    def embed(
        self,
        encoder: Encoder,
        texts: Sequence[str],
        spans: Sequence[list[tuple[int, int]]],
        progress: ProgressCallback,
    ) -> tuple[np.ndarray, list[np.ndarray] | None]: ...


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
        try:
            return cls(
                model=meta["model"],
                weights_sha256=meta.get("weights_sha256") or None,
                backend=meta.get("backend", "torch"),
                dimension=int(meta["dimension"]),
                chunking=ChunkSettings(**json.loads(meta["chunking"])),
                faiss=meta.get("faiss", DEFAULT_FAISS),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise IndexCorruptError(
                f"index settings are unreadable ({exc}); run qa index build"
            ) from exc


# --------------------------------------------------------------------------- scanning


@dataclass
class _FileScan:
    path: str
    size: int
    mtime_ns: int
    sha256: str
    articles: list[Article] | None
    """None: unchanged since the last run (not parsed)."""
    problems: list[Problem]


def _scan(
    root: Path, stored: dict[str, sqlite3.Row], full: bool, max_bytes: int, progress: ProgressFn
) -> tuple[list[_FileScan], set[str]]:
    if root.is_file():
        files = [root]
        base = root.parent
    elif root.is_dir():
        folder_problems: list[Problem] = []
        files = list(iter_corpus_files(root, folder_problems))
        base = root
    else:
        raise QAError(f"{root}: no such corpus folder or file")
    scans: list[_FileScan] = []
    if root.is_dir():
        # An unreadable folder is reported; what was indexed from it stays (see `gone`).
        scans.extend(_FileScan(p.path, 0, 0, "", [], [p]) for p in folder_problems)
    for number, file in enumerate(files, 1):
        rel = file.relative_to(base).as_posix()
        refusal = entry_problem(file, base) if root.is_dir() else None
        if refusal is not None:
            scans.append(_FileScan(rel, 0, 0, "", [], [Problem(rel, refusal)]))
            continue
        try:
            stat = file.stat()
        except OSError as exc:
            scans.append(_FileScan(rel, 0, 0, "", [], [Problem(rel, f"cannot read: {exc}")]))
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
                _FileScan(rel, stat.st_size, stat.st_mtime_ns, row["sha256"], None, problems)
            )
            continue
        digest = _file_digest(file) if stat.st_size <= max_bytes else f"size:{stat.st_size}"
        if not full and row is not None and row["sha256"] == digest:
            problems = [Problem(**p) for p in json.loads(row["problems"])]
            scans.append(_FileScan(rel, stat.st_size, stat.st_mtime_ns, digest, None, problems))
            continue
        articles, problems = load_file(file, rel, max_bytes=max_bytes)
        scans.append(_FileScan(rel, stat.st_size, stat.st_mtime_ns, digest, articles, problems))
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


# --------------------------------------------------------------------------- writing


def _no_progress(_: Progress) -> None:
    pass


def sync_index(
    corpus: Path,
    index_dir: Path,
    encoder_factory: Callable[[IndexSettings | None], Encoder],
    *,
    full: bool = False,
    chunking: ChunkSettings | None = None,
    faiss_factory: str | None = None,
    progress: ProgressFn | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    batch_size: int | None = None,
    confirm_removal: Callable[[int, int], bool] | None = None,
    embedder: Embedder | None = None,
) -> UpdateReport:
    """Bring the index at `index_dir` in line with `corpus`.

    `full=True` is a build: every article is chunked and embedded again and the settings
    (model, chunking, FAISS type) may change. Otherwise only new and changed texts are
    embedded, and settings that differ from the index's are refused.

    `encoder_factory(settings)` is called with the index's settings (None for a new index)
    and only when something must be embedded or a new index is being set up.

    Removing more than half of the articles of an index (an emptied folder, a mistyped
    `--corpus`) needs `confirm_removal(removed, total)` to return True; without it, or when it
    returns False, `MassRemovalError` is raised and nothing is changed.

    `embedder` (e.g. `qa.cluster.RayEmbedder`) embeds the chunks elsewhere; None: here.
    """
    started = time.perf_counter()
    progress = progress or _no_progress
    index_dir.mkdir(parents=True, exist_ok=True)
    with write_lock(index_dir), _damage_reported(index_dir):
        _remove_stale_temp(index_dir)
        store_path = index_dir / STORE_FILE
        conn = _open_for_write(store_path, full)
        try:
            meta = _meta(conn)
            existing = IndexSettings.from_meta(meta) if "model" in meta else None
            report = UpdateReport(built=full or existing is None)
            settings, encoder = _settings_for(
                existing, full, chunking, faiss_factory, encoder_factory
            )

            stored_files = {row["path"]: row for row in conn.execute("SELECT * FROM files")}
            scans, gone = _scan(corpus, stored_files, full, max_bytes, progress)
            changed_paths = {s.path for s in scans if s.articles is not None} | gone

            old: dict[str, tuple[str, str]] = {}  # ref -> (article id, sha256)
            for path in changed_paths:
                for row in conn.execute(
                    "SELECT a.ref, a.id, d.sha256 FROM articles a JOIN documents d "
                    "ON d.id = a.doc_id WHERE a.path = ?",
                    (path,),
                ):
                    old[row["ref"]] = (row["id"], row["sha256"])
            new: dict[str, Article] = {}
            for scan in scans:
                for article in scan.articles or ():
                    new[article.ref] = article

            added = [ref for ref in new if ref not in old]
            removed = [ref for ref in old if ref not in new]
            changed = [ref for ref in new if ref in old and old[ref][1] != new[ref].sha256]
            removed_hashes = {old[ref][1] for ref in removed}
            report.renamed = sum(1 for ref in added if new[ref].sha256 in removed_hashes)
            report.added = len(added) - report.renamed
            report.removed = len(removed) - report.renamed
            report.changed = len(changed)
            total = int(conn.execute("SELECT count(*) FROM articles").fetchone()[0])
            mass_removal = report.removed > 0 and report.removed * 2 > total
            if mass_removal and not (confirm_removal and confirm_removal(report.removed, total)):
                raise MassRemovalError(
                    f"this would remove {report.removed:,} of the {total:,} articles in "
                    f"{index_dir} (is {corpus} the right corpus?); nothing was changed. "
                    "Pass --yes to remove them"
                )

            if (
                not full
                and existing is not None
                and _nothing_to_write(scans, changed_paths, stored_files, index_dir, meta)
            ):
                # A no-op update is a no-op: no new generation, no FAISS rewrite (an IVF or
                # HNSW index would be trained again), "updated" stays when it was.
                report.articles = int(meta.get("articles", 0))
                report.chunks = int(meta.get("chunks", 0))
                report.unchanged = report.articles
                report.skipped = _skipped(scans)
                report.seconds = round(time.perf_counter() - started, 3)
                return report

            known = {} if full else _document_ids(conn, {a.sha256 for a in new.values()})
            to_embed: dict[str, Article] = {}
            for article in new.values():
                if article.sha256 not in known and article.sha256 not in to_embed:
                    to_embed[article.sha256] = article

            if to_embed and encoder is None:
                encoder = encoder_factory(settings)
            chunked = _chunk_articles(list(to_embed.values()), encoder, settings, progress)

            # One transaction for the whole update, embedding included: chunks are embedded
            # and written a slice at a time (memory follows the slice), and anything that
            # fails or is interrupted before COMMIT rolls everything back. Readers (WAL) see
            # the previous state throughout.
            conn.execute("BEGIN IMMEDIATE")
            try:
                if full:
                    for table in ("files", "articles", "chunks", "chunks_fts", "documents"):
                        conn.execute(f"DELETE FROM {table}")
                embedded = _embed_slices(chunked, encoder, settings, progress, batch_size, embedder)
                changes = _write(conn, scans, gone, old, new, embedded, track=not full)
                progress(Progress("write", 0, 1))
                previous_generation = None if full else meta.get("generation")
                generation = f"{uuid.uuid4().hex[:12]}"
                counts = conn.execute(
                    "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM chunks),"
                    " (SELECT count(*) FROM documents)"
                ).fetchone()
                now = _now()
                _set_meta(
                    conn,
                    format_version=str(FORMAT_VERSION),
                    generation=generation,
                    corpus=stored_corpus_path(corpus, index_dir),
                    updated_at=now,
                    articles=str(counts[0]),
                    chunks=str(counts[1]),
                    documents=str(counts[2]),
                    **settings.as_meta(),
                )
                if report.built:
                    _set_meta(conn, built_at=now)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            # The point of no return: from here on, a cancel or Ctrl-C no longer undoes the
            # update, and the caller is told what was committed, not "nothing changed".
            report.articles, report.chunks = int(counts[0]), int(counts[1])
            total_current = len(new) + sum(
                _count_articles(conn, s.path) for s in scans if s.articles is None
            )
            report.unchanged = total_current - report.added - report.changed - report.renamed
            report.embedded_documents = len(chunked)
            report.embedded_chunks = sum(len(chunks) for _, chunks in chunked)
            report.skipped = _skipped(scans)
            try:
                progress(Progress("write", 1, 1))
                _write_faiss(conn, index_dir, settings, progress, changes, previous_generation)
            except BaseException as exc:
                report.seconds = round(time.perf_counter() - started, 3)
                raise CommittedInterrupt(
                    f"interrupted after the update was committed ({report.summary()}); the "
                    "index is usable, its vector file is rebuilt from the store when next opened",
                    report,
                ) from exc
        finally:
            conn.close()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _skipped(scans: list[_FileScan]) -> list[dict[str, str]]:
    """The file problems of a scan, as `UpdateReport.skipped` lists them."""
    return [p.as_dict() for scan in scans for p in scan.problems]


def _nothing_to_write(
    scans: list[_FileScan],
    changed_paths: set[str],
    stored_files: dict[str, sqlite3.Row],
    index_dir: Path,
    meta: dict[str, str],
) -> bool:
    """True when the store already says everything an update would write: no file changed
    (not even its modification time) and the FAISS file is the store's generation."""
    if changed_paths:
        return False
    if any(
        scan.path not in stored_files or stored_files[scan.path]["mtime_ns"] != scan.mtime_ns
        for scan in scans
    ):
        return False
    try:
        manifest = json.loads((index_dir / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (
        manifest.get("faiss_generation") == meta.get("generation")
        and (index_dir / FAISS_FILE).is_file()
    )


@contextlib.contextmanager
def _damage_reported(index_dir: Path) -> Iterator[None]:
    """A store that fails mid-update ("database disk image is malformed") is reported with
    the command that rebuilds it; the failed transaction changed nothing."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptError(
            f"{index_dir / STORE_FILE} is damaged ({exc}); nothing was changed. Rebuild it "
            f"from the corpus with: qa index build --index {index_dir}"
        ) from exc


def _remove_stale_temp(index_dir: Path) -> None:
    """Temporary files (`.vectors.faiss.<pid>.tmp`) left by a writer that was killed: with the
    write lock held, no live process is writing one."""
    for path in index_dir.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            path.unlink()


def _fill_stems(conn: sqlite3.Connection) -> None:
    """Sentence stems for the chunks of an index written before chunks stored them."""
    rows = conn.execute(
        "SELECT c.id, c.sentences, d.body FROM chunks c JOIN documents d ON d.id = c.doc_id "
        "WHERE c.stems IS NULL"
    ).fetchall()
    conn.executemany(
        "UPDATE chunks SET stems = ? WHERE id = ?",
        [
            (sentence_stems(body, [tuple(s) for s in json.loads(sentences)]), chunk_id)
            for chunk_id, sentences, body in rows
        ],
    )


def _open_for_write(store_path: Path, full: bool) -> sqlite3.Connection:
    if store_path.exists():
        try:
            conn = _connect(store_path)
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
            conn = _connect(store_path)
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
                conn = _connect(store_path)
    else:
        conn = _connect(store_path)
    had_fts = (
        conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunks_fts'").fetchone() is not None
    )
    conn.executescript(SCHEMA)
    _repair_fts(conn, had_fts)
    if "stems" not in _columns(conn, "chunks"):
        # an index from before the column: add and fill it once, in one transaction
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("ALTER TABLE chunks ADD COLUMN stems TEXT")
            _fill_stems(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return conn


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


def _repair_fts(conn: sqlite3.Connection, had_fts: bool) -> None:
    """The keyword index is derived from the stored chunks: refill it when it was lost (a
    dropped table comes back empty from SCHEMA) or holds another number of rows."""
    chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    if had_fts and conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == chunks:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM chunks_fts")
        conn.execute(
            "INSERT INTO chunks_fts(rowid, title, text) SELECT c.id, d.title, "
            "substr(d.body, c.char_start + 1, c.char_end - c.char_start) "
            "FROM chunks c JOIN documents d ON d.id = c.doc_id"
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _remove_store(store_path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{store_path}{suffix}")


def _settings_for(
    existing: IndexSettings | None,
    full: bool,
    chunking: ChunkSettings | None,
    faiss_factory: str | None,
    encoder_factory: Callable[[IndexSettings | None], Encoder],
) -> tuple[IndexSettings, Encoder | None]:
    if existing is not None and not full:
        # An update keeps the index's settings; asking for others is a build.
        if chunking is not None and chunking != existing.chunking:
            raise IndexMismatchError(
                f"the index was built with chunks of {existing.chunking.max_tokens} tokens, "
                f"not {chunking.max_tokens}; run qa index build to re-chunk everything"
            )
        if faiss_factory is not None and faiss_factory != existing.faiss:
            raise IndexMismatchError(
                f"the index uses FAISS {existing.faiss!r}; run qa index build to change it"
            )
        from qa.embedding import DEFAULT_MODEL, DEFAULT_MODEL_SHA256

        if (
            existing.model == DEFAULT_MODEL
            and existing.weights_sha256
            and existing.weights_sha256 != DEFAULT_MODEL_SHA256
        ):
            # Known without loading anything: the bundled model only loads with these weights,
            # so new chunks would get vectors of other weights than the stored ones.
            raise IndexMismatchError(
                f"the index's vectors were made with {DEFAULT_MODEL} weights with sha256 "
                f"{existing.weights_sha256[:12]}..., not the installed "
                f"{DEFAULT_MODEL_SHA256[:12]}...; rebuild the index with `qa index build`"
            )
        return existing, None
    encoder = encoder_factory(None if full else existing)
    settings = IndexSettings(
        model=encoder.name,
        weights_sha256=encoder.weights_sha256,
        backend=encoder.backend,
        dimension=encoder.dimension,
        chunking=chunking or ChunkSettings(max_word_pieces=encoder.max_word_pieces),
        faiss=faiss_factory or DEFAULT_FAISS,
    )
    if settings.chunking.max_word_pieces != encoder.max_word_pieces:
        # The model's own window always wins: a chunk must never be truncated by it.
        chunking = replace(settings.chunking, max_word_pieces=encoder.max_word_pieces)
        settings = replace(settings, chunking=chunking)
    return settings, encoder


def check_encoder(settings: IndexSettings, encoder: Encoder) -> None:
    """Refuse to mix vectors from a different model, weights or backend."""
    differences = []
    if encoder.name != settings.model:
        differences.append(f"model {settings.model}, not {encoder.name}")
    if encoder.backend != settings.backend:
        differences.append(f"backend {settings.backend}, not {encoder.backend}")
    if settings.weights_sha256 and encoder.weights_sha256 != settings.weights_sha256:
        installed = (encoder.weights_sha256 or "unknown")[:12]
        differences.append(
            f"model weights with sha256 {settings.weights_sha256[:12]}..., not the installed "
            f"{installed}..."
        )
    if differences:
        raise IndexMismatchError(
            f"the index's vectors were made with {'; '.join(differences)}; vectors of two "
            "models must not be mixed: rebuild the index with `qa index build`"
        )


def _document_ids(conn: sqlite3.Connection, hashes: set[str]) -> dict[str, int]:
    """The stored documents among `hashes` (sha256 -> id)."""
    found: dict[str, int] = {}
    ordered = sorted(hashes)
    for start in range(0, len(ordered), 500):
        part = ordered[start : start + 500]
        for sha, doc_id in conn.execute(
            f"SELECT sha256, id FROM documents WHERE sha256 IN ({','.join('?' * len(part))})",
            part,
        ):
            found[sha] = doc_id
    return found


def _count_articles(conn: sqlite3.Connection, path: str) -> int:
    return int(conn.execute("SELECT count(*) FROM articles WHERE path = ?", (path,)).fetchone()[0])


Embedded = tuple[Article, list[Chunk], "np.ndarray", list["bytes | None"]]
"""One article's chunks with their vectors and float16 sentence-vector blobs."""


def _chunk_articles(
    articles: list[Article], encoder: Encoder | None, settings: IndexSettings, progress: ProgressFn
) -> list[tuple[Article, list[Chunk]]]:
    if not articles:
        return []
    assert encoder is not None
    check_encoder(settings, encoder)
    chunker = Chunker(settings.chunking, encoder.count_word_pieces)
    chunked = []
    for number, article in enumerate(articles, 1):
        chunked.append((article, chunker.chunk(article.id, article.title, article.body)))
        if number % 100 == 0 or number == len(articles):
            progress(Progress("chunk", number, len(articles)))
    return chunked


def _embed_slices(
    chunked: list[tuple[Article, list[Chunk]]],
    encoder: Encoder | None,
    settings: IndexSettings,
    progress: ProgressFn,
    batch_size: int | None,
    embedder: Embedder | None = None,
) -> Iterator[Embedded]:
    """The chunks' vectors, `SLICE_CHUNKS` chunks at a time: memory follows the slice, not
    the corpus (a million articles hold 11 GB of sentence vectors)."""
    if not chunked:
        return
    assert encoder is not None
    total = sum(len(chunks) for _, chunks in chunked)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(Progress("embed", done, total))

    if embedder is None:
        progress(Progress("model", 0, 1))
        encoder.load()
        progress(Progress("model", 1, 1))
    progress(Progress("embed", 0, total))
    start = 0
    while start < len(chunked):
        stop, size = start, 0
        while stop < len(chunked) and (size < SLICE_CHUNKS or stop == start):
            size += len(chunked[stop][1])
            stop += 1
        yield from _embed(chunked[start:stop], encoder, settings, advance, batch_size, embedder)
        start = stop


def _embed(
    chunked: list[tuple[Article, list[Chunk]]],
    encoder: Encoder,
    settings: IndexSettings,
    advance: Callable[[int], None],
    batch_size: int | None,
    embedder: Embedder | None,
) -> Iterator[Embedded]:
    import numpy as np

    texts = [
        embed_text(article.title, chunk.text) for article, chunks in chunked for chunk in chunks
    ]
    sentence_vectors: list[np.ndarray] | None = None
    with_spans = getattr(encoder, "encode_with_spans", None)
    spans: list[list[tuple[int, int]]] = []
    if with_spans is not None or embedder is not None:
        # Sentence vectors from the same forward pass (see qa.minilm): offsets of each
        # sentence inside the embedded text "title. chunk".
        for article, chunks in chunked:
            for chunk in chunks:
                shift = len(embed_text(article.title, chunk.text)) - len(chunk.text)
                spans.append(
                    [(s - chunk.char_start + shift, e - chunk.char_start + shift)
                     for s, e in chunk.sentences]
                )  # fmt: skip
    if embedder is not None:
        # on a cluster (qa.cluster): the workers load the model, the driver never does
        vectors, sentence_vectors = embedder.embed(encoder, texts, spans, advance)
    elif with_spans is not None:
        vectors, sentence_vectors = with_spans(
            texts, spans, batch_size=batch_size, progress=advance
        )
    else:
        vectors = encoder.encode(texts, batch_size=batch_size, progress=advance)
    if vectors.shape != (len(texts), settings.dimension):
        raise QAError(f"encoder returned {vectors.shape} vectors for {len(texts)} chunks")
    position = 0
    for article, chunks in chunked:
        blobs: list[bytes | None] = [
            sentence_vectors[position + i].astype(np.float16).tobytes()
            if sentence_vectors is not None
            else None
            for i in range(len(chunks))
        ]
        yield (
            article,
            chunks,
            np.ascontiguousarray(vectors[position : position + len(chunks)], dtype=np.float32),
            blobs,
        )
        position += len(chunks)


def _write(
    conn: sqlite3.Connection,
    scans: list[_FileScan],
    gone: set[str],
    old: dict[str, tuple[str, str]],
    new: dict[str, Article],
    embedded: Iterable[Embedded],
    *,
    track: bool = True,
) -> VectorChanges:
    """Write one update's rows (inside the caller's transaction); what changed in the
    vectors is returned for FAISS. Costs follow the size of the change, not of the index."""
    changes = VectorChanges()
    # Articles of changed or removed files go; the new versions come back below. Their
    # documents may then be orphans (checked at the end).
    maybe_orphans: set[int] = set()
    for ref in old:
        row = conn.execute("SELECT doc_id FROM articles WHERE ref = ?", (ref,)).fetchone()
        if row is not None:
            maybe_orphans.add(int(row[0]))
        conn.execute("DELETE FROM articles WHERE ref = ?", (ref,))
    for path in gone:
        conn.execute("DELETE FROM files WHERE path = ?", (path,))

    doc_ids = _document_ids(conn, {article.sha256 for article in new.values()})
    for article, chunks, vectors, sentence_blobs in embedded:
        sha = article.sha256
        cursor = conn.execute(
            "INSERT INTO documents(sha256, title, body, paragraphs) VALUES(?, ?, ?, ?)",
            (sha, article.title, article.body, json.dumps(article.paragraphs)),
        )
        doc_id = int(cursor.lastrowid or 0)
        doc_ids[sha] = doc_id
        for chunk, vector, sentence_blob in zip(chunks, vectors, sentence_blobs):
            cursor = conn.execute(
                "INSERT INTO chunks(doc_id, ordinal, char_start, char_end, token_count, "
                "sentences, vector, sentence_vectors, stems) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    doc_id,
                    chunk.ordinal,
                    chunk.char_start,
                    chunk.char_end,
                    chunk.token_count,
                    json.dumps(chunk.sentences),
                    vector.tobytes(),
                    sentence_blob,
                    sentence_stems(article.body, chunk.sentences),
                ),
            )
            conn.execute(
                "INSERT INTO chunks_fts(rowid, title, text) VALUES(?, ?, ?)",
                (cursor.lastrowid, article.title, chunk.text),
            )
            if track:  # a build makes FAISS from the store instead
                changes.added_ids.append(int(cursor.lastrowid or 0))
                changes.added.append(vector)

    conn.executemany(
        "INSERT INTO articles(id, ref, path, record, doc_id, title, byline, published, url, "
        "source, categories) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                a.id,
                a.ref,
                a.path,
                a.record,
                doc_ids[a.sha256],
                a.title,
                a.byline,
                a.published,
                a.url,
                a.source,
                json.dumps(a.categories),
            )
            for a in new.values()
        ],
    )
    for scan in scans:
        if scan.articles is None:
            conn.execute("UPDATE files SET mtime_ns = ? WHERE path = ?", (scan.mtime_ns, scan.path))
            continue
        conn.execute(
            "INSERT OR REPLACE INTO files(path, size, mtime_ns, sha256, problems) "
            "VALUES(?, ?, ?, ?, ?)",
            (
                scan.path,
                scan.size,
                scan.mtime_ns,
                scan.sha256,
                json.dumps([p.as_dict() for p in scan.problems]),
            ),
        )

    # Documents no article points at any more leave SQLite, FTS and FAISS.
    orphans = [
        doc_id
        for doc_id in sorted(maybe_orphans)
        if conn.execute("SELECT 1 FROM articles WHERE doc_id = ? LIMIT 1", (doc_id,)).fetchone()
        is None
    ]
    for doc_id in orphans:
        changes.removed.extend(
            row[0] for row in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))
        )
        conn.execute(
            "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE doc_id = ?)",
            (doc_id,),
        )
        conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
    return changes


# --------------------------------------------------------------------------- FAISS


def faiss_factory_for(factory: str, count: int) -> str:
    """The FAISS structure for `count` vectors: `factory` itself, or for "auto" exact search
    (Flat) below `FLAT_LIMIT` and above it an inverted file with 8-bit scalar-quantised
    vectors (a quarter of Flat's memory: 3 M chunks in 1.2 GB instead of 4.6 GB), about
    2 * sqrt(count) lists, `NPROBE` of them searched."""
    if factory != AUTO_FAISS:
        return factory
    if count < FLAT_LIMIT:
        return "Flat"
    lists = 1 << max(8, min(16, round(math.log2(2 * math.sqrt(count)))))
    return f"IVF{lists},SQ8"


def _vector_batches(
    conn: sqlite3.Connection, dimension: int, batch: int = VECTOR_BATCH
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, vectors) of the stored chunks in id order, `batch` rows at a time: the vectors
    never all sit in Python objects at once."""
    import numpy as np

    last = -1
    while True:
        rows = conn.execute(
            "SELECT id, vector FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
        ).fetchall()
        if not rows:
            return
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
        yield ids, vectors.reshape(len(rows), dimension)
        last = int(ids[-1])


def _training_sample(conn: sqlite3.Connection, dimension: int, size: int) -> np.ndarray:
    """`size` stored vectors drawn at random (fixed seed) to train an IVF or SQ index."""
    import numpy as np

    ids = np.fromiter((row[0] for row in conn.execute("SELECT id FROM chunks")), dtype=np.int64)
    if len(ids) > size:
        ids = np.sort(np.random.default_rng(0).choice(ids, size, replace=False))
    parts = []
    for start in range(0, len(ids), 500):
        part = [int(i) for i in ids[start : start + 500]]
        rows = conn.execute(
            f"SELECT vector FROM chunks WHERE id IN ({','.join('?' * len(part))})", part
        ).fetchall()
        parts.append(np.frombuffer(b"".join(row[0] for row in rows), dtype=np.float32))
    return np.concatenate(parts).reshape(-1, dimension) if parts else np.empty((0, dimension))


def _empty_faiss(factory: str, dimension: int) -> Any:
    import faiss

    try:
        inner = faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise QAError(f"bad FAISS factory string {factory!r}: {str(exc).splitlines()[0]}") from exc
    return inner


def _train(inner: Any, factory: str, vectors: np.ndarray) -> None:
    import faiss

    if inner.is_trained:
        return
    if len(vectors) == 0:
        raise QAError(f"FAISS {factory!r} needs training vectors and the index is empty")
    ivf = faiss.try_extract_index_ivf(inner)
    if ivf is not None:
        ivf.cp.niter = 10  # k-means on 2 cores: 10 rounds instead of 25, same search quality
        ivf.nprobe = min(NPROBE, ivf.nlist)  # saved with the index
    try:
        inner.train(vectors)
    except RuntimeError as exc:
        raise QAError(
            f"FAISS {factory!r} cannot be trained on {len(vectors)} vectors "
            f"({str(exc).splitlines()[0]}); use fewer lists or the default"
        ) from exc


def build_faiss(ids: np.ndarray, vectors: np.ndarray, factory: str) -> Any:
    """An `IndexIDMap2` over `factory` (inner product) holding `vectors` under `ids`."""
    import faiss

    inner = _empty_faiss(faiss_factory_for(factory, len(vectors)), vectors.shape[1])
    _train(inner, factory, vectors)
    index = faiss.IndexIDMap2(inner)
    if len(vectors):
        index.add_with_ids(vectors, ids)
    return index


def build_faiss_from_store(conn: sqlite3.Connection, settings: IndexSettings) -> tuple[Any, str]:
    """`build_faiss` over every stored vector, read in batches and trained on a sample; and
    the factory string it was built with."""
    import faiss

    count = int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
    factory = faiss_factory_for(settings.faiss, count)
    inner = _empty_faiss(factory, settings.dimension)
    if not inner.is_trained:
        ivf = faiss.try_extract_index_ivf(inner)
        size = max(TRAIN_SAMPLE, 40 * ivf.nlist) if ivf is not None else TRAIN_SAMPLE
        _train(inner, factory, _training_sample(conn, settings.dimension, size))
    index = faiss.IndexIDMap2(inner)
    for ids, vectors in _vector_batches(conn, settings.dimension):
        index.add_with_ids(vectors, ids)
    return index, factory


@dataclass
class VectorChanges:
    """What one update did to the stored vectors, so FAISS can follow without a rebuild."""

    removed: list[int] = field(default_factory=list)
    added_ids: list[int] = field(default_factory=list)
    added: list[np.ndarray] = field(default_factory=list)


def _write_faiss(
    conn: sqlite3.Connection,
    index_dir: Path,
    settings: IndexSettings,
    progress: ProgressFn,
    changes: VectorChanges | None = None,
    previous_generation: str | None = None,
) -> Any:
    """The FAISS file for the committed store: the previous file with `changes` applied
    when it is that of `previous_generation` and its structure allows removals (Flat, IVF),
    else built again from every stored vector."""
    progress(Progress("faiss", 0, 1))
    meta = _meta(conn)
    updated = None
    if changes is not None and previous_generation:
        updated = _apply_changes(index_dir, settings, meta, changes, previous_generation)
    index, factory = updated or build_faiss_from_store(conn, settings)
    _save_faiss(index_dir, index, meta, factory)
    progress(Progress("faiss", 1, 1))
    return index


def _apply_changes(
    index_dir: Path,
    settings: IndexSettings,
    meta: dict[str, str],
    changes: VectorChanges,
    previous_generation: str,
) -> tuple[Any, str] | None:
    import faiss
    import numpy as np

    try:
        manifest = json.loads((index_dir / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None
    factory = manifest.get("faiss_factory") or settings.faiss
    chunks = int(meta.get("chunks", 0))
    if (
        manifest.get("faiss_generation") != previous_generation
        or "HNSW" in factory  # no removals: rebuilt
        or faiss_factory_for(settings.faiss, chunks) != factory  # grown past Flat
    ):
        return None
    try:
        index = faiss.read_index(str(index_dir / FAISS_FILE))
    except RuntimeError:
        return None
    if changes.removed:
        index.remove_ids(np.asarray(changes.removed, dtype=np.int64))  # type: ignore[arg-type]
    if changes.added:
        index.add_with_ids(
            np.vstack(changes.added).astype(np.float32, copy=False),
            np.asarray(changes.added_ids, dtype=np.int64),
        )
    return (index, factory) if index.ntotal == chunks else None


def _save_faiss(index_dir: Path, index: Any, meta: dict[str, str], factory: str) -> None:
    """The FAISS file, then the manifest that says which generation it was built from."""
    import faiss

    _atomic_write(index_dir / FAISS_FILE, faiss.serialize_index(index).tobytes())
    _write_manifest(index_dir, meta, int(index.ntotal), factory)


def _write_manifest(
    index_dir: Path, meta: dict[str, str], faiss_count: int, faiss_factory: str | None = None
) -> None:
    manifest = {
        "format_version": FORMAT_VERSION,
        "generation": meta.get("generation"),
        "faiss_generation": meta.get("generation"),
        "faiss_count": faiss_count,
        "model": meta.get("model"),
        "weights_sha256": meta.get("weights_sha256") or None,
        "backend": meta.get("backend"),
        "dimension": int(meta.get("dimension", 0)),
        "tokenizer_encoding": json.loads(meta.get("chunking", "{}")).get("encoding"),
        "chunking": json.loads(meta.get("chunking", "{}")),
        "faiss": meta.get("faiss"),
        "faiss_factory": faiss_factory,
        "corpus": meta.get("corpus"),
        "built_at": meta.get("built_at"),
        "updated_at": meta.get("updated_at"),
        "counts": {
            "articles": int(meta.get("articles", 0)),
            "documents": int(meta.get("documents", 0)),
            "chunks": int(meta.get("chunks", 0)),
        },
    }
    _atomic_write(
        index_dir / MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    )


# --------------------------------------------------------------------------- reading


class IndexReader:
    """A read-only view of a built index: SQLite rows and the FAISS structure.

    Safe to use while a writer updates the index: SQLite (WAL) shows the last committed
    state, and a FAISS file that does not match it is rebuilt from the stored vectors.
    """

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)
        store_path = self.index_dir / STORE_FILE
        if not store_path.exists():
            raise IndexMissingError(
                f"no index in {self.index_dir}; build one with: "
                f"qa index build --corpus DIR --index {self.index_dir}"
            )
        try:
            self.conn = _connect_reader(store_path)
            self.meta = _meta(self.conn)
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(
                f"{store_path} cannot be read ({exc}); rebuild it from the corpus with: "
                f"qa index build --index {self.index_dir}"
            ) from exc
        if self.meta.get("format_version") != str(FORMAT_VERSION) or "model" not in self.meta:
            raise IndexCorruptError(
                f"{store_path} is not a complete qa index of format {FORMAT_VERSION}; "
                "run qa index build"
            )
        self.settings = IndexSettings.from_meta(self.meta)
        self.has_stems = "stems" in _columns(self.conn, "chunks")
        """False for an index written before chunks stored their sentence stems."""
        self._faiss: Any = None
        self.faiss_rebuilt = False

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: every query inside sees the same committed state, however
        many updates commit meanwhile. A newer generation than the one loaded (an update
        committed since) is picked up here, FAISS included, so a long-running reader (the
        chat) searches the new chunks too.

        A damaged store becomes `IndexCorruptError` with the command that rebuilds it.
        """
        try:
            self.conn.execute("BEGIN")
            try:
                meta = _meta(self.conn)
                if meta.get("generation") != self.generation:
                    settings = IndexSettings.from_meta(meta)
                    if settings != self.settings:
                        raise IndexMismatchError(
                            f"{self.index_dir} was rebuilt with other settings; open it again"
                        )
                    self.meta = meta
                    self._faiss = None
                yield
            finally:
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from exc

    def damaged(self, exc: sqlite3.DatabaseError) -> IndexCorruptError:
        """The error to show for a failed query: what broke and the command that fixes it."""
        if "chunks_fts" in str(exc):
            return IndexCorruptError(
                f"{self.index_dir}: the keyword index is missing or damaged ({exc}); "
                f"rebuild it with: qa index update --index {self.index_dir}"
            )
        return IndexCorruptError(
            f"{self.index_dir / STORE_FILE} is damaged ({exc}); rebuild it from the corpus "
            f"with: qa index build --index {self.index_dir}"
        )

    def check(self) -> str:
        """SQLite's `PRAGMA quick_check` and the keyword index's presence: "ok" or what is
        wrong (a damaged page, a lost table)."""
        try:
            rows = self.conn.execute("PRAGMA quick_check").fetchall()
            problems = [str(row[0]) for row in rows if row[0] != "ok"]
            tables = {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            return f"damaged: {exc}; rebuild with qa index build"
        if problems:
            shown = "; ".join(problems[:3])
            return f"damaged ({len(problems)} problem(s): {shown}); rebuild with qa index build"
        if "chunks_fts" not in tables:
            return "the keyword index is missing; rebuild it with qa index update"
        return "ok"

    def __enter__(self) -> IndexReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def generation(self) -> str:
        return self.meta.get("generation", "")

    @property
    def faiss(self) -> Any:
        """The FAISS index, loaded once; rebuilt from SQLite if missing, stale or corrupt."""
        if self._faiss is None:
            self._faiss = self._load_faiss()
        return self._faiss

    def _load_faiss(self) -> Any:
        import faiss

        path = self.index_dir / FAISS_FILE
        chunks = int(self.meta.get("chunks", "0"))
        try:
            manifest = json.loads((self.index_dir / MANIFEST_FILE).read_text())
            if manifest.get("faiss_generation") != self.generation:
                raise ValueError("stale")
            index = faiss.read_index(str(path))
            if index.ntotal != chunks or index.d != self.settings.dimension:
                raise ValueError("size mismatch")
            return index
        except (OSError, ValueError, RuntimeError):
            pass
        index, factory = build_faiss_from_store(self.conn, self.settings)
        self.faiss_rebuilt = True
        # Save the repair for the next reader, unless a writer is busy (it will write one).
        with contextlib.suppress(IndexBusyError, OSError), write_lock(self.index_dir):
            current = _meta(self.conn).get("generation")
            if current == self.generation:
                _save_faiss(self.index_dir, index, self.meta, factory)
        return index

    def status(self) -> dict[str, Any]:
        size = sum(p.stat().st_size for p in self.index_dir.iterdir() if p.is_file())
        chunking = json.loads(self.meta.get("chunking", "{}"))
        return {
            "index": str(self.index_dir),
            "articles": int(self.meta.get("articles", 0)),
            "documents": int(self.meta.get("documents", 0)),
            "chunks": int(self.meta.get("chunks", 0)),
            "model": self.settings.model,
            "weights_sha256": self.settings.weights_sha256,
            "backend": self.settings.backend,
            "dimension": self.settings.dimension,
            "faiss": f"IndexIDMap2({self._faiss_factory()}, inner product)",
            "chunk_tokens": chunking.get("max_tokens"),
            "tokenizer_encoding": chunking.get("encoding"),
            "built_at": self.meta.get("built_at"),
            "updated_at": self.meta.get("updated_at"),
            "corpus": (
                str(resolve_stored_corpus(self.meta["corpus"], self.index_dir))
                if self.meta.get("corpus")
                else None
            ),
            "size_bytes": size,
            "generation": self.generation,
        }

    def _faiss_factory(self) -> str:
        """The structure in the FAISS file (what "auto" chose), from the manifest."""
        try:
            manifest = json.loads((self.index_dir / MANIFEST_FILE).read_text())
        except (OSError, ValueError):
            manifest = {}
        chosen = manifest.get("faiss_factory")
        if not chosen:
            chosen = faiss_factory_for(self.settings.faiss, int(self.meta.get("chunks", 0)))
        return chosen if chosen == self.settings.faiss else f"{chosen}, {self.settings.faiss}"

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk id, inner product) of the k nearest chunks."""
        import numpy as np

        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        scores, ids = self.faiss.search(query, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]


def index_exists(index_dir: Path) -> bool:
    return (Path(index_dir) / STORE_FILE).exists()
