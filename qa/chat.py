"""A conversation: keeps the turns and turns follow-ups into self-contained queries.

"How many were discharged?" after "Who led the purge of North Korean officers?" is searched as
"How many were discharged? purge North Korean officers". A question is treated as a follow-up
when it leans on earlier turns: it refers back (he, she, it, they, that, there...), starts
like a continuation ("and", "what about"), or has too few words of its own to stand alone.
A self-contained question is searched as it is, so old turns never pollute a fresh topic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qa.reader import Result
from qa.text import QUESTION_WORDS, STOPWORDS, words

_ANAPHORA = frozenset(
    """he she it they him her them his hers its their theirs this that these those there then
    such former latter""".split()
)
_CONTINUATION = re.compile(r"^\s*(and|but|also|so|then|what about|how about|and what|why)\b", re.I)
_GENERIC = frozenset(
    """happen happened happens say said says do did done go went come came get got make made
    take took leave left start started end ended number people many much long""".split()
)
MAX_CONTEXT_TERMS = 8


@dataclass(frozen=True)
class Turn:
    question: str
    query: str
    result: Result


def _own_terms(question: str) -> list[str]:
    return [
        w
        for w in words(question)
        if w not in STOPWORDS and w not in QUESTION_WORDS and w not in _GENERIC and len(w) > 1
    ]


def is_follow_up(question: str) -> bool:
    tokens = words(question)
    if not tokens:
        return False
    if _CONTINUATION.match(question):
        return True
    if any(t in _ANAPHORA for t in tokens):
        return True
    return len(_own_terms(question)) <= 1


def _context_terms(turn: Turn) -> list[str]:
    """What the previous turn was about: its query's own words and its answer's short span."""
    terms: list[str] = []
    top = turn.result.answers[0] if turn.result.answers else None
    if top is not None and top.span:
        terms.append(top.span)
    for word in re.findall(r"[A-Za-z0-9][\w'’-]*", turn.query):
        lowered = word.lower()
        if lowered in STOPWORDS or lowered in QUESTION_WORDS or lowered in _ANAPHORA:
            continue
        if word not in terms:
            terms.append(word)
    return terms[:MAX_CONTEXT_TERMS]


def rewrite(question: str, history: list[Turn]) -> str:
    """The self-contained query for `question` given the earlier turns."""
    question = " ".join(question.split())
    if not history or not is_follow_up(question):
        return question
    own = {w.lower() for w in _own_terms(question)}
    extra = [t for t in _context_terms(history[-1]) if t.lower() not in own]
    return f"{question} {' '.join(extra)}".strip() if extra else question


@dataclass
class Conversation:
    """The turns of one chat, asked through any `ask(question, query=...)` callable."""

    turns: list[Turn] = field(default_factory=list)

    def query_for(self, question: str) -> str:
        return rewrite(question, self.turns)

    def ask(self, ask: Callable[..., Result], question: str, **options: Any) -> Result:
        query = self.query_for(question)
        result = ask(question, query=query, **options)
        self.turns.append(Turn(question, query, result))
        return result

    def reset(self) -> None:
        self.turns.clear()
