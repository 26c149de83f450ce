"""Chunking and embedding for a build or update: here, or elsewhere through an `Embedder`
(`qa.cluster.RayEmbedder`), a slice of chunks at a time so memory follows the slice."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from qa.articles import (
    Article,
)
from qa.chunking import Chunk, Chunker, embed_text
from qa.errors import (
    IndexMismatchError,
    QAError,
)
from qa.index.progress import Progress, ProgressFn
from qa.index.schema import IndexSettings

if TYPE_CHECKING:
    import numpy as np

    from qa.encoders import Encoder, ProgressCallback


SLICE_CHUNKS = 50_000
"""Chunks embedded and written at a time, inside the one write transaction."""


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


Embedded = tuple[Article, list[Chunk], "np.ndarray", list["bytes | None"]]
"""One article's chunks with their vectors and float16 sentence-vector blobs."""


def chunk_articles(
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


def embed_slices(
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

    from qa.encoders import SpanEncoder

    texts = [
        embed_text(article.title, chunk.text) for article, chunks in chunked for chunk in chunks
    ]
    sentence_vectors: list[np.ndarray] | None = None
    with_spans = isinstance(encoder, SpanEncoder)
    spans: list[list[tuple[int, int]]] = []
    if with_spans or embedder is not None:
        # Sentence vectors from the same forward pass (see qa.encoders.minilm): offsets of each
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
    elif isinstance(encoder, SpanEncoder):
        vectors, sentence_vectors = encoder.encode_with_spans(
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
