"""`sync_index`: bring an index in line with its corpus (scan -> diff -> embed and write in one
transaction -> vectors).

Every build or update is one write transaction, embedding included (a slice of chunks at a
time, so memory does not grow with the corpus): an error or interruption at any point before
COMMIT rolls it back and leaves the previous index as it was, and readers see that state
until the commit. A no-op update writes nothing.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from qa.articles import (
    DEFAULT_MAX_BYTES,
    Article,
)
from qa.chunking import Chunk, ChunkSettings
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
    STORE_FILE,
    IndexSettings,
    meta_problem,
    open_for_write,
    read_manifest,
    read_meta,
    transaction,
    write_lock,
)
from qa.index.vectors import VectorChanges, write_faiss
from qa.index.writer import IndexWriter

if TYPE_CHECKING:
    from qa.encoders import Encoder


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
        conn = open_for_write(index_dir / STORE_FILE, full)
        writer = IndexWriter(conn)
        try:
            target = _Target(corpus, index_dir, full, max_bytes)
            plan = _plan(
                writer, target, chunking, faiss_factory, encoder_factory, confirm_removal, progress
            )
            report = plan.report
            if plan.chunked is not None:
                changes = _apply(writer, plan, target, progress, batch_size, embedder)
                # The point of no return: from here on, a cancel or Ctrl-C no longer undoes
                # the update, and the caller is told what was committed, not "nothing changed".
                _count_committed(writer, plan)
                # 4. vectors: FAISS follows the store
                previous_generation = None if full else plan.meta.get("generation")
                try:
                    progress(Progress("write", 1, 1))
                    write_faiss(
                        conn, index_dir, plan.settings, progress, changes, previous_generation
                    )
                except BaseException as exc:
                    report.seconds = round(time.perf_counter() - started, 3)
                    raise _after_commit(exc, report) from exc
        finally:
            conn.close()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


@dataclass(frozen=True)
class _Target:
    """What `sync_index` was asked to bring in line with what."""

    corpus: Path
    index_dir: Path
    full: bool
    max_bytes: int


@dataclass
class _Plan:
    """What an update will write, worked out before anything is written. `chunked` is None
    when there is nothing to write (a no-op update)."""

    meta: dict[str, str]
    settings: IndexSettings
    encoder: Encoder | None
    scans: list[FileScan]
    gone: set[str]
    diff: _Diff
    known: dict[str, int]
    chunked: list[tuple[Article, list[Chunk]]] | None
    report: UpdateReport


def _plan(
    writer: IndexWriter,
    target: _Target,
    chunking: ChunkSettings | None,
    faiss_factory: str | None,
    encoder_factory: Callable[[IndexSettings | None], Encoder],
    confirm_removal: Callable[[int, int], bool] | None,
    progress: ProgressFn,
) -> _Plan:
    """1. scan the corpus against the stored files, 2. diff the articles, then chunk the
    texts that must be embedded. Reads only."""
    meta = read_meta(writer.conn)
    # a build starts afresh from settings it cannot read; an update needs them
    readable = "model" in meta and (not target.full or meta_problem(meta) is None)
    existing = IndexSettings.from_meta(meta) if readable else None
    report = UpdateReport(built=target.full or existing is None)
    settings, encoder = settings_for(
        existing, target.full, chunking, faiss_factory, encoder_factory
    )
    stored_files = writer.stored_files()
    scans, gone = scan_corpus(target.corpus, stored_files, target.full, target.max_bytes, progress)
    diff = _diff(writer, scans, gone)
    report.added, report.removed = diff.added, diff.removed
    report.changed, report.renamed = diff.changed, diff.renamed
    report.skipped = skipped_problems(scans)
    _check_removal(writer, report.removed, target.index_dir, target.corpus, confirm_removal)
    plan = _Plan(meta, settings, encoder, scans, gone, diff, {}, None, report)
    if (
        not target.full
        and existing is not None
        and _nothing_to_write(scans, diff.changed_paths, stored_files, target.index_dir, meta)
    ):
        # A no-op update is a no-op: no new generation, no FAISS rewrite (an IVF or HNSW
        # index would be trained again), "updated" stays when it was.
        report.article_count = int(meta.get("articles", 0))
        report.chunk_count = int(meta.get("chunks", 0))
        report.unchanged = report.article_count
        return plan
    plan.known, to_embed = _texts_to_embed(writer, diff.new, target.full)
    if to_embed and plan.encoder is None:
        plan.encoder = encoder_factory(settings)
    plan.chunked = chunk_articles(list(to_embed.values()), plan.encoder, settings, progress)
    return plan


def _apply(
    writer: IndexWriter,
    plan: _Plan,
    target: _Target,
    progress: ProgressFn,
    batch_size: int | None,
    embedder: Embedder | None,
) -> VectorChanges:
    """3. embed and write: one transaction for the whole update, embedding included:
    chunks are embedded and written a slice at a time (memory follows the slice), and
    anything that fails or is interrupted before COMMIT rolls everything back. Readers
    (WAL) see the previous state throughout. Returns what changed in the vectors."""
    assert plan.chunked is not None
    with transaction(writer.conn):
        if target.full:
            writer.clear()
        embedded = embed_slices(
            plan.chunked, plan.encoder, plan.settings, progress, batch_size, embedder
        )
        changes = _write(
            writer, plan.diff, plan.scans, plan.gone, embedded, dict(plan.known),
            track=not target.full,
        )  # fmt: skip
        progress(Progress("write", 0, 1))
        counts = writer.commit_meta(
            plan.settings, target.corpus, target.index_dir, built=plan.report.built
        )
    plan.report.article_count, plan.report.chunk_count = counts[0], counts[1]
    return changes


def _count_committed(writer: IndexWriter, plan: _Plan) -> None:
    """The report's counts of what the committed update holds."""
    report = plan.report
    assert plan.chunked is not None
    current = len(plan.diff.new) + sum(
        writer.article_count(s.path) for s in plan.scans if s.articles is None
    )
    report.unchanged = current - report.added - report.changed - report.renamed
    report.embedded_documents = len(plan.chunked)
    report.embedded_chunks = sum(len(chunks) for _, chunks in plan.chunked)


