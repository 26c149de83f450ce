"""What kind of answer a question asks for, and whether a span is of that kind.

"Who runs General Electric?" wants a name, "How old is he?" a number, "When does the season
close?" a date. The trained reader mostly knows, but on questions worded unlike SQuAD's it
sometimes highlights "behemoth" for a "who" or a name for a "how old". The pipeline reads a
few spans per passage (`qa.reader_model.ReaderModel.read_passages(spans=n)`) and weighs these
cues with the reader's scores (`type_features`, fitted with the rest on the fit half of SQuAD
2.0 dev by `scripts/fit_weights.py`); it is a weighed feature, never a hard filter.

The question's kind comes from its wh-phrase (English only); a question of no clear kind
("What did he say?") has no type features at all.
"""

from __future__ import annotations

import re
from typing import Literal

from qa.text import STOPWORDS

Kind = Literal["name", "number", "time", "place"]
KINDS: tuple[Kind, ...] = ("name", "number", "time", "place")

_TIME_NOUNS = r"year|date|day|month|time|decade|century|season|era|hour|period"
_PLACE_NOUNS = (
    r"city|country|town|state|region|province|port|suburb|village|county|continent|island"
    r"|street|venue|stadium|ground|capital|nation|area|district|airport"
)
_NUMBER_NOUNS = (
    r"age|percentage|percent|share|proportion|rate|number|amount|price|cost|score|sum|figure"
    r"|value|total|speed|fee|fine|salary|size|margin|majority|quota|temperature|distance"
    r"|mileage|term|sentence|budget|profit|loss|deficit|debt|turnover|fare|wage"
)
_WHAT = (
    r"\b(what|which)( (is|was|are|were) the"
    r"| (?!(is|was|are|were|will|did|does|do|has|have|had)\b)\w+'?s?){0,2} "
)
"""A "what"/"which" and up to two words before the noun that says what is asked for."""
_QUESTION_KINDS: tuple[tuple[Kind, re.Pattern[str]], ...] = (
    (
        "number",
        re.compile(
            r"\bhow (many|much|old|long|far|big|large|high|tall|fast|often|deep|heavy|low"
            r"|short|small|wide|severe)\b"
            rf"|{_WHAT}({_NUMBER_NOUNS})s?\b(?! (of|is) the (name|title))|\bworth\b"
        ),
    ),
    ("time", re.compile(rf"^\s*when\b|, when\b|{_WHAT}({_TIME_NOUNS})s?\b")),
    ("place", re.compile(rf"^\s*where\b|{_WHAT}({_PLACE_NOUNS})\b")),
    # who, or which (a company, a leader, a channel ...: news's "which" asks for a name)
    (
        "name",
        re.compile(
            r"\b(who|whom|whose|which)\b|\b(name|title) of\b|\bcalled\b|\bwhat nationality\b"
        ),
    ),
)

_NUMBER_WORDS = frozenset(
    """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty
    ninety hundred thousand million billion trillion dozen dozens half quarter third double
    triple twice once""".split()
)
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december"
    "|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_TIME_SPAN = re.compile(
    rf"\b({_MONTHS}|monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|yesterday"
    r"|tomorrow|tonight|morning|evening|afternoon|night|week|weeks|month|months|year|years"
    r"|decade|century|spring|summer|autumn|winter)\b|\b1[0-9]{3}s?\b|\b20[0-9]{2}s?\b"
    r"|\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}(st|nd|rd|th)\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"[^\W\d_][\w'’.-]*", re.UNICODE)


def question_kind(question: str) -> Kind | None:
    """The kind of answer `question` asks for, or None when its wording does not say."""
    lowered = " ".join(question.lower().split())
    for kind, pattern in _QUESTION_KINDS:
        if pattern.search(lowered):
            return kind
    return None


def span_kinds(span: str, at_sentence_start: bool) -> frozenset[Kind]:
    """The kinds `span` could answer: a number (digits or number words), a time (a date, a
    month, a weekday, a year, a clock time), a name or a place (a capitalised word that is
    not just the sentence's first word)."""
    kinds: set[Kind] = set()
    tokens = _WORD.findall(span)
    if _DIGIT.search(span) or any(t.lower() in _NUMBER_WORDS for t in tokens):
        kinds.add("number")
    if _TIME_SPAN.search(span):
        kinds.add("time")
    capitalised = [t for t in tokens if t[0].isupper()]
    # any sentence's first word is capitalised: "The" or "However" there names nothing
    opener = tokens[0].lower() if tokens else ""
    if (
        at_sentence_start
        and capitalised
        and capitalised[0] is tokens[0]
        and (opener in STOPWORDS or opener in _OPENERS)
    ):
        capitalised = capitalised[1:]
    if capitalised:
        kinds.update(("name", "place"))
    return frozenset(kinds)


_OPENERS = frozenset("however meanwhile also yet still instead although though".split())

TYPE_FEATURES = tuple(f"{kind}_{fit}" for kind in KINDS for fit in ("fits", "misfits"))
"""`type_features` names: for each kind of question, whether the span is of that kind."""


def type_features(kind: Kind | None, span: str, at_sentence_start: bool) -> dict[str, float]:
    """`<kind>_fits` = 1 when the question asks for `kind` and the span is one,
    `<kind>_misfits` = 1 when it asks for `kind` and the span is not; all 0 otherwise.
    `at_sentence_start`: the span begins its sentence (its first capital says nothing)."""
    features = dict.fromkeys(TYPE_FEATURES, 0.0)
    if kind is not None:
        fits = kind in span_kinds(span, at_sentence_start)
        features[f"{kind}_{'fits' if fits else 'misfits'}"] = 1.0
    return features
