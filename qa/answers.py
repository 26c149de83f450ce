"""The answer contract every front end shows: `Result`, `Answer`, `Citation`.

`qa ask --json`, every batch record and the Python API are `Result.as_dict()` /
`Result` itself; the CLI, the Markdown output and the chat render them with the helpers
below, so a citation reads the same everywhere: `Title — 2016-11-01 — path:3`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qa.dates import DateMention

if TYPE_CHECKING:
    from collections.abc import Collection

    from qa.retrieval import Passage

CONFIDENCE_WORDS = ((0.8, "high"), (0.5, "medium"), (0.0, "low"))


def confidence_words(probability: float) -> str:
    """ "high confidence, 87 %": the calibrated probability in words a person reads. The
    percentage is rounded half up from the four decimals JSON keeps, so the chat (which has
    the float) and an export (which has the JSON) show the same number."""
    stored = round(probability, 4)
    word = next(word for bound, word in CONFIDENCE_WORDS if stored >= bound)
    return f"{word} confidence, {math.floor(stored * 100 + 0.5)} %"


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


def answer_pieces(text: str, span: str | None, span_start: int | None) -> tuple[str, str, str]:
    """An answer sentence as (before, span, after): the parts every front end shows, the
    span highlighted (empty when the answer has none: then `before` is the whole text)."""
    if not span or span_start is None:
        return text, "", ""
    return text[:span_start], span, text[span_start + len(span) :]


@dataclass(frozen=True)
class Answer:
    """One answer: a sentence quoted from the corpus, an optional short span inside it."""

    text: str
    span: str | None
    span_start: int | None
    """Offset of the span inside `text` (None without a span)."""
    score: float
    """Calibrated probability that this answer is right (0..1)."""
    citations: tuple[Citation, ...]
    dates: tuple[DateMention, ...] = ()
    """The relative dates in `text` ("on Wednesday") resolved against the article's
    publication date (`qa.dates`); the text itself stays verbatim."""

    def pieces(self) -> tuple[str, str, str]:
        """(before, span, after): `answer_pieces` of this answer."""
        return answer_pieces(self.text, self.span, self.span_start)

    def when(self) -> str:
        """ "On Wednesday = 2005-03-02; last year = 2004", or "" without relative dates."""
        return "; ".join(mention.describe() for mention in self.dates)

    def cites(self, paths: Collection[str]) -> bool:
        """Whether one of the answer's citations is an article at one of `paths`."""
        return any(citation.path in paths for citation in self.citations)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        return cls(
            text=data["text"],
            span=data.get("span"),
            span_start=data.get("span_start"),
            score=float(data.get("score", 0.0)),
            citations=tuple(Citation.from_dict(c) for c in data.get("citations", [])),
            dates=tuple(DateMention.from_dict(d) for d in data.get("dates", [])),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "span": self.span,
            "span_start": self.span_start,
            "score": round(self.score, 4),
            "citations": [c.as_dict() for c in self.citations],
            "dates": [d.as_dict() for d in self.dates],
        }


@dataclass(frozen=True, kw_only=True)
class Result:
    """The answer to one question, as every front end shows it (fields by name only: a
    result is never built from a row of positional flags)."""

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
    reason: str | None = None
    """Why nothing was found when it is not the corpus's silence: "no article matches the
    filter source:x"."""

    @property
    def not_found_message(self) -> str:
        """What a front end says for a not-found result."""
        return not_found_message(self.reason)

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
            reason=data.get("reason"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "query": self.query,
            "not_found": self.not_found,
            "confidence": round(self.confidence, 4),
            "answers": [a.as_dict() for a in self.answers],
            "related": [c.as_dict() for c in self.related],
            **({"reason": self.reason} if self.reason else {}),
        }


def not_found_message(reason: str | None) -> str:
    """ "Not found in the corpus.", or why not when it is not the corpus's silence (raw
    text: escape it for the output it goes to)."""
    return f"Not found: {reason}." if reason else "Not found in the corpus."


def citation_date(citation: dict[str, Any] | Citation) -> str:
    """The citation's publication day, or "undated"."""
    published = citation["published"] if isinstance(citation, dict) else citation.published
    return (published or "undated")[:10]


def citation_label(citation: dict[str, Any] | Citation) -> str:
    """`Title — 2016-11-01 — path:paragraph`: the one way a citation is named (raw text:
    escape it for the output it goes to)."""
    data = citation if isinstance(citation, dict) else citation.as_dict()
    return f"{data['title']} — {citation_date(data)} — {data['path']}:{data['paragraph']}"