def _check_removal(
    writer: IndexWriter,
    removed: int,
    index_dir: Path,
    corpus: Path,
    confirm_removal: Callable[[int, int], bool] | None,
) -> None:
    """Removing more than half of an index's articles needs `confirm_removal`'s yes."""
    total = writer.article_count()
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
    writer: IndexWriter, new: dict[str, Article], full: bool
) -> tuple[dict[str, int], dict[str, Article]]:
    """The stored documents the new articles' texts already have (none for a build), and
    one article for each text that must be embedded."""
    known = {} if full else writer.document_ids({a.sha256 for a in new.values()})
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


def _diff(writer: IndexWriter, scans: list[FileScan], gone: set[str]) -> _Diff:
    changed_paths = {s.path for s in scans if s.articles is not None} | gone
    old = writer.articles_of(changed_paths)
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


def _write(
    writer: IndexWriter,
    diff: _Diff,
    scans: list[FileScan],
    gone: set[str],
    embedded: Iterable[Embedded],
    doc_ids: dict[str, int],
    *,
    track: bool = True,
) -> VectorChanges:
    """Write one update's rows (inside the caller's transaction); what changed in the
    vectors is returned for FAISS. `doc_ids` are the stored documents (sha256 -> id) among
    the articles read now; the new ones are added to it."""
    changes = VectorChanges()
    # Articles of changed or removed files go; the new versions come back below. Their
    # documents may then be orphans (removed at the end).
    maybe_orphans = writer.remove_articles(diff.old)
    writer.forget_files(gone)
    for article, chunks, vectors, sentence_blobs in embedded:
        doc_id = writer.add_document(article)
        doc_ids[article.sha256] = doc_id
        ids = writer.add_chunks(doc_id, article, chunks, vectors, sentence_blobs)
        if track:  # a build makes FAISS from the store instead
            changes.added_ids.extend(ids)
            changes.added.extend(vectors)
    writer.add_articles(diff.new.values(), doc_ids)
    writer.record_files(scans)
    changes.removed.extend(writer.remove_orphans(maybe_orphans))
    return changes
