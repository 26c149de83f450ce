"""Passages -> answers: the best sentences, quoted verbatim, with exact citations.

Every sentence of the top passages is a candidate. Each gets a few features (how much of the
question's weight it holds, shared word pairs, its passage's retrieval score and rank, whether
it holds something of the kind the question asks for: a date for "when", a number for "how
many", a name for "who"...) combined by a logistic model whose weights are fitted on half of
the SQuAD articles (`scripts/fit_weights.py`). Where the question type allows, the short span
that answers is picked inside the sentence. The same sentence found in duplicate articles is
one answer with several citations. Below a calibrated score the answer is "not found in the
corpus", and the closest passages are shown as related.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from qa.retrieval import Passage, QueryTerms, load_weights
from qa.text import STOPWORDS, normalize_answer, stem, words

DEFAULT_SENTENCE_WEIGHTS = {
    "bias": -4.0,
    "overlap": 5.0,
    "bigram": 1.5,
    "passage": 1.0,
    "prank": 1.0,
    "dense": 2.0,
    "type": 1.0,
    "novel": 1.0,
    "length": -0.5,
    "sequence": 1.0,
    "previous": 0.5,
    "rarest": 0.5,
    "sentence_dense": 2.0,
    "type_near": 1.0,
}
DEFAULT_ABSTAIN = 0.2
_DIGITS = re.compile(r"\d[\d,.]*")


@dataclass(frozen=True)
class Citation:
    """Where a quote comes from: `body[char_start:char_end] == quote` in that article."""

    article_id: str
    title: str
    path: str
    published: str | None
    url: str | None
    paragraph: int
    char_start: int
    char_end: int
    quote: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Citation:
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        return {
            "article_id": self.article_id,
            "title": self.title,
            "path": self.path,
            "published": self.published,
            "url": self.url,
            "paragraph": self.paragraph,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "quote": self.quote,
        }


@dataclass(frozen=True)
class Answer:
    """One answer: a sentence quoted from the corpus, an optional short span inside it."""

    text: str
    span: str | None
    span_start: int | None
    """Offset of the span inside `text` (None without a span)."""
    score: float
    citations: tuple[Citation, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        return cls(
            text=data["text"],
            span=data.get("span"),
            span_start=data.get("span_start"),
            score=float(data.get("score", 0.0)),
            citations=tuple(Citation.from_dict(c) for c in data.get("citations", [])),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "span": self.span,
            "span_start": self.span_start,
            "score": round(self.score, 4),
            "citations": [c.as_dict() for c in self.citations],
        }


@dataclass(frozen=True)
class Result:
    """The answer to one question, as every front end shows it."""

    question: str
    query: str
    """The self-contained query that was searched (differs for follow-up questions)."""
    not_found: bool
    answers: tuple[Answer, ...]
    related: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = field(default=(), compare=False, repr=False)
    confidence: float = 0.0
    """Probability that the best answer is right (the corpus answers the question and this
    sentence is the answer); below the threshold: not found."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        """The inverse of `as_dict` (passages are not kept)."""
        return cls(
            question=data["question"],
            query=data.get("query") or data["question"],
            not_found=bool(data.get("not_found")),
            answers=tuple(Answer.from_dict(a) for a in data.get("answers", [])),
            related=tuple(Citation.from_dict(c) for c in data.get("related", [])),
            confidence=float(data.get("confidence", 0.0)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "query": self.query,
            "not_found": self.not_found,
            "confidence": round(self.confidence, 4),
            "answers": [a.as_dict() for a in self.answers],
            "related": [c.as_dict() for c in self.related],
        }


# --------------------------------------------------------------------------- question types

_TYPE_PATTERNS = [
    ("date", r"\b(when|what (year|date|day|month|century|decade|time|era|period)|which "
     r"(year|date|day|month|century|decade)|how long ago|since when)\b"),
    ("number", r"\b(how (many|much|long|old|far|large|big|high|tall|fast|often|deep|wide|heavy)"
     r"|what (percentage|percent|number|amount|proportion|fraction|size|age)|how much)\b"),
    ("person", r"\b(who|whom|whose|which (person|man|woman|player|president|king|leader)|"
     r"what (person|name))\b"),
    ("place", r"\b(where|what (city|country|place|state|region|town|continent|location|nation)|"
     r"which (city|country|place|state|region|town|continent|nation))\b"),
]  # fmt: skip
_TYPES = [(name, re.compile(pattern, re.I)) for name, pattern in _TYPE_PATTERNS]

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
)
_DATE_SPAN = re.compile(
    rf"\b(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}"
    rf",?\s+\d{{4}}|{_MONTH}\s+\d{{4}}|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?|(?:the\s+)?\d{{4}}s|"
    r"(?:the\s+)?\d{1,2}(?:st|nd|rd|th)\s+century|(?:1[0-9]|20)\d{2}(?:\s*[-–]\s*\d{2,4})?|"
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday))\b"
)
_NUMBER_WORDS = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    r"eighty|ninety|hundred|thousand|million|billion|dozen|half)"
)
_NUMBER_SPAN = re.compile(
    rf"(?:[$£€¥]\s?)?\b(?:\d[\d,]*(?:\.\d+)?|{_NUMBER_WORDS}(?:[\s-]+{_NUMBER_WORDS})*)"
    r"(?:\s?(?:%|percent|per cent|million|billion|trillion|thousand|hundred|bn|m|km|miles?|"
    r"kilometres?|kilometers?|metres?|meters?|feet|ft|years?|months?|weeks?|days?|hours?|"
    r"minutes?|people|members|officers|soldiers|times|points?|tons?|tonnes?|kg|pounds?|"
    r"dollars?|euros?|yen))?\b",
    re.I,
)
_NAME_SPAN = re.compile(
    r"\b[A-Z][\w'’.-]*(?:\s+(?:(?:of|the|de|del|van|von|la|le|and|for|al|bin|da)\s+)?"
    r"[A-Z][\w'’.-]*)*"
)


def question_type(question: str) -> str:
    for name, pattern in _TYPES:
        if pattern.search(question):
            return name
    return "other"


_CALENDAR_WORDS = frozenset(
    """january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday""".split()
)
_YEAR = re.compile(r"\b(?:1[0-9]|20)\d{2}\b")
_CENTURY = re.compile(r"\b\d{1,2}(?:st|nd|rd|th)\s+century\b", re.I)


def _candidates(kind: str, sentence: str, question: str = "") -> list[tuple[int, int]]:
    if kind == "date":
        lowered = question.lower()
        if re.search(r"\b(what|which|in what) year\b", lowered):
            return [m.span() for m in _YEAR.finditer(sentence)]
        if "century" in lowered:
            return [m.span() for m in _CENTURY.finditer(sentence)]
        return [m.span() for m in _DATE_SPAN.finditer(sentence)]
    if kind == "number":
        return [m.span() for m in _NUMBER_SPAN.finditer(sentence)]
    if kind in ("person", "place"):
        spans = []
        for match in _NAME_SPAN.finditer(sentence):
            start = match.start()
            text = match.group().rstrip(".")
            if start == 0 and text.lower() in STOPWORDS:
                continue
            if text.lower() in _CALENDAR_WORDS:
                continue
            spans.append((start, start + len(text)))
        return spans
    return []


def _trim_known_words(
    sentence: str, span: tuple[int, int], question_stems: AbstractSet[str]
) -> tuple[int, int]:
    """Drop a trailing unit word the question already names ("how many officers" ->
    "1,000", not "1,000 officers")."""
    start, end = span
    text = sentence[start:end]
    match = re.search(r"\s+([A-Za-z]+)$", text)
    if match and stem(match.group(1)) in question_stems:
        end = start + match.start()
    return start, end


def _in_question(word_stem: str, question_stems: AbstractSet[str]) -> bool:
    """The question names this word, also as a prefix ("Korea" in "Korean", "Britain" ...)."""
    if word_stem in question_stems:
        return True
    return len(word_stem) >= 4 and any(
        len(q) >= 4 and (q.startswith(word_stem) or word_stem.startswith(q)) for q in question_stems
    )


def pick_span(
    kind: str, sentence: str, question_stems: AbstractSet[str], question: str = ""
) -> tuple[int, int] | None:
    """The short answer inside `sentence`: a candidate of the asked-for kind that is not
    already in the question, nearest to the words the sentence shares with the question."""
    spans = []
    for start, end in _candidates(kind, sentence, question):
        inside = {stem(w) for w in words(sentence[start:end])} - STOPWORDS
        if inside and all(_in_question(w, question_stems) for w in inside):
            continue
        if kind == "number":
            start, end = _trim_known_words(sentence, (start, end), question_stems)
        spans.append((start, end))
    if not spans:
        return None
    anchors = [
        m.start()
        for m in re.finditer(r"[A-Za-z0-9]+", sentence)
        if stem(m.group()) in question_stems and m.group().lower() not in STOPWORDS
    ]
    if not anchors:
        return spans[0]

    def distance(span: tuple[int, int]) -> float:
        middle = (span[0] + span[1]) / 2
        return min(abs(middle - a) for a in anchors)

    return min(spans, key=distance)


# --------------------------------------------------------------------------- features


def _bigrams(stems: Sequence[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(stems))


def _common_subsequence(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two short word lists."""
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def sentence_features(
    terms: QueryTerms,
    kind: str,
    sentence: str,
    passage: Passage,
    best_passage_score: float,
    previous: str = "",
    sentence_dense: float | None = None,
) -> dict[str, float]:
    sentence_words = [w for w in words(sentence) if w not in STOPWORDS]
    sentence_stems = [stem(w) for w in sentence_words]
    stem_set = set(sentence_stems)
    question = terms.stem_set
    previous_stems = {stem(w) for w in words(previous) if w not in STOPWORDS}
    sequence = (
        _common_subsequence(terms.stems, sentence_stems) / len(terms.stems) if terms.stems else 0.0
    )
    bigram = len(terms.pairs & _bigrams(sentence_stems)) / len(terms.pairs) if terms.pairs else 0.0
    novel = len(stem_set - question) / len(stem_set) if stem_set else 0.0
    has_type = 0.0
    type_near = 0.0
    if kind != "other":
        span = pick_span(kind, sentence, question)
        if span is not None:
            has_type = 1.0
            type_near = _nearness(sentence, span, question)
    return {
        "overlap": terms.share(stem_set),
        "bigram": bigram,
        "passage": passage.score - best_passage_score,
        "prank": 1.0 / passage.rank,
        "dense": passage.features.get("dense", 0.0),
        "type": has_type,
        "novel": novel,
        "length": math.log1p(len(sentence_words)) / 4,
        "sequence": sequence,
        "previous": terms.share(previous_stems),
        "rarest": 1.0 if terms.rarest in stem_set else 0.0,
        "type_near": type_near,
        "sentence_dense": (
            sentence_dense if sentence_dense is not None else passage.features.get("dense", 0.0)
        ),
    }


