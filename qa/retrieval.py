"""Question -> ranked passages: dense (FAISS) and keyword (BM25 over FTS5) lists, fused.

Stage 1 takes the top chunks of each list and fuses them with reciprocal rank fusion. Stage 2
re-scores the best fused candidates with a few cheap features (dense cosine, BM25, the share
of the question's rare terms that one sentence of the chunk holds) combined linearly; the
weights come from `qa/weights.json`, fitted by `scripts/fit_weights.py` on half of the SQuAD
articles (see that script).

Filters on article metadata (date range, source) restrict both lists.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from qa.errors import QAError
from qa.text import STOPWORDS, parse_sentence_stems, stem, words
from qa.weights import SearchSettings, load_weights

if TYPE_CHECKING:
    import numpy as np

    from qa.encoders import Encoder
    from qa.index import ChunkRow, IndexReader

Span = tuple[int, int]


@dataclass(frozen=True)
class Filters:
    """Restrict results to articles published in [since, until] and/or from a source."""

    since: str | None = None
    until: str | None = None
    source: str | None = None

    def __bool__(self) -> bool:
        return bool(self.since or self.until or self.source)

    def describe(self) -> str:
        parts = []
        if self.since:
            parts.append(f"since:{self.since}")
        if self.until:
            parts.append(f"until:{self.until}")
        if self.source:
            parts.append(f"source:{self.source}")
        return " ".join(parts)


# ASCII digits only, the whole value (\d would take "٢٠٠٣", and $ a trailing newline)
_DATE = re.compile(r"[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?")


def parse_filter_date(value: str | None, name: str) -> str | None:
    """A filter date as given (`2006`, `2006-01` or `2006-01-31`), checked to be a real one:
    `2009-13-45` or `2009-02-30` is an error, not a filter that silently matches nothing."""
    if value is None or value == "":
        return None
    if not _DATE.fullmatch(value):
        raise QAError(f"{name} must be a date like 2006-01-31 (or 2006-01, 2006), not {value!r}")
    year, month, day = ([int(part) for part in value.split("-")] + [1, 1])[:3]
    try:
        dt.date(year, month, day)
    except ValueError as exc:
        raise QAError(f"{name} {value} is not a real date ({exc})") from None
    return value


def parse_filters(
    since: str | None, until: str | None, source: str | None, option_prefix: str = ""
) -> Filters:
    """`Filters` from what a user typed, checked: real dates, and a range that does not end
    before it starts. `option_prefix` ("--" on the command line) names the option in errors."""
    filters = Filters(
        since=parse_filter_date(since, f"{option_prefix}since"),
        until=parse_filter_date(until, f"{option_prefix}until"),
        source=source or None,
    )
    if filters.since and filters.until and filters.since[: len(filters.until)] > filters.until:
        raise QAError(f"since:{filters.since} is after until:{filters.until}")
    return filters


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its place in the source document and its scores."""

    chunk_id: int
    doc_id: int
    rank: int
    score: float
    char_start: int
    char_end: int
    text: str
    title: str
    sentences: tuple[Span, ...]
    features: dict[str, float] = field(default_factory=dict, compare=False, repr=False)
    sentence_scores: tuple[float, ...] = field(default=(), compare=False, repr=False)
    """Cosine of the question with each sentence's vector (empty if the index has none)."""


@dataclass
class QueryTerms:
    """The question's content words, their stems and inverse document frequencies."""

    words: list[str]
    stems: list[str]
    idf: dict[str, float]

    @cached_property
    def stem_set(self) -> frozenset[str]:
        return frozenset(self.stems)

    @cached_property
    def total(self) -> float:
        return sum(self.idf.get(s, 0.0) for s in self.stem_set) or 1.0

    @cached_property
    def pairs(self) -> frozenset[tuple[str, str]]:
        """Consecutive pairs of the question's stems."""
        return frozenset(itertools.pairwise(self.stems))

    @cached_property
    def rarest(self) -> str | None:
        """The question's rarest term (highest idf)."""
        return max(self.idf, key=lambda s: self.idf[s]) if self.idf else None

    def share(self, stems: Collection[str]) -> float:
        """The share of the question's weight (idf) that `stems` hold."""
        return sum(self.idf.get(s, 0.0) for s in self.stem_set.intersection(stems)) / self.total


