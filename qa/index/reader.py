"""`IndexReader`: a read-only view of a built index, its SQLite rows and FAISS structure."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from qa.errors import (
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    StorageError,
)
from qa.index.migrations import migrate, pending
from qa.index.schema import (
    FAISS_FILE,
    FORMAT_VERSION,
    STORE_FILE,
    IndexSettings,
    connect,
    connect_reader,
    not_a_store,
    read_manifest,
    read_meta,
    resolve_stored_corpus,
    write_lock,
)
from qa.index.vectors import (
    build_faiss_from_store,
    faiss_factory_for,
    save_faiss,
    vector_file_problem,
)
from qa.text import one_line

if TYPE_CHECKING:
    import numpy as np


class IndexStatus(TypedDict):
    """`qa index status --json`: what an index holds and how it was made."""

    index: str
    articles: int
    documents: int
    chunks: int
    model: str
    weights_sha256: str | None
    backend: str
    dimension: int
    faiss: str
    chunk_tokens: int | None
    tokenizer_encoding: str | None
    built_at: str | None
    updated_at: str | None
    corpus: str | None
    size_bytes: int
    generation: str


class Overview(TypedDict):
    """What an empty chat shows of an index: its size, date range and latest headlines."""

    articles: int
    earliest: str | None
    latest: str | None
    recent_titles: list[str]
    recent_docs: list[int]
    """The documents of `recent_titles`, in the same order."""


@dataclass(frozen=True)
class ChunkRow:
    """A stored chunk: offsets into its document, its text and title (from the keyword
    table), sentence offsets, its vector, its sentence vectors where stored, and the stems of
    its sentences (`qa.text.sentence_stems`)."""

    id: int
    doc_id: int
    char_start: int
    char_end: int
    sentences: tuple[tuple[int, int], ...]
    vector: bytes
    text: str
    title: str
    sentence_vectors: bytes | None
    stems: str


@dataclass(frozen=True)
class ArticleRow:
    """What a citation names: one article (a path or record) showing a document."""

    doc_id: int
    id: str
    title: str
    ref: str
    published: str | None
    url: str | None


@dataclass(frozen=True)
class DocumentRow:
    """A unique article text with its paragraph offsets and the articles that show it."""

    id: int
    body: str
    paragraphs: list[list[int]]
    articles: list[ArticleRow]


@dataclass(frozen=True)
class StoredArticle:
    """An indexed article with its full body (a citation shown in context)."""

    id: str
    title: str
    path: str
    published: str | None
    url: str | None
    byline: str | None
    source: str | None
    body: str


class IndexReader:
    """A read-only view of a built index: SQLite rows and the FAISS structure.

    Safe to use while a writer updates the index: SQLite (WAL) shows the last committed
    state, and a FAISS file that does not match it is rebuilt from the stored vectors.
    """

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)
        store_path = self.index_dir / STORE_FILE
        if not store_path.exists():
            # "no index in index" read as a stutter: name the folder as a folder
            raise IndexMissingError(
                f"{one_line(str(self.index_dir))}/: no index in this folder yet; build one "
                f"with: qa index build --corpus DIR --index {one_line(str(self.index_dir))}"
            )
        problem = not_a_store(store_path)
        if problem is not None:
            raise problem
        try:
            self.conn = connect_reader(store_path)
            if pending(self.conn):
                self.conn.close()
                self._migrate(store_path)
                self.conn = connect_reader(store_path)
            self.meta = read_meta(self.conn)
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
        self._faiss: Any = None
        self.faiss_rebuilt = False

    def _migrate(self, store_path: Path) -> None:
        """Bring a store written by an older qa up to this one's schema (`qa.index.migrations`),
        as a writer would: under the write lock, each migration one transaction."""
        try:
            with write_lock(self.index_dir):
                conn = connect(store_path)
                try:
                    migrate(conn)
                finally:
                    conn.close()
        except (StorageError, sqlite3.OperationalError) as exc:
            if isinstance(exc, sqlite3.OperationalError) and "readonly" not in str(exc):
                raise
            raise IndexMismatchError(
                f"{store_path} was written by an older qa and this folder cannot be written to "
                f"bring it up to date; copy the index somewhere writable, or rebuild it with: "
                f"qa index build --index {one_line(str(self.index_dir))}"
            ) from None

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
                meta = read_meta(self.conn)
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
        manifest = read_manifest(self.index_dir)
        if manifest.get("faiss_generation") == self.generation:
            problem = vector_file_problem(self.index_dir, manifest, full=True)
            if problem is not None:
                return f"{problem}; the vectors are rebuilt from the store when next opened"
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
            manifest = read_manifest(self.index_dir)
            if manifest.get("faiss_generation") != self.generation:
                raise ValueError("stale")
            # flipped bytes load and give changed answers: rebuilt from the store instead
            if vector_file_problem(self.index_dir, manifest) is not None:
                raise ValueError("checksum")
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
            current = read_meta(self.conn).get("generation")
            if current == self.generation:
                save_faiss(self.index_dir, index, self.meta, factory)
        return index

    def status(self) -> IndexStatus:
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
        chosen = read_manifest(self.index_dir).get("faiss_factory")
        if not chosen:
            chosen = faiss_factory_for(self.settings.faiss, int(self.meta.get("chunks", 0)))
        return chosen if chosen == self.settings.faiss else f"{chosen}, {self.settings.faiss}"

    # ------------------------------------------------------------------ queries
    # Every query of the index's tables lives here; callers get named rows.

    def document_frequency(self, word: str, cap: int) -> int:
        """Chunks whose text or title holds `word` (FTS5's tokenizer), counted up to `cap`."""
        row = self.conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)",
            (f'"{word}"', cap),
        ).fetchone()
        return int(row[0])

    def keyword_search(
        self,
        words: Sequence[str],
        k: int,
        allowed: Sequence[int] | None = None,
        *,
        title_weight: float,
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score; higher is better) of the `k` best chunks holding any of
        `words`; the title weighs `title_weight` of the text."""
        match = " OR ".join(f'"{w}"' for w in words)
        # ordered by the weighted score itself (FTS5's `rank` would be the unweighted bm25)
        sql = (
            "SELECT rowid, bm25(chunks_fts, ?, 1.0) AS score FROM chunks_fts "
            "WHERE chunks_fts MATCH ?"
        )
        params: list[Any] = [float(title_weight), match]
        if allowed is not None:
            sql += f" AND rowid IN ({','.join('?' * len(allowed))})"
            params.extend(allowed)
        sql += " ORDER BY score LIMIT ?"
        params.append(k)
        return [(int(r[0]), -float(r[1])) for r in self.conn.execute(sql, params)]

    def chunk_ids_where(
        self, *, since: str | None = None, until: str | None = None, source: str | None = None
    ) -> list[int]:
        """Chunks of articles published on or after `since` and up to `until` (a date or
        its prefix), whose source, path or URL contains `source` (case-insensitive)."""
        clauses: list[str] = ["1"]
        params: list[Any] = []
        if since:
            clauses.append("a.published IS NOT NULL AND substr(a.published, 1, 10) >= ?")
            params.append(since)
        if until:
            clauses.append("a.published IS NOT NULL AND substr(a.published, 1, ?) <= ?")
            params.extend([len(until), until])
        if source:
            clauses.append(
                "(lower(coalesce(a.source, '')) LIKE ? OR lower(a.path) LIKE ? "
                "OR lower(coalesce(a.url, '')) LIKE ?)"
            )
            pattern = f"%{source.lower()}%"
            params.extend([pattern, pattern, pattern])
        sql = (
            "SELECT DISTINCT c.id FROM chunks c JOIN articles a ON a.doc_id = c.doc_id WHERE "
            + " AND ".join(clauses)
        )
        return [row[0] for row in self.conn.execute(sql, params)]

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        """The stored chunks among `ids`, by id."""
        if not ids:
            return {}
        rows = self.conn.execute(
            "SELECT c.id, c.doc_id, c.char_start, c.char_end, c.sentences, c.vector, "
            "f.text, f.title, c.sentence_vectors, c.stems FROM chunks c "
            "JOIN chunks_fts f ON f.rowid = c.id "
            f"WHERE c.id IN ({','.join('?' * len(ids))})",
            list(ids),
        )
        return {
            row[0]: ChunkRow(
                row[0],
                row[1],
                row[2],
                row[3],
                tuple((int(s), int(e)) for s, e in json.loads(row[4])),
                row[5],
                row[6],
                row[7],
                row[8],
                row[9],
            )
            for row in rows
        }

    def documents(self, doc_ids: Collection[int]) -> dict[int, DocumentRow]:
        """The documents among `doc_ids`, each with its articles (ordered by path)."""
        if not doc_ids:
            return {}
        marks = ",".join("?" * len(doc_ids))
        docs = {
            row[0]: DocumentRow(row[0], row[1], json.loads(row[2]), [])
            for row in self.conn.execute(
                f"SELECT id, body, paragraphs FROM documents WHERE id IN ({marks})", list(doc_ids)
            )
        }
        for row in self.conn.execute(
            f"SELECT doc_id, id, title, ref, published, url FROM articles WHERE doc_id IN ({marks})"
            " ORDER BY ref",
            list(doc_ids),
        ):
            docs[row[0]].articles.append(ArticleRow(*row))
        return docs

    def article(self, article_id: str) -> StoredArticle | None:
        row = self.conn.execute(
            "SELECT a.id, a.title, a.ref, a.published, a.url, a.byline, a.source, d.body "
            "FROM articles a JOIN documents d ON d.id = a.doc_id WHERE a.id = ?",
            (article_id,),
        ).fetchone()
        return StoredArticle(*row) if row else None

    def overview(self, recent: int) -> Overview:
        """Article count, date range and the `recent` latest headlines."""
        # apart, so that min and max each take one step along the index on published
        count = self.conn.execute("SELECT count(*) FROM articles").fetchone()[0]
        earliest = self.conn.execute("SELECT min(published) FROM articles").fetchone()[0]
        latest = self.conn.execute("SELECT max(published) FROM articles").fetchone()[0]
        # newest first along that index (undated last), one title a document (syndicated
        # copies share it): stops after `recent` documents instead of grouping every article,
        # which takes seconds at a million articles
        titles: list[str] = []
        seen: dict[int, None] = {}
        rows = self.conn.execute(
            "SELECT title, doc_id FROM articles WHERE title != '' ORDER BY published DESC, ref"
        )
        for title, doc_id in rows:
            if len(titles) >= recent:
                break
            if doc_id not in seen:
                seen[doc_id] = None
                titles.append(title)
        rows.close()
        return {"articles": count, "earliest": earliest, "latest": latest,
                "recent_titles": titles, "recent_docs": list(seen)}  # fmt: skip

    def doc_ids_by_ref(self) -> dict[str, int]:
        """Article path (or path#record) -> its document id."""
        return {row[0]: row[1] for row in self.conn.execute("SELECT ref, doc_id FROM articles")}

    def doc_ids_by_record(self) -> dict[str, int]:
        """Record key (inside JSON/JSONL files) -> its document id."""
        return {
            row[0]: row[1]
            for row in self.conn.execute("SELECT record, doc_id FROM articles")
            if row[0]
        }

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk id, inner product) of the k nearest chunks."""
        import numpy as np

        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        scores, ids = self.faiss.search(query, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]


def index_exists(index_dir: Path) -> bool:
    return (Path(index_dir) / STORE_FILE).exists()