def _nearness(sentence: str, span: tuple[int, int], question_stems: AbstractSet[str]) -> float:
    """exp(-d/4) for the distance d, in words, from the span to the nearest question word."""
    positions = [
        (m.start(), m.end())
        for m in re.finditer(r"[A-Za-z0-9]+", sentence)
        if m.group().lower() not in STOPWORDS and stem(m.group()) in question_stems
    ]
    if not positions:
        return 0.0
    before = sentence[: span[0]]
    after = sentence[span[1] :]
    best = math.inf
    for start, end in positions:
        if end <= span[0]:
            best = min(best, len(words(before[end:])))
        elif start >= span[1]:
            best = min(best, len(words(after[: start - span[1]])))
    return math.exp(-best / 4) if best != math.inf else 0.0


def linear(weights: dict[str, float], features: dict[str, float]) -> float:
    return weights.get("bias", 0.0) + sum(weights.get(k, 0.0) * v for k, v in features.items())


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def logistic(weights: dict[str, float], features: dict[str, float]) -> float:
    return sigmoid(linear(weights, features))


_NEGATION = re.compile(r"\b(not|never|no|none|neither|nor|without)\b|n't\b", re.I)


def answerability_features(
    terms: QueryTerms, ranked: Sequence[Candidate], question: str
) -> dict[str, float]:
    """Evidence that the corpus answers the question at all: the best sentence's features and
    score (as a logit), its lead over the next, and how much of the question its passage
    leaves unmatched (unanswerable questions often name a detail, a year or an entity that
    is not there, or turn the statement around with a negation)."""
    top = ranked[0]
    second = ranked[1].score if len(ranked) > 1 else 0.0
    evidence = {stem(w) for w in words(top.passage.text)} | {
        stem(w) for w in words(top.passage.title)
    }
    question_stems = terms.stem_set
    missing = question_stems - evidence
    top_idf = max(terms.idf.values(), default=1.0) or 1.0
    numbers = [n.strip(".,") for n in _DIGITS.findall(question)]
    p = min(max(top.score, 1e-6), 1 - 1e-6)
    return {
        "logit": math.log(p / (1 - p)),
        "margin": top.score - second,
        "missing": terms.share(missing),
        "max_missing": max((terms.idf.get(s, 0.0) for s in missing), default=0.0) / top_idf,
        "number_missing": float(any(n and n not in top.passage.text for n in numbers)),
        "negation": float(bool(_NEGATION.search(question))),
        "overlap": top.features.get("overlap", 0.0),
        "sentence_dense": top.features.get("sentence_dense", 0.0),
        "passage_dense": top.passage.features.get("dense", 0.0),
        "type": top.features.get("type", 0.0),
        "terms": min(len(question_stems), 12) / 12,
    }


