"""`sync_index`: bring an index in line with its corpus (scan -> diff -> embed and write in one
transaction -> vectors).

Every build or update is one write transaction, embedding included (a slice of chunks at a
time, so memory does not grow with the corpus): an error or interruption at any point before
COMMIT rolls it back and leaves the previous index as it was, and readers see that state
until the commit. A no-op update writes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from qa.articles import (
    DEFAULT_MAX_BYTES,
    Article,
)
from qa.chunking import ChunkSettings
from qa.errors import (
    Cancelled,
    CommittedInterrupt,
    IndexCorruptError,
    IndexMismatchError,
    MassRemovalError,
    QAError,
    StorageError,
    storage_reason,
)
from qa.index.embed import Embedded, Embedder, chunk_articles, embed_slices
from qa.index.progress import Progress, ProgressFn, UpdateReport, no_progress
from qa.index.scan import FileScan, scan_corpus, skipped_problems
from qa.index.schema import (
    DEFAULT_FAISS,
    FAISS_FILE,
    FORMAT_VERSION,
    STORE_FILE,
    IndexSettings,
    meta_problem,
    open_for_write,
    read_manifest,
    read_meta,
    set_meta,
    stored_corpus_path,
    transaction,
    write_lock,
)
from qa.index.vectors import VectorChanges, write_faiss
from qa.text import sentence_stems

if TYPE_CHECKING:
    from qa.encoders import Encoder


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


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
    cancel: threading.Event | None = None,
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

    `cancel`, once set, stops the work at its next progress step: before the commit with
    `Cancelled` (nothing changed), after it with `CommittedInterrupt` (what was committed).
    """
    started = time.perf_counter()
    progress = _cancellable(progress or no_progress, cancel)
    index_dir.mkdir(parents=True, exist_ok=True)
    with write_lock(index_dir), _damage_reported(index_dir):
        _remove_stale_temp(index_dir)
        store_path = index_dir / STORE_FILE
        conn = open_for_write(store_path, full)
        try:
            meta = read_meta(conn)
            # a build starts afresh from settings it cannot read; an update needs them
            readable = "model" in meta and (not full or meta_problem(meta) is None)
            existing = IndexSettings.from_meta(meta) if readable else None
            report = UpdateReport(built=full or existing is None)
            settings, encoder = settings_for(
                existing, full, chunking, faiss_factory, encoder_factory
            )

            # 1. scan: the corpus against the stored files
            stored_files = {row["path"]: row for row in conn.execute("SELECT * FROM files")}
            scans, gone = scan_corpus(corpus, stored_files, full, max_bytes, progress)
            # 2. diff: articles added, removed, changed, renamed
            diff = _diff(conn, scans, gone)
            old, new, changed_paths = diff.old, diff.new, diff.changed_paths
            report.added, report.removed = diff.added, diff.removed
            report.changed, report.renamed = diff.changed, diff.renamed
            _check_removal(conn, report.removed, index_dir, corpus, confirm_removal)

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
                report.skipped = skipped_problems(scans)
                report.seconds = round(time.perf_counter() - started, 3)
                return report

            known, to_embed = _texts_to_embed(conn, new, full)
            if to_embed and encoder is None:
                encoder = encoder_factory(settings)
            chunked = chunk_articles(list(to_embed.values()), encoder, settings, progress)

            # 3. embed and write: one transaction for the whole update, embedding included:
            # chunks are embedded and written a slice at a time (memory follows the slice),
            # and anything that fails or is interrupted before COMMIT rolls everything back.
            # Readers (WAL) see the previous state throughout.
            with transaction(conn):
                if full:
                    for table in ("files", "articles", "chunks", "chunks_fts", "documents"):
                        conn.execute(f"DELETE FROM {table}")
                embedded = embed_slices(chunked, encoder, settings, progress, batch_size, embedder)
                changes = _write(conn, scans, gone, old, new, embedded, dict(known), track=not full)
                progress(Progress("write", 0, 1))
                counts = _commit_meta(conn, settings, corpus, index_dir, built=report.built)
            previous_generation = None if full else meta.get("generation")
            # The point of no return: from here on, a cancel or Ctrl-C no longer undoes the
            # update, and the caller is told what was committed, not "nothing changed".
            report.articles, report.chunks = counts[0], counts[1]
            total_current = len(new) + sum(
                _count_articles(conn, s.path) for s in scans if s.articles is None
            )
            report.unchanged = total_current - report.added - report.changed - report.renamed
            report.embedded_documents = len(chunked)
            report.embedded_chunks = sum(len(chunks) for _, chunks in chunked)
            report.skipped = skipped_problems(scans)
            # 4. vectors: FAISS follows the store
            try:
                progress(Progress("write", 1, 1))
                write_faiss(conn, index_dir, settings, progress, changes, previous_generation)
            except BaseException as exc:
                report.seconds = round(time.perf_counter() - started, 3)
                raise _after_commit(exc, report) from exc
        finally:
            conn.close()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _check_removal(
    conn: sqlite3.Connection,
    removed: int,
    index_dir: Path,
    corpus: Path,
    confirm_removal: Callable[[int, int], bool] | None,
) -> None:
    """Removing more than half of an index's articles needs `confirm_removal`'s yes."""
    total = int(conn.execute("SELECT count(*) FROM articles").fetchone()[0])
    if (
        removed > 0
        and removed * 2 > total
        and not (confirm_removal and confirm_removal(removed, total))
    ):
        raise MassRemovalError(
            f"this would remove {removed:,} of the {total:,} articles in {index_dir} (is "
            f"{corpus} the right corpus?); nothing was changed. Pass --yes to remove them"
        )


