"""`vectors.faiss` and `manifest.json`: derived from the store.

`vectors.faiss` is an `IndexIDMap2` keyed by chunk id, written to a temporary file and moved
into place; its structure is chosen by size ("auto") unless one is asked for. `manifest.json`
(written last) records the SQLite generation it was built from; a missing, stale or corrupt
FAISS file is rebuilt from the stored vectors, read in batches. An update applies its changes
to the file it finds when the structure allows removals.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.atomic import atomic_write
from qa.errors import (
    QAError,
)
from qa.index.progress import Progress, ProgressFn
from qa.index.schema import (
    AUTO_FAISS,
    FAISS_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    IndexSettings,
    read_manifest,
    read_meta,
)

if TYPE_CHECKING:
    import numpy as np


FLAT_LIMIT = 200_000
"""Chunks below which "auto" is exact search: at 200,000 a Flat search takes about 15 ms."""


NPROBE = 64
"""Inverted lists an "auto" IVF index searches."""


TRAIN_SAMPLE = 100_000


VECTOR_BATCH = 50_000


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
        ivf.cp.niter = 10  # k-means: 10 rounds instead of 25 cost less, same search quality
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


def write_faiss(
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
    meta = read_meta(conn)
    updated = None
    if changes is not None and previous_generation:
        updated = _apply_changes(index_dir, settings, meta, changes, previous_generation)
    index, factory = updated or build_faiss_from_store(conn, settings)
    save_faiss(index_dir, index, meta, factory)
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

    manifest = read_manifest(index_dir)
    factory = manifest.get("faiss_factory") or settings.faiss
    chunks = int(meta.get("chunks", 0))
    if (
        manifest.get("faiss_generation") != previous_generation
        or "HNSW" in factory  # no removals: rebuilt
        # the size now calls for another structure (grown past Flat, or other IVF lists)
        or faiss_factory_for(settings.faiss, chunks) != factory
        # changes applied to a damaged file would carry the damage on under a new checksum
        or vector_file_problem(index_dir, manifest) is not None
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


def save_faiss(index_dir: Path, index: Any, meta: dict[str, str], factory: str) -> None:
    """The FAISS file, then the manifest that says which generation it was built from and
    the file's checksums (`vector_file_problem` checks them)."""
    import faiss

    data = faiss.serialize_index(index).tobytes()
    atomic_write(index_dir / FAISS_FILE, data)
    digest = {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "sample_sha256": _sample_digest(lambda at, n: data[at : at + n], len(data)),
    }
    _write_manifest(index_dir, meta, int(index.ntotal), factory, digest)


SAMPLE_BLOCK = 1 << 16
SAMPLE_BLOCKS = 32


def _sample_digest(read: Callable[[int, int], bytes], size: int) -> str:
    """sha256 of the file's first and last block and of blocks spread evenly between them:
    a flipped byte in the header, the id map at the end or anywhere on a small file is seen
    on every load for the price of reading 2 MiB, however large the file."""
    digest = hashlib.sha256()
    starts = sorted({0, max(0, size - SAMPLE_BLOCK)} | {
        i * size // SAMPLE_BLOCKS for i in range(SAMPLE_BLOCKS)
    })  # fmt: skip
    for start in starts:
        digest.update(read(start, SAMPLE_BLOCK))
    return digest.hexdigest()


def vector_file_problem(
    index_dir: Path, manifest: dict[str, Any], full: bool = False
) -> str | None:
    """What is wrong with the FAISS file against the checksums its manifest recorded (None
    when it matches, or when an older manifest recorded none): its size and sampled blocks
    on every load, its whole sha256 with `full` (`qa index status`)."""
    digest = manifest.get("faiss_digest")
    if not isinstance(digest, dict):
        return None
    path = index_dir / FAISS_FILE
    try:
        size = path.stat().st_size
        if size != digest.get("size"):
            return f"{FAISS_FILE} has {size} bytes, not the {digest.get('size')} written"
        with path.open("rb") as handle:

            def read(at: int, n: int) -> bytes:
                handle.seek(at)
                return handle.read(n)

            if _sample_digest(read, size) != digest.get("sample_sha256"):
                return f"{FAISS_FILE} is not the file written (its checksum differs)"
            if full:
                handle.seek(0)
                whole = hashlib.sha256()
                for block in iter(lambda: handle.read(1 << 20), b""):
                    whole.update(block)
                if whole.hexdigest() != digest.get("sha256"):
                    return f"{FAISS_FILE} is not the file written (its sha256 differs)"
    except OSError as exc:
        return f"{FAISS_FILE} cannot be read ({exc.strerror or exc})"
    return None


def _write_manifest(
    index_dir: Path,
    meta: dict[str, str],
    faiss_count: int,
    faiss_factory: str | None = None,
    faiss_digest: dict[str, Any] | None = None,
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
        "faiss_digest": faiss_digest,
        "corpus": meta.get("corpus"),
        "built_at": meta.get("built_at"),
        "updated_at": meta.get("updated_at"),
        "counts": {
            "articles": int(meta.get("articles", 0)),
            "documents": int(meta.get("documents", 0)),
            "chunks": int(meta.get("chunks", 0)),
        },
    }
    atomic_write(index_dir / MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