@dataclass
class Candidate:
    doc_id: int
    start: int
    end: int
    text: str
    passage: Passage
    features: dict[str, float]
    score: float = 0.0
    """Probability that the sentence answers the question."""
    logit: float = 0.0
    """The same on the linear scale: ranks without saturating near 1."""


# --------------------------------------------------------------------------- reading


class Reader:
    """Turns ranked passages into answers with citations."""

    def __init__(
        self,
        conn: Any,
        *,
        read_passages: int = 8,
        weights: dict[str, float] | None = None,
        abstain_below: float | None = None,
    ) -> None:
        self.conn = conn
        self.read_passages = read_passages
        fitted = load_weights()
        self.weights = weights or fitted.get("sentence") or DEFAULT_SENTENCE_WEIGHTS
        self.answerability: dict[str, float] | None = fitted.get("answerability")
        self.abstain_below = (
            abstain_below if abstain_below is not None else fitted.get("abstain", DEFAULT_ABSTAIN)
        )

    def candidates(
        self, question: str, terms: QueryTerms, passages: Sequence[Passage]
    ) -> list[Candidate]:
        """Every sentence of the top passages, scored; best first."""
        kind = question_type(question)
        if not passages:
            return []
        best = passages[0].score
        seen: dict[tuple[int, int, int], Candidate] = {}
        for passage in passages[: self.read_passages]:
            previous = ""
            for number, (start, end) in enumerate(passage.sentences):
                key = (passage.doc_id, start, end)
                text = passage.text[start - passage.char_start : end - passage.char_start]
                if key in seen or len(text) < 2:
                    previous = text
                    continue
                dense = (
                    passage.sentence_scores[number]
                    if number < len(passage.sentence_scores)
                    else None
                )
                features = sentence_features(terms, kind, text, passage, best, previous, dense)
                previous = text
                candidate = Candidate(passage.doc_id, start, end, text, passage, features)
                candidate.logit = linear(self.weights, features)
                candidate.score = sigmoid(candidate.logit)
                seen[key] = candidate
        return sorted(seen.values(), key=lambda c: -c.logit)

    def confidence(self, terms: QueryTerms, ranked: Sequence[Candidate], question: str) -> float:
        """Probability that the best sentence answers the question, from the answerability
        model (the sentence's own score when none was fitted)."""
        if not ranked:
            return 0.0
        if not self.answerability:
            return ranked[0].score
        return logistic(self.answerability, answerability_features(terms, ranked, question))

    def read(
        self,
        question: str,
        terms: QueryTerms,
        passages: Sequence[Passage],
        *,
        query: str | None = None,
        n: int = 3,
        abstain: bool = True,
    ) -> Result:
        ranked = self.candidates(question, terms, passages)
        query = query or question
        confidence = self.confidence(terms, ranked, question)
        if not ranked or (abstain and confidence < self.abstain_below):
            related = self._related(passages[:3])
            return Result(question, query, True, (), related, tuple(passages), confidence)
        kind = question_type(question)
        question_stems = terms.stem_set
        chosen: list[list[Candidate]] = []
        by_text: dict[str, list[Candidate]] = {}
        for candidate in ranked:
            key = normalize_answer(candidate.text)
            if key in by_text:
                # the same sentence in another document (syndicated copy): one more citation
                if all(c.doc_id != candidate.doc_id for c in by_text[key]):
                    by_text[key].append(candidate)
                continue
            if len(chosen) >= n:
                continue
            if any(group[0].doc_id == candidate.doc_id for group in chosen):
                continue  # distinct answers come from different articles
            # further answers only when nearly as likely as the first (odds within 1:20)
            if chosen and candidate.logit < chosen[0][0].logit - 3.0:
                continue
            group = [candidate]
            by_text[key] = group
            chosen.append(group)
        documents = self._documents({c.doc_id for group in chosen for c in group})
        answers = []
        for group in chosen:
            head = group[0]
            span = pick_span(kind, head.text, question_stems, question) if kind != "other" else None
            citations = tuple(
                citation
                for candidate in group
                for citation in self._citations(
                    documents, candidate.doc_id, candidate.start, candidate.end
                )
            )
            answers.append(
                Answer(
                    text=head.text,
                    span=head.text[span[0] : span[1]] if span else None,
                    span_start=span[0] if span else None,
                    score=head.score,
                    citations=citations,
                )
            )
        return Result(question, query, False, tuple(answers), (), tuple(passages), confidence)

    def _documents(self, doc_ids: set[int]) -> dict[int, tuple[str, list[list[int]], list[Any]]]:
        if not doc_ids:
            return {}
        marks = ",".join("?" * len(doc_ids))
        docs: dict[int, tuple[str, list[list[int]], list[Any]]] = {}
        for row in self.conn.execute(
            f"SELECT id, body, paragraphs FROM documents WHERE id IN ({marks})", list(doc_ids)
        ):
            docs[row[0]] = (row[1], json.loads(row[2]), [])
        for row in self.conn.execute(
            f"SELECT doc_id, id, title, ref, published, url FROM articles WHERE doc_id IN ({marks})"
            " ORDER BY ref",
            list(doc_ids),
        ):
            docs[row[0]][2].append(row)
        return docs

    @staticmethod
    def _citations(
        documents: dict[int, tuple[str, list[list[int]], list[Any]]],
        doc_id: int,
        start: int,
        end: int,
    ) -> list[Citation]:
        body, paragraphs, articles = documents[doc_id]
        paragraph = next(
            (i for i, (_, p_end) in enumerate(paragraphs, 1) if start < p_end), len(paragraphs)
        )
        return [
            Citation(
                article_id=row[1],
                title=row[2],
                path=row[3],
                published=row[4],
                url=row[5],
                paragraph=paragraph,
                char_start=start,
                char_end=end,
                quote=body[start:end],
            )
            for row in articles
        ]

    def _related(self, passages: Sequence[Passage]) -> tuple[Citation, ...]:
        documents = self._documents({p.doc_id for p in passages})
        related: list[Citation] = []
        for passage in passages:
            citations = self._citations(
                documents, passage.doc_id, passage.char_start, passage.char_end
            )
            related.extend(citations[:1])
        return tuple(related)
