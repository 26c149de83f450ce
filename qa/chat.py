"""A conversation: keeps the turns and turns follow-ups into self-contained questions.

A question is folded into the previous turn only when it cannot stand alone:
- a pronoun with nothing in the question it could refer to ("How old is **he**?", "Who is
  **its** finance chief?"): the pronoun is replaced by the previous turn's entity, preferring
  the previous *answer* when it names someone ("Who runs GE?" -> "Jeff Immelt"; "How old is
  he?" -> "How old is Jeff Immelt?"), else the names the previous question was about;
- an ellipsis ("Why?", "And 50 Cent?", "What about the profits?"): searched with the previous
  question's own words.
A question that can stand alone but has a pronoun that might also point back ("What price did
gold reach when **it** hit a 25-year high?") has two interpretations: both are asked and the better
supported answer (the higher confidence) is kept; so are both forms of a follow-up (pronoun
replaced, last turn's words added). Anything else is asked as typed, so an old topic never
pollutes a new one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qa.answers import Result
from qa.text import QUESTION_WORDS, STOPWORDS, words

PERSONAL = frozenset("he she him his her hers himself herself".split())
NEUTER = frozenset("it its itself they them their theirs themselves".split())
_POSSESSIVE = frozenset("his her hers its their theirs".split())
_DEMONSTRATIVE = frozenset("this that these those there then such former latter".split())
_CONTINUATION = re.compile(
    r"^\s*(and|but|also|so|then|what about|how about|and what|what else|why not)\b", re.I
)
_GENERIC = frozenset(
    """happen happened happens say said says do did done go went come came get got make made
    take took leave left start started end ended number people many much long old""".split()
)
# A name: capitalised words (with inner "of", "&", digits: "Bank of England", "Commodore 64").
_NAME = re.compile(
    r"(?:[A-Z][\w'’&.-]*|\d[\w.,]*)(?:\s+(?:of|the|de|van|&|[A-Z][\w'’&.-]*|\d[\w.,]*))*"
    r"(?<![\s,])"
)
MAX_CONTEXT_TERMS = 8
OWN_SUBJECT_TERMS = 3
"""Content words with a name that make a question opening with "And" or "So" a new one."""


@dataclass(frozen=True)
class Turn:
    question: str
    query: str
    result: Result


@dataclass(frozen=True)
class Interpretation:
    """One way to understand a question: what the reader reads and what is searched."""

    question: str
    query: str


def _is_content(word: str) -> bool:
    """A word that says what a question is about (not a function or question word)."""
    return (
        word not in STOPWORDS
        and word not in QUESTION_WORDS
        and word not in _GENERIC
        and len(word) > 1
    )


def _own_terms(question: str) -> list[str]:
    return [w for w in words(question) if _is_content(w)]


def _pronouns(question: str) -> list[tuple[str, bool]]:
    """Each back-pointing word of the question and whether something before it in the
    question could be what it points at (a content word: "gold ... when it hit")."""
    tokens = words(question)
    found = []
    seen_content = False
    for token in tokens:
        if token in PERSONAL or token in NEUTER or token in _DEMONSTRATIVE:
            # "the firm that makes ...": a relative "that" after a noun points nowhere back
            if not (token == "that" and seen_content):
                found.append((token, seen_content))
        elif _is_content(token):
            seen_content = True
    return found


def kind(question: str) -> str:
    """ "alone", "follow-up" (cannot stand alone) or "ambiguous" (both ways plausible)."""
    if not words(question):
        return "alone"
    own = len(_own_terms(question))
    if own == 0:
        return "follow-up"
    if _CONTINUATION.match(question):
        # "And where did Putin and Prodi meet?" names its own subject: not a follow-up,
        # whatever word it starts with; "And 50 Cent?" or "What about profits?" leans back
        return "alone" if own >= OWN_SUBJECT_TERMS and _names(question) else "follow-up"
    pronouns = _pronouns(question)
    if any(not resolved for _, resolved in pronouns):
        return "follow-up"
    # one word of its own ("What is inflation?") may be a new topic or an ellipsis
    return "ambiguous" if pronouns or own == 1 else "alone"


def _names(text: str, skip_first: bool = True) -> list[str]:
    """Capitalised names in `text`, longest first within each position; the question's own
    first word ("Who", "Which") is not a name."""
    names = []
    for match in _NAME.finditer(text):
        name = match.group().strip(" ,.")
        if skip_first and match.start() == 0:
            # "Which US group..." -> drop the question word, keep what follows
            head, _, rest = name.partition(" ")
            if head.lower() in QUESTION_WORDS or head.lower() in STOPWORDS:
                name = rest
        lowered = name.lower()
        if not name or lowered in STOPWORDS or lowered in QUESTION_WORDS:
            continue
        if name.replace(",", "").replace(".", "").isdigit():
            continue  # a bare number is an answer, not something to refer to
        names.append(name)
    return names


def _is_name(text: str | None) -> bool:
    if not text or len(text.split()) > 6:
        return False
    return bool(_names(text, skip_first=False)) and text[0].isupper()


def _entity(turn: Turn, personal: bool) -> str | None:
    """What a pronoun most likely points at in the previous turn."""
    top = turn.result.answers[0] if turn.result.answers and not turn.result.not_found else None
    span = top.span if top is not None else None
    asked_who = bool(re.match(r"^\s*(who|whom|whose)\b", turn.question, re.I))
    asked_which = bool(re.match(r"^\s*(which|what)\b", turn.question, re.I))
    candidates: list[str] = []
    if _is_name(span) and (asked_who if personal else asked_which):
        candidates.append(str(span))
    candidates += _names(turn.query)
    if _is_name(span):
        candidates.append(str(span))
    return candidates[0] if candidates else None


def _substitute(question: str, history: list[Turn]) -> str | None:
    """The question with its first unresolved pronoun replaced by the previous turn's
    entity, or None when there is nothing to put in its place."""
    previous = history[-1]
    pronouns = _pronouns(question)
    target = next((p for p, resolved in pronouns if not resolved), None)
    if target is None or target in _DEMONSTRATIVE:
        return None
    entity = _entity(previous, personal=target in PERSONAL)
    if entity is None:
        return None
    replacement = f"{entity}'s" if target in _POSSESSIVE and target != "her" else entity
    pattern = re.compile(rf"\b{re.escape(target)}\b", re.I)
    return pattern.sub(replacement, question, count=1)


def _context_terms(turn: Turn, keep_answer: bool) -> list[str]:
    """What the previous turn was about: its own words (its question as searched: with a
    pronoun replaced, but never the words it borrowed from the turn before it, so that they
    do not pile up over a conversation), and its answer's span."""
    terms: list[str] = []
    top = turn.result.answers[0] if turn.result.answers else None
    if keep_answer and top is not None and top.span:
        terms.append(top.span)
    own = turn.question if turn.query.startswith(turn.question) else turn.query
    for word in re.findall(r"[A-Za-z0-9][\w'’-]*", own):
        lowered = word.lower()
        if lowered in STOPWORDS or lowered in QUESTION_WORDS or lowered in _DEMONSTRATIVE:
            continue
        if lowered in PERSONAL or lowered in NEUTER:
            continue
        if word not in terms:
            terms.append(word)
    return terms[:MAX_CONTEXT_TERMS]


