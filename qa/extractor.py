"""Passages -> answers: the span that answers, quoted in its sentence, with exact citations.

The trained reader (`qa.reader_model`, fine-tuned from the bundled MiniLM weights by
`scripts/train_reader.py`) reads the top `first_read` retrieved passages, and the rest of the
top `read_passages` only when no proposal of those reaches `read_on_below`; it proposes its
best `spans` spans in each (1 as shipped), with span scores and the passage's no-answer
score. Each proposal is scored by a small logistic model over the reader's scores, whether
the span is the kind of answer the question asks for (`qa.answer_types`: a whole number, a
currency for a sum of money, an age only for "how old", a name for "who"), the passage's
retrieval scores and the verifier's logit for the best few (`candidate_features`, fitted by
`scripts/fit_weights.py` on SQuAD 2.0 dev's `fit:weights` part with the fit half of the news
question sets; the lexical cues only if a fit weighs them), so the reader also re-ranks the
passages; the best one is the answer. Its logit, Platt-scaled on the same data, is
`confidence`: the probability that the shown answer is right. Below the fitted threshold the
answer is "not found in the corpus", with the closest passages as related. A piece of a
number ("96" of "21,004.96") is never proposed. Story questions ("What happened to Ring?")
are answered by `AnswerExtractor.story` with the lead of the article they are about.

The quote is the sentence (or sentences) around the span, so a citation always points at whole
sentences, and the span is highlighted inside it. The same sentence found in duplicate articles
is one answer with several citations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.answer_types import Kind, asks_why, cut_number, question_kind, type_features
from qa.answers import Answer, Citation, Result
from qa.dates import relative_dates
from qa.retrieval import Passage
from qa.text import QUESTION_WORDS, STOPWORDS, normalize_answer, stem, words
from qa.verifier import proposal_parts
from qa.weights import ReaderWeights, load_weights

if TYPE_CHECKING:
    from qa.index import DocumentRow, IndexReader
    from qa.reader_model import ReaderModel, Reading
    from qa.verifier import Verifier

# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class QuestionCues:
    """What a passage must mention to answer the question: its content words (stemmed), the
    names in it and the numbers in it."""

    stems: frozenset[str]
    names: tuple[str, ...]
    numbers: tuple[str, ...]

    @classmethod
    def of(cls, question: str) -> QuestionCues:
        content = {stem(w) for w in words(question) if w not in STOPWORDS and len(w) > 1}
        content -= {stem(w) for w in QUESTION_WORDS}
        names = tuple(
            m.group() for m in _CUE_NAME.finditer(question) if m.start() > 0
        )  # the first word is capitalised anyway
        return cls(frozenset(content), names, tuple(_CUE_NUMBER.findall(question)))


_CUE_NAME = re.compile(r"\b[A-Z][\w'’-]+")
_CUE_NUMBER = re.compile(r"\d[\d,.]*\d|\d")


LEXICAL_FEATURES = ("q_missing", "names_missing", "numbers_missing")


def lexical_features(cues: QuestionCues, passage_text: str) -> dict[str, float]:
    """How much of the question the passage leaves out: the share of its content words, and
    whether any name or number of the question is missing (a question about another year or
    another person than the passage's is one the passage cannot answer)."""
    passage_stems = {stem(w) for w in words(passage_text)}
    missing = len(cues.stems - passage_stems) / len(cues.stems) if cues.stems else 0.0
    lowered = passage_text.lower()
    names = float(any(name.lower() not in lowered for name in cues.names))
    numbers = float(any(number not in passage_text for number in cues.numbers))
    return {"q_missing": missing, "names_missing": names, "numbers_missing": numbers}


def candidate_features(
    reading: Reading,
    passage: Passage,
    best_score: float,
    best_margin: float,
    cues: QuestionCues | None = None,
    span_score: float | None = None,
) -> dict[str, float]:
    """The reader's scores for a span in `passage` (its best span, or the runner-up scored
    `span_score`), how its margin compares with the best margin of the passages read and how
    far it trails the passage's best span (`alt_gap`); the passage's own retrieval scores
    (relative to the best passage's, so they compare across questions) and, given the
    question's `cues`, what of the question the passage does not mention."""
    score = reading.span_score if span_score is None else span_score
    margin = score - reading.null_score
    features = {
        "margin": margin,
        "lead": margin - best_margin,
        "span": score,
        "null": reading.null_score,
        "passage": passage.score - best_score,
        "prank": 1.0 / passage.rank,
        "dense": passage.features.get("dense", 0.0),
        "alt_gap": reading.span_score - score,
    }
    if cues is not None:
        features.update(lexical_features(cues, passage.text))
    return features


def linear(weights: dict[str, float], features: dict[str, float]) -> float:
    return weights.get("bias", 0.0) + sum(weights.get(k, 0.0) * v for k, v in features.items())


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass
class Candidate:
    """The reader's best span in one passage, with its place in the document."""

    passage: Passage
    span_start: int
    """Document offsets of the span."""
    span_end: int
    start: int
    """Document offsets of the quote: the whole sentences the span lies in."""
    end: int
    text: str
    features: dict[str, float]
    alt_rank: int = 1
    """1 for the passage's best span, 2 for its runner-up, ..."""
    logit: float = 0.0
    score: float = 0.0
    """Calibrated probability that this answer is right."""

    @property
    def doc_id(self) -> int:
        return self.passage.doc_id


def sentence_bounds(passage: Passage, start: int, end: int) -> tuple[int, int]:
    """Document offsets of the passage's sentences that the span [start, end) touches."""
    first = last = None
    for s, e in passage.sentences:
        if e > start and first is None:
            first = s
        if s < end:
            last = e
    if first is None or last is None or last <= first:
        return start, end
    return min(first, start), max(last, end)


def verifier_input(candidate: Candidate) -> tuple[str, str, str]:
    """What the verifier reads of a candidate (`qa.verifier.proposal_parts`): the text
    before its span from the sentence before its own, the span, the rest of its sentence."""
    passage = candidate.passage
    origin = passage.char_start
    return proposal_parts(
        passage.text,
        [(start - origin, end - origin) for start, end in passage.sentences],
        candidate.span_start - origin,
        candidate.span_end - origin,
    )


def explained_end(candidate: Candidate) -> int:
    """Where the quote of an answer to a "why" or "how did" question ends: after the
    sentence that follows the span's, when that sentence is in the same paragraph and
    passage (an explanation rarely fits in the one sentence a span lies in)."""
    passage = candidate.passage
    origin = passage.char_start
    for start, end in passage.sentences:
        if start >= candidate.end:
            between = passage.text[candidate.end - origin : start - origin]
            return candidate.end if "\n" in between or end > passage.char_end else end
    return candidate.end


# --------------------------------------------------------------------------- reading


def reranked(passages: Sequence[Passage], ranked: Sequence[Candidate]) -> tuple[Passage, ...]:
    """The passages re-ranked by the reader: those it proposed a span in, by their best
    candidate's score (which weighs retrieval in too), then the rest in retrieval order.
    `Passage.rank` keeps the retrieval rank."""
    order: dict[int, int] = {}
    for candidate in ranked:  # best first
        order.setdefault(candidate.passage.chunk_id, len(order))
    last = len(order)
    return tuple(sorted(passages, key=lambda p: (order.get(p.chunk_id, last), p.rank)))


def _published(citations: Sequence[Citation]) -> str | None:
    """The publication date a quote's relative dates count from: its first dated copy's."""
    return next((c.published for c in citations if c.published), None)


STORY_PASSAGES = 8
"""Passages whose articles a story question chooses among (no model reads them)."""


class AnswerExtractor:
    """Turns ranked passages into answers with citations: the reader model
    (`qa.reader_model.ReaderModel`) reads them, the verifier checks its best proposals, the
    fitted weights rank them."""

    def __init__(
        self,
        index: IndexReader | None,
        *,
        model: ReaderModel | None = None,
        read_passages: int | None = None,
        spans: int | None = None,
        fitted: ReaderWeights | None = None,
        abstain_below: float | None = None,
        verifier: Verifier | None = None,
        verify: bool | None = None,
        all_features: bool = False,
    ) -> None:
        self.index = index
        settings = fitted or load_weights().reader
        self.weights: dict[str, float] = dict(settings.weights)
        self.lexical = all_features or any(name in self.weights for name in LEXICAL_FEATURES)
        """Whether proposals get the lexical features (what of the question a passage does
        not mention): only where the weights weigh them, or for fitting (`all_features`)."""
        self.verify = "verify" in self.weights if verify is None else verify
        """Whether proposals get the verifier's logit (where the weights weigh it)."""
        self.verify_top = settings.verify_top
        """How many of the best proposals the verifier reads (0: all)."""
        self._verifier = verifier
        self.platt = settings.platt
        self.read_passages = int(read_passages or settings.read_passages)
        self.first_read = settings.first_read
        """Passages read first (0: all `read_passages` at once); the rest are read only
        when no proposal of those reaches `read_on_below`."""
        self.read_on_below = settings.read_on_below
        self.spans = int(spans or settings.spans)
        self.abstain_below = float(abstain_below if abstain_below is not None else settings.abstain)
        self._model = model

    @property
    def model(self) -> ReaderModel:
        if self._model is None:
            from qa.reader_model import shared_reader

            self._model = shared_reader()
        return self._model

    @property
    def verifier(self) -> Verifier:
        if self._verifier is None:
            from qa.verifier import shared_verifier

            self._verifier = shared_verifier()
        return self._verifier

    def probability(self, logit: float) -> float:
        return sigmoid(self.platt[0] * logit + self.platt[1])

    def candidates(self, question: str, passages: Sequence[Passage]) -> list[Candidate]:
        """The reader's best spans (`spans` of them) in each of the top passages, best
        first. With `first_read` set, the first that many passages are read first, and the
        rest only when the best proposal among those is below `read_on_below`: a question the
        top passages answer surely costs a fraction of the model's time."""
        top = list(passages[: self.read_passages])
        if not top:
            return []
        first = self.first_read if 0 < self.first_read < len(top) else len(top)
        readings = self._read(question, top[:first])
        verified: dict[tuple[int, int, int], float] = {}
        ranked = self._propose(question, top[:first], readings, verified)
        if first < len(top) and (not ranked or ranked[0].score < self.read_on_below):
            readings += self._read(question, top[first:])
            ranked = self._propose(question, top, readings, verified)
        return ranked

    def _read(self, question: str, passages: Sequence[Passage]) -> list[Reading]:
        return self.model.read_passages(
            question,
            [p.text for p in passages],
            spans=self.spans,
            sentence_starts=[[s - p.char_start for s, _ in p.sentences[1:]] for p in passages],
        )

    def _propose(
        self,
        question: str,
        top: Sequence[Passage],
        readings: Sequence[Reading],
        verified: dict[tuple[int, int, int], float],
    ) -> list[Candidate]:
        """The scored proposals of the passages read (`readings` of `top`), best first;
        `verified` keeps the verifier's logits between the stages of reading."""
        best = top[0].score
        best_margin = max((r.margin for r in readings if r.start is not None), default=0.0)
        cues = QuestionCues.of(question) if self.lexical else None
        kind = question_kind(question)
        found: dict[tuple[int, int, int], Candidate] = {}
        for passage, reading in zip(top, readings, strict=True):
            if reading.start is None or reading.end is None:
                continue
            spans = reading.alternatives or ((reading.start, reading.end, reading.span_score),)
            for alt_rank, (first, last, score) in enumerate(spans, 1):
                candidate = self._candidate(
                    question, passage, first, last, kind,
                    candidate_features(reading, passage, best, best_margin, cues, score),
                )  # fmt: skip
                if candidate is None:
                    continue
                candidate.alt_rank = alt_rank
                key = (passage.doc_id, candidate.span_start, candidate.span_end)
                # overlapping chunks of one article can find the same span: keep the best
                if key not in found or found[key].logit < candidate.logit:
                    found[key] = candidate
        if self.verify and found:
            self._verify(question, list(found.values()), verified)
        return sorted(found.values(), key=lambda c: -c.logit)

    def _verify(
        self,
        question: str,
        proposals: list[Candidate],
        verified: dict[tuple[int, int, int], float] | None = None,
    ) -> None:
        """The verifier's logit for the `verify_top` proposals the rest of the evidence ranks
        best (all with 0): the answer and its confidence come from those, and the verifier
        costs a model run a proposal (`verified` holds the logits already known, by
        proposal). The others get the lowest logit given, since the rest of the evidence
        already ranks them lower."""
        known = {} if verified is None else verified
        proposals.sort(key=lambda c: -c.logit)  # everything but the verifier, for now
        checked = proposals[: self.verify_top] if self.verify_top else proposals
        keys = [(c.doc_id, c.span_start, c.span_end) for c in checked]
        unread = [(key, c) for key, c in zip(keys, checked, strict=True) if key not in known]
        if unread:
            fresh = self.verifier.logits(question, [verifier_input(c) for _, c in unread])
            known.update(zip([key for key, _ in unread], fresh, strict=True))
        logits = [known[key] for key in keys]
        for candidate, logit in zip(checked, logits, strict=True):
            candidate.features["verify"] = logit
        for candidate in proposals[len(checked) :]:
            candidate.features["verify"] = min(logits)
        for candidate in proposals:
            candidate.logit = linear(self.weights, candidate.features)
            candidate.score = self.probability(candidate.logit)

    def _candidate(
        self,
        question: str,
        passage: Passage,
        first: int,
        last: int,
        kind: Kind | None,
        features: dict[str, float],
    ) -> Candidate | None:
        """The span [first, last) of `passage` as a scored candidate with its sentence; None
        for a piece of a number ("96" of "21,004.96"), which answers nothing."""
        span_start = passage.char_start + first
        span_end = passage.char_start + last
        start, end = sentence_bounds(passage, span_start, span_end)
        text = passage.text[start - passage.char_start : end - passage.char_start]
        span = passage.text[first:last]
        before = passage.text[max(0, start - passage.char_start) : first]
        after = passage.text[last : end - passage.char_start]
        if cut_number(span, before, after):
            return None
        features.update(type_features(kind, span, span_start == start, before, after, question))
        candidate = Candidate(passage, span_start, span_end, start, end, text, features)
        candidate.logit = linear(self.weights, features)
        candidate.score = self.probability(candidate.logit)
        return candidate

    def read(
        self,
        question: str,
        passages: Sequence[Passage],
        *,
        query: str | None = None,
        n: int = 3,
        abstain: bool = True,
    ) -> Result:
        ranked = self.candidates(question, passages)
        passages = reranked(passages, ranked)
        query = query or question
        confidence = ranked[0].score if ranked else 0.0
        if not ranked or (abstain and confidence < self.abstain_below):
            return self._not_found(question, query, passages, confidence)
        chosen = self._chosen(ranked, n, abstain)
        documents = self._documents({c.doc_id for group in chosen for c in group})
        explain = asks_why(question)
        answers = [self._answer(group, documents, explain) for group in chosen]
        return Result(
            question=question,
            query=query,
            not_found=False,
            answers=tuple(answers),
            passages=tuple(passages),
            confidence=confidence,
        )

    def _not_found(
        self, question: str, query: str, passages: Sequence[Passage], confidence: float = 0.0
    ) -> Result:
        """A "not found" result, with the closest passages as related."""
        return Result(
            question=question,
            query=query,
            not_found=True,
            answers=(),
            related=self._related(passages[:3]),
            passages=tuple(passages),
            confidence=confidence,
        )

    def _chosen(self, ranked: list[Candidate], n: int, abstain: bool) -> list[list[Candidate]]:
        """At most `n` distinct answers, best first, each a group: its candidate and the
        same sentence in other articles (syndicated copies, one more citation each).
        Distinct answers come from different articles, and further answers only when nearly
        as likely as the first and likely enough."""
        chosen: list[list[Candidate]] = []
        by_text: dict[str, list[Candidate]] = {}
        for candidate in ranked:
            key = normalize_answer(candidate.text)
            if key in by_text:
                if all(c.doc_id != candidate.doc_id for c in by_text[key]):
                    by_text[key].append(candidate)
                continue
            if len(chosen) >= n:
                continue
            if any(group[0].doc_id == candidate.doc_id for group in chosen):
                continue
            if chosen and (
                candidate.logit < chosen[0][0].logit - 3.0
                or (abstain and candidate.score < self.abstain_below)
            ):
                continue
            group = [candidate]
            by_text[key] = group
            chosen.append(group)
        return chosen

    def _answer(
        self, group: list[Candidate], documents: dict[int, DocumentRow], explain: bool
    ) -> Answer:
        """The answer a group of candidates gives: its head's sentence (and, for "why", the
        sentence that goes on), the span in it, and a citation for each copy."""
        head = group[0]
        if explain:
            for candidate in group:
                candidate.end = explained_end(candidate)
            head.text = documents[head.doc_id].body[head.start : head.end]
        citations = tuple(
            citation
            for candidate in group
            for citation in self._citations(
                documents, candidate.doc_id, candidate.start, candidate.end
            )
        )
        span_at = head.span_start - head.start
        return Answer(
            text=head.text,
            span=head.text[span_at : span_at + head.span_end - head.span_start],
            span_start=span_at,
            score=head.score,
            citations=citations,
            dates=relative_dates(head.text, _published(citations)),
        )

    def story(
        self, question: str, subject: str, passages: Sequence[Passage], *, query: str | None = None
    ) -> Result:
        """The answer to a story question (`qa.story.story_subject`): the lead of the article
        it is about, verbatim and cited. Of the articles of the top passages, the one whose
        headline and lead name most of the subject wins (retrieval's order breaks ties); the
        confidence is that share (`subject_cover`): how sure this is the story meant. An
        article naming none of it is "not found", with the closest passages."""
        from qa.story import lead_span, subject_cover

        query = query or subject
        order: dict[int, int] = {}
        for passage in passages[:STORY_PASSAGES]:
            order.setdefault(passage.doc_id, len(order))
        documents = self._documents(set(order)) if order else {}
        # ranked by how much of the subject headline and lead name; ties (two stories on one
        # topic) go to the headline that names more of it, then to retrieval's order
        best_rank: tuple[float, float, int] | None = None
        best: tuple[int, int, int] | None = None  # document, lead start, lead end
        for doc_id, place in order.items():
            document = documents[doc_id]
            lead = lead_span(document.body, document.paragraphs)
            if lead is None:
                continue
            headline = document.articles[0].title if document.articles else ""
            cover = subject_cover(subject, f"{headline}\n{document.body[lead[0] : lead[1]]}")
            rank = (cover, subject_cover(subject, headline), -place)
            if best_rank is None or rank > best_rank:
                best_rank, best = rank, (doc_id, *lead)
        if best_rank is None or best is None or best_rank[0] == 0.0:
            return self._not_found(question, query, passages)
        cover = best_rank[0]
        doc_id, start, end = best
        citations = tuple(self._citations(documents, doc_id, start, end))
        text = documents[doc_id].body[start:end]
        answer = Answer(
            text=text,
            span=None,
            span_start=None,
            score=cover,
            citations=citations,
            dates=relative_dates(text, _published(citations)),
        )
        return Result(
            question=question,
            query=query,
            not_found=False,
            answers=(answer,),
            passages=tuple(passages),
            confidence=cover,
        )

    def _documents(self, doc_ids: set[int]) -> dict[int, DocumentRow]:
        assert self.index is not None, "an AnswerExtractor without an index only scores"
        return self.index.documents(doc_ids)

    @staticmethod
    def _citations(
        documents: dict[int, DocumentRow], doc_id: int, start: int, end: int
    ) -> list[Citation]:
        document = documents[doc_id]
        paragraphs = document.paragraphs
        paragraph = next(
            (i for i, (_, p_end) in enumerate(paragraphs, 1) if start < p_end), len(paragraphs)
        )
        return [
            Citation(
                article_id=article.id,
                title=article.title,
                path=article.ref,
                published=article.published,
                url=article.url,
                paragraph=paragraph,
                char_start=start,
                char_end=end,
                quote=document.body[start:end],
            )
            for article in document.articles
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
