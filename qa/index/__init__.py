"""The index on disk: build, update, open and status.

- `schema`: the folder's files, connections, settings, the write lock.
- `migrations`: the SQLite schema as numbered migrations (readers and writers run them).
- `scan`: the corpus against the stored files.
- `embed`: chunking and embedding (here or on a cluster), a slice at a time.
- `build`: `sync_index`, one transaction a build or update; a no-op update writes nothing.
- `vectors`: `vectors.faiss` (chosen by size) and `manifest.json`, derived from the store.
- `reader`: `IndexReader`, a read-only view for retrieval and reading.
"""

from __future__ import annotations

from qa.index.build import sync_index
from qa.index.embed import Embedder, check_encoder
from qa.index.progress import Progress, ProgressFn, UpdateReport
from qa.index.reader import (
    ArticleRow,
    ChunkRow,
    DocumentRow,
    IndexReader,
    IndexStatus,
    Overview,
    StoredArticle,
    index_exists,
)
from qa.index.schema import (
    FAISS_FILE,
    MANIFEST_FILE,
    STORE_FILE,
    IndexSettings,
    resolve_stored_corpus,
    stored_corpus_path,
    write_lock,
)
from qa.index.vectors import build_faiss, faiss_factory_for

__all__ = [
    "FAISS_FILE",
    "MANIFEST_FILE",
    "STORE_FILE",
    "ArticleRow",
    "ChunkRow",
    "DocumentRow",
    "Embedder",
    "IndexReader",
    "IndexSettings",
    "IndexStatus",
    "Overview",
    "Progress",
    "ProgressFn",
    "StoredArticle",
    "UpdateReport",
    "build_faiss",
    "check_encoder",
    "faiss_factory_for",
    "index_exists",
    "resolve_stored_corpus",
    "stored_corpus_path",
    "sync_index",
    "write_lock",
]