def _folded(question: str, history: list[Turn]) -> list[Interpretation]:
    """The question read as a follow-up of the last turn: the pronoun replaced by what it
    points at when that can be told, and the question searched with the last turn's words."""
    substituted = _substitute(question, history)
    appended = _appended(question, history)
    if substituted is not None:
        return [Interpretation(substituted, substituted), appended]
    return [appended]


def _appended(question: str, history: list[Turn]) -> Interpretation:
    # An ellipsis ("And 50 Cent?", "What about profits?") brings its own subject: the previous
    # answer would pull the search back to what was already answered.
    new_subject = bool(_CONTINUATION.match(question)) and bool(_names(question))
    own = {w.lower() for w in _own_terms(question)}
    extra = [
        t for t in _context_terms(history[-1], keep_answer=not new_subject) if t.lower() not in own
    ]
    query = f"{question} {' '.join(extra)}".strip() if extra else question
    return Interpretation(question, query)


def interpretations(question: str, history: list[Turn]) -> list[Interpretation]:
    """The ways to read `question` after `history`, the most likely first."""
    question = " ".join(question.split())
    alone = Interpretation(question, question)
    if not history:
        return [alone]
    sort = kind(question)
    if sort == "alone":
        return [alone]
    folded = _folded(question, history)
    if sort == "follow-up":
        return folded
    return [alone] + [i for i in folded if i != alone]


def rewrite(question: str, history: list[Turn]) -> str:
    """The query searched first for `question` given the earlier turns."""
    return interpretations(question, history)[0].query


@dataclass
class Conversation:
    """The turns of one chat, asked through any `ask(question, query=...)` callable."""

    turns: list[Turn] = field(default_factory=list)

    def query_for(self, question: str) -> str:
        return rewrite(question, self.turns)

    def answer(self, ask: Callable[..., Result], question: str, **options: Any) -> Turn:
        """Ask every interpretation of `question` and keep the best supported one (not recorded:
        `ask` records it; a front end that asks in a worker records it on its own thread)."""
        question = " ".join(question.split())
        best: Turn | None = None
        for interpretation in interpretations(question, self.turns):
            result = ask(interpretation.question, query=interpretation.query, **options)
            turn = Turn(question, interpretation.query, result)
            if best is None or _support(result) > _support(best.result):
                best = turn
        assert best is not None
        return best

    def ask(self, ask: Callable[..., Result], question: str, **options: Any) -> Result:
        turn = self.answer(ask, question, **options)
        self.turns.append(turn)
        return turn.result

    def reset(self) -> None:
        self.turns.clear()


def _support(result: Result) -> float:
    """How well a result is supported: its confidence, and an answer beats "not found"."""
    return (0.0 if result.not_found else 1.0) + result.confidence
