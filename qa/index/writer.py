"""`IndexWriter`: every write to the store's tables, beside `IndexReader`, which does every
read for questions.

A writer works inside its caller's transaction (`qa.index.migrations.transaction`): it
neither begins nor commits, so one build or update is one transaction however many of its
methods run. Its reads are the ones a write needs: the stored files and documents, counts.
Costs follow the size of the change, not of the index.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qa.index.schema import FORMAT_VERSION, IndexSettings, set_meta, stored_corpus_path
from qa.text import sentence_stems

if TYPE_CHECKING:
    import numpy as np

    from qa.articles import Article
    from qa.chunking import Chunk
    from qa.index.scan import FileScan

TABLES = ("files", "articles", "chunks", "chunks_fts", "documents")


class IndexWriter:
    """The writes of a build or update, on the writer's connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # --------------------------------------------------------------------- reads for writing

    def stored_files(self) -> dict[str, sqlite3.Row]:
        """Every file the index has seen, by path."""
        return {row["path"]: row for row in self.conn.execute("SELECT * FROM files")}

    def articles_of(self, paths: Iterable[str]) -> dict[str, tuple[str, str]]:
        """The stored articles of `paths`: ref -> (article id, its text's sha256)."""
        found: dict[str, tuple[str, str]] = {}
        for path in paths:
            for row in self.conn.execute(
                "SELECT a.ref, a.id, d.sha256 FROM articles a JOIN documents d "
                "ON d.id = a.doc_id WHERE a.path = ?",
                (path,),
            ):
                found[row["ref"]] = (row["id"], row["sha256"])
        return found

    def document_ids(self, hashes: set[str]) -> dict[str, int]:
        """The stored documents among `hashes` (sha256 -> id)."""
        found: dict[str, int] = {}
        ordered = sorted(hashes)
        for start in range(0, len(ordered), 500):
            part = ordered[start : start + 500]
            for sha, doc_id in self.conn.execute(
                f"SELECT sha256, id FROM documents WHERE sha256 IN ({','.join('?' * len(part))})",
                part,
            ):
                found[sha] = doc_id
        return found

    def article_count(self, path: str | None = None) -> int:
        """How many articles the index holds, or holds from `path`."""
        if path is None:
            row = self.conn.execute("SELECT count(*) FROM articles").fetchone()
        else:
            row = self.conn.execute("SELECT count(*) FROM articles WHERE path = ?", (path,))
            row = row.fetchone()
        return int(row[0])

    # --------------------------------------------------------------------------- writes

    def clear(self) -> None:
        """Empty every table but meta (a build starts afresh)."""
        for table in TABLES:
            self.conn.execute(f"DELETE FROM {table}")

    def remove_articles(self, refs: Iterable[str]) -> set[int]:
        """Remove the articles `refs`; returns their documents, which may now be orphans
        (`remove_orphans`)."""
        documents: set[int] = set()
        for ref in refs:
            row = self.conn.execute("SELECT doc_id FROM articles WHERE ref = ?", (ref,)).fetchone()
            if row is not None:
                documents.add(int(row[0]))
            self.conn.execute("DELETE FROM articles WHERE ref = ?", (ref,))
        return documents

    def forget_files(self, paths: Iterable[str]) -> None:
        self.conn.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])

    def add_document(self, article: Article) -> int:
        """Store an article's text (once for every article with the same text); its id."""
        cursor = self.conn.execute(
            "INSERT INTO documents(sha256, title, body, paragraphs) VALUES(?, ?, ?, ?)",
            (article.sha256, article.title, article.body, json.dumps(article.paragraphs)),
        )
        return int(cursor.lastrowid or 0)

    def add_chunks(
        self,
        doc_id: int,
        article: Article,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        sentence_blobs: Sequence[bytes | None],
    ) -> list[int]:
        """Store a document's chunks with their vectors, sentence vectors and stems, and
        their keyword rows; returns the chunks' ids."""
        ids = []
        for chunk, vector, sentence_blob in zip(chunks, vectors, sentence_blobs, strict=True):
            cursor = self.conn.execute(
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
            chunk_id = int(cursor.lastrowid or 0)
            self.conn.execute(
                "INSERT INTO chunks_fts(rowid, title, text) VALUES(?, ?, ?)",
                (chunk_id, article.title, chunk.text),
            )
            ids.append(chunk_id)
        return ids

    def add_articles(self, articles: Iterable[Article], doc_ids: dict[str, int]) -> None:
        """Store articles, each pointing at its text's document (`doc_ids`: sha256 -> id)."""
        self.conn.executemany(
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
                for a in articles
            ],
        )

    def record_files(self, scans: Iterable[FileScan]) -> None:
        """What was seen of each scanned file: size, time, hash and problems; for a file
        whose content did not change, only its new modification time."""
        for scan in scans:
            if scan.articles is None:
                self.conn.execute(
                    "UPDATE files SET mtime_ns = ? WHERE path = ?", (scan.mtime_ns, scan.path)
                )
                continue
            self.conn.execute(
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

    def remove_orphans(self, documents: Iterable[int]) -> list[int]:
        """Documents among `documents` that no article points at any more leave the store
        with their chunks and keyword rows; returns the removed chunks' ids (for FAISS)."""
        removed: list[int] = []
        for doc_id in sorted(documents):
            used = self.conn.execute(
                "SELECT 1 FROM articles WHERE doc_id = ? LIMIT 1", (doc_id,)
            ).fetchone()
            if used is not None:
                continue
            removed.extend(
                row[0]
                for row in self.conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))
            )
            self.conn.execute(
                "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE doc_id = ?)",
                (doc_id,),
            )
            self.conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
            self.conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        return removed

    def commit_meta(
        self, settings: IndexSettings, corpus: Path, index_dir: Path, built: bool
    ) -> tuple[int, int, int]:
        """A new generation, the counts (articles, chunks, documents, returned) and the
        settings."""
        counts = self.conn.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM chunks),"
            " (SELECT count(*) FROM documents)"
        ).fetchone()
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        set_meta(
            self.conn,
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
            set_meta(self.conn, built_at=now)
        return int(counts[0]), int(counts[1]), int(counts[2])