def _texts_to_embed(
    conn: sqlite3.Connection, new: dict[str, Article], full: bool
) -> tuple[dict[str, int], dict[str, Article]]:
    """The stored documents the new articles' texts already have (none for a build), and
    one article for each text that must be embedded."""
    known = {} if full else _document_ids(conn, {a.sha256 for a in new.values()})
    to_embed: dict[str, Article] = {}
    for article in new.values():
        if article.sha256 not in known and article.sha256 not in to_embed:
            to_embed[article.sha256] = article
    return known, to_embed


def _after_commit(exc: BaseException, report: UpdateReport) -> QAError:
    """What the caller is told when writing the vectors fails after the commit: the store
    has the update either way."""
    reason = storage_reason(exc)
    if reason is not None:
        return StorageError(
            f"the update was committed ({report.summary()}), but its vector file could not "
            f"be written: {reason}. The index is usable: the vector file is rebuilt from the "
            "store when it can be written"
        )
    return CommittedInterrupt(
        f"interrupted after the update was committed ({report.summary()}); the index is "
        "usable, its vector file is rebuilt from the store when next opened",
        report,
    )


def _cancellable(progress: ProgressFn, cancel: threading.Event | None) -> ProgressFn:
    """`progress`, raising `Cancelled` first once `cancel` is set."""
    if cancel is None:
        return progress

    def checked(report: Progress) -> None:
        if cancel.is_set():
            raise Cancelled("cancelled; nothing was changed")
        progress(report)

    return checked


@dataclass
class _Diff:
    """What a scan changed: the stored articles of changed or gone files (`old`: ref ->
    (article id, sha256)), the articles read now (`new`) and the counts."""

    old: dict[str, tuple[str, str]]
    new: dict[str, Article]
    changed_paths: set[str]
    added: int
    removed: int
    changed: int
    renamed: int


def _diff(conn: sqlite3.Connection, scans: list[FileScan], gone: set[str]) -> _Diff:
    changed_paths = {s.path for s in scans if s.articles is not None} | gone
    old: dict[str, tuple[str, str]] = {}
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
    changed = sum(1 for ref in new if ref in old and old[ref][1] != new[ref].sha256)
    removed_hashes = {old[ref][1] for ref in removed}
    renamed = sum(1 for ref in added if new[ref].sha256 in removed_hashes)
    return _Diff(
        old, new, changed_paths, len(added) - renamed, len(removed) - renamed, changed, renamed
    )


def _commit_meta(
    conn: sqlite3.Connection, settings: IndexSettings, corpus: Path, index_dir: Path, built: bool
) -> tuple[int, int, int]:
    """A new generation, the counts and the settings, in the caller's transaction."""
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM chunks),"
        " (SELECT count(*) FROM documents)"
    ).fetchone()
    now = _now()
    set_meta(
        conn,
        format_version=str(FORMAT_VERSION),
        generation=f"{uuid.uuid4().hex[:12]}",
        corpus=stored_corpus_path(corpus, index_dir),
        updated_at=now,
        articles=str(counts[0]),
        chunks=str(counts[1]),
        documents=str(counts[2]),
        **settings.as_meta(),
    )
    if built:
        set_meta(conn, built_at=now)
    return int(counts[0]), int(counts[1]), int(counts[2])


def _nothing_to_write(
    scans: list[FileScan],
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
    return (
        read_manifest(index_dir).get("faiss_generation") == meta.get("generation")
        and (index_dir / FAISS_FILE).is_file()
    )


@contextlib.contextmanager
def _damage_reported(index_dir: Path) -> Iterator[None]:
    """A store that fails mid-update ("database disk image is malformed") is reported with
    the command that rebuilds it; the failed transaction changed nothing."""
    try:
        yield
    except (sqlite3.DatabaseError, OSError) as exc:
        # a full disk or a read-only store is not damage: a rebuild cannot help
        reason = storage_reason(exc)
        if reason is not None:
            raise StorageError(
                f"{index_dir}: cannot write the index: {reason}; nothing was changed (the index "
                "answers as before). Run the update again once it can be written"
            ) from exc
        if isinstance(exc, OSError):
            raise
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


def settings_for(
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
        from qa.encoders import DEFAULT_MODEL, DEFAULT_MODEL_SHA256

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


def _write(
    conn: sqlite3.Connection,
    scans: list[FileScan],
    gone: set[str],
    old: dict[str, tuple[str, str]],
    new: dict[str, Article],
    embedded: Iterable[Embedded],
    doc_ids: dict[str, int],
    *,
    track: bool = True,
) -> VectorChanges:
    """Write one update's rows (inside the caller's transaction); what changed in the
    vectors is returned for FAISS. `doc_ids` are the stored documents (sha256 -> id) among
    the articles read now; the new ones are added to it. Costs follow the size of the
    change, not of the index."""
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