EXACT_KEYWORD_LIMIT = 200_000
"""Chunks up to which the keyword search looks for every word of the question."""
KEYWORD_POSTINGS = 5_000
"""Above it, matching chunks the keyword search may score (rarest words first)."""
DF_CAP = 50_000
"""Chunks counted for a word's document frequency."""


class Retriever:
    """Hybrid retrieval over one open index."""

    def __init__(
        self,
        index: IndexReader,
        encoder: Encoder,
        *,
        weights: dict[str, float] | None = None,
        search: SearchSettings | None = None,
    ) -> None:
        """`weights` (passage ranking) and `search` default to the fitted ones."""
        self.index = index
        self.encoder = encoder
        fitted = load_weights()
        self.search_settings = search or fitted.search
        self.dense_k = self.search_settings.dense_k
        self.keyword_k = self.search_settings.keyword_k
        self.rerank_k = self.search_settings.rerank_k
        self.rrf_k = self.search_settings.rrf_k
        self.weights = weights or fitted.passage
        self._df: dict[str, int] = {}
        self._lock = threading.Lock()
        self.chunk_count = max(1, int(index.meta.get("chunks", "1")))

    # ------------------------------------------------------------------ terms

    def query_terms(self, question: str) -> QueryTerms:
        kept = [w for w in words(question) if w not in STOPWORDS and len(w) > 1]
        stems = [stem(w) for w in kept]
        idf = {}
        for word, s in zip(kept, stems):
            df = self.document_frequency(word)
            idf[s] = math.log(1 + (self.chunk_count - df + 0.5) / (df + 0.5))
        return QueryTerms(kept, stems, idf)

    def document_frequency(self, word: str) -> int:
        with self._lock:
            if word not in self._df:
                # counted up to DF_CAP: past it a word is common anyway (idf near its
                # floor), and counting all of a common word's chunks in a big index costs
                # more than the search (never reached below 50,000 chunks)
                self._df[word] = self.index.document_frequency(word, DF_CAP)
            return self._df[word]

    # ------------------------------------------------------------------ search

    def encode_query(self, question: str) -> np.ndarray:
        return self.encoder.encode([question])[0]

    def allowed_chunks(self, filters: Filters) -> list[int] | None:
        """Chunk ids allowed by the filters, or None when there are no filters."""
        if not filters:
            return None
        return self.index.chunk_ids_where(
            since=filters.since, until=filters.until, source=filters.source
        )

    def dense(
        self, vector: np.ndarray, k: int, allowed: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        if allowed is None:
            return self.index.search_dense(vector, k)
        if not allowed:
            return []
        import faiss
        import numpy as np

        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        scores, ids = self.index.faiss.search(query, k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def keyword_words(self, terms: QueryTerms) -> list[str]:
        """The question's words the keyword search looks for: all of them, or on an index of
        more than `EXACT_KEYWORD_LIMIT` chunks the rarest ones, as many as fit a budget of
        `KEYWORD_POSTINGS` matching chunks (at least one). FTS5 scores every chunk that
        matches any word, so a common word in a big index costs more than the search itself
        (at 245,000 chunks: p95 81 ms for all words), while adding almost nothing to BM25."""
        words = list(dict.fromkeys(terms.words))
        if self.chunk_count <= EXACT_KEYWORD_LIMIT:
            return words
        kept: list[str] = []
        postings = 0
        for word in sorted(words, key=self.document_frequency):
            df = self.document_frequency(word)
            if kept and postings + df > KEYWORD_POSTINGS:
                break
            kept.append(word)
            postings += df
        return kept

    def keyword(
        self, terms: QueryTerms, k: int, allowed: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score; higher is better) for chunks matching any question term."""
        if not terms.words or (allowed is not None and not allowed):
            return []
        return self.index.keyword_search(
            self.keyword_words(terms), k, allowed, title_weight=self.search_settings.title_weight
        )

    def search(
        self,
        question: str,
        k: int = 20,
        filters: Filters | None = None,
        vector: np.ndarray | None = None,
        terms: QueryTerms | None = None,
    ) -> list[Passage]:
        """The top `k` passages for `question`, best first."""
        import numpy as np

        filters = filters or Filters()
        allowed = self.allowed_chunks(filters)
        terms = terms or self.query_terms(question)
        if vector is None:
            vector = self.encode_query(question)
        dense = self.dense(vector, max(self.dense_k, k), allowed)
        keyword = self.keyword(terms, max(self.keyword_k, k), allowed)

        fused: dict[int, float] = {}
        for ranked in (dense, keyword):
            for rank, (chunk_id, _) in enumerate(ranked, 1):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (self.rrf_k + rank)
        if not fused:
            return []
        candidates = sorted(fused, key=lambda c: -fused[c])[: max(self.rerank_k, k)]
        rows = self.index.chunks(candidates)
        query = np.asarray(vector, dtype=np.float32)
        dense_scores = dict(dense)
        missing = [c for c in candidates if c not in dense_scores and c in rows]
        if missing:
            stacked = np.vstack([np.frombuffer(rows[c].vector, dtype=np.float32) for c in missing])
            for chunk_id, score in zip(missing, stacked @ query):
                dense_scores[chunk_id] = float(score)
        scored = self._scored(
            [rows[c] for c in candidates if c in rows], query, terms, dense_scores,
            dict(keyword), fused,
        )  # fmt: skip
        scored.sort(key=lambda item: -item.score)
        return [item.passage(rank) for rank, item in enumerate(scored[:k], 1)]

    def _scored(
        self,
        rows: list[ChunkRow],
        query: np.ndarray,
        terms: QueryTerms,
        dense_scores: dict[int, float],
        bm25: dict[int, float],
        fused: dict[int, float],
    ) -> list[_Scored]:
        """Each candidate's features and weighted score."""
        import numpy as np

        best_bm25 = max(bm25.values(), default=1.0) or 1.0
        best_rrf = max(fused.values())
        title_share: dict[str, float] = {}
        doc_best: dict[int, float] = {}
        scored: list[_Scored] = []
        for row in rows:
            sentence_scores: tuple[float, ...] = ()
            if row.sentence_vectors:
                matrix = np.frombuffer(row.sentence_vectors, dtype=np.float16).reshape(
                    len(row.sentences), -1
                )
                sentence_scores = tuple(float(x) for x in matrix.astype(np.float32) @ query)
            if row.title not in title_share:
                title_share[row.title] = terms.share({stem(w) for w in words(row.title)})
            features = {
                "dense": dense_scores.get(row.id, 0.0),
                "title": title_share[row.title],
                "sentence_dense": max(sentence_scores, default=dense_scores.get(row.id, 0.0)),
                "bm25": bm25.get(row.id, 0.0) / best_bm25,
                "rrf": fused[row.id] / best_rrf,
                **overlap_features(terms, parse_sentence_stems(row.stems)),
            }
            doc_best[row.doc_id] = max(doc_best.get(row.doc_id, -1.0), features["sentence_dense"])
            scored.append(_Scored(row, features, sentence_scores))
        for item in scored:
            # how well the passage's document as a whole matches: the right article's other
            # passages are likelier than passages of articles that match nowhere else
            item.features["doc_best"] = doc_best[item.row.doc_id]
            item.score = sum(self.weights.get(name, 0.0) * v for name, v in item.features.items())
        return scored


@dataclass
class _Scored:
    """A candidate chunk while it is being re-ranked."""

    row: ChunkRow
    features: dict[str, float]
    sentence_scores: tuple[float, ...]
    score: float = 0.0

    def passage(self, rank: int) -> Passage:
        row = self.row
        return Passage(
            chunk_id=row.id,
            doc_id=row.doc_id,
            rank=rank,
            score=self.score,
            char_start=row.char_start,
            char_end=row.char_end,
            text=row.text,
            title=row.title,
            sentences=row.sentences,
            features=self.features,
            sentence_scores=self.sentence_scores,
        )


def overlap_features(terms: QueryTerms, sentences: Sequence[Collection[str]]) -> dict[str, float]:
    """How much of the question's weight (idf) the best sentence, and the chunk, contain;
    `sentences` holds each sentence's stems."""
    best = 0.0
    chunk_stems: set[str] = set()
    for stems in sentences:
        found = terms.stem_set.intersection(stems)
        chunk_stems |= found
        best = max(best, terms.share(found))
    return {"sentence": best, "cover": terms.share(chunk_stems)}
