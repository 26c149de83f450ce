"""What kind of answer a question asks for, and whether a span is of that kind.

"Who runs General Electric?" wants a name, "How old is he?" a number, "When does the season
close?" a date. The trained reader mostly knows, but on questions worded unlike SQuAD's it
sometimes highlights "behemoth" for a "who" or a name for a "how old". `span_fits` reads the
span in its sentence: a piece of a figure is no number, an age answers only "how old", a
figure with a unit of measure does not count people. The pipeline weighs these cues with the
reader's scores (`type_features`, fitted with the rest by `scripts/fit_weights.py`); they
are weighed features, never a hard filter (a piece of a figure is never proposed at all).

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
    r"(?:\b(what|which)( (is|was|are|were) the"
    r"| (?!(is|was|are|were|will|did|does|do|has|have|had)\b)\w+'?s?){0,2} "
    r"|\b(what|which) (is|was|are|were) (the )?([\w-]+ ){0,2}[\w-]+['’]s?( [\w-]+)? )"
)
"""A "what"/"which" and up to two words before the noun that says what is asked for, or a
possessive and up to one word before it ("What was Trevor East's salary", "What is Kenya's
literacy rate")."""
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
    r"|decade|century|spring|summer|autumn|winter)\b|\b(c\.?\s?)?(1[0-9]{3}|20[0-9]{2})s?\b"
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


_EXPLANATION = re.compile(
    r"^\s*(?:and |but |so )?(?:why\b|how (?:did|does|do|is|was|were|are|can|could|will|would"
    r"|has|have|had|should)\b)|\bwhat (?:was|is|were|are) the (?:reasons?|causes?) (?:for|of)\b"
    r"|\bwhat (?:caused|led to)\b"
)


def asks_why(question: str) -> bool:
    """Whether `question` asks for an explanation ("Why did ...", "How did ... survive",
    "What caused ..."): its answer takes more than the one sentence a span lies in."""
    return bool(_EXPLANATION.search(" ".join(question.lower().split())))


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


def cut_number(span: str, before: str, after: str) -> bool:
    """The span begins or ends inside a number ("96" out of "21,004.96", "004" of
    "21,004"): a piece of a figure is never an answer."""
    if not span:
        return False
    starts_inside = span[0].isdigit() and (
        before[-1:].isdigit() or (before[-1:] in ",." and before[-2:-1].isdigit())
    )
    ends_inside = span[-1].isdigit() and (
        after[:1].isdigit() or (after[:1] in ",." and after[1:2].isdigit())
    )
    return starts_inside or ends_inside


_AGE_AFTER = re.compile(r"^\s*-?\s*(years?|yrs?)[- ]old\b|^\s*,?\s*(years? of age)\b", re.I)
_AGE_BEFORE = re.compile(r"\b(aged|age of)\s*$", re.I)
_AGE_QUESTION = re.compile(r"\bhow old\b|\bage\b|\baged\b", re.I)
_UNIT_AFTER = re.compile(
    r"^\s*-?\s*(tonnes?|tons?|kilometres?|km|miles?|metres?|meters?|feet|ft|kg|kilos?"
    r"|pounds?|lb|per ?cent|percent|%|degrees?|acres?|hectares?|barrels?)\b"
    r"|^\s*%",
    re.I,
)
_HOW_MANY = re.compile(r"\bhow many\b", re.I)
_TIMES = re.compile(r"\btimes\b|\btwice\b", re.I)
_YEAR_QUESTION = re.compile(r"\b(what|which) year\b", re.I)
_YEAR = re.compile(r"(?<!\d)\d{3,4}s?(?!\d)|'\d\d\b|\bcentury\b", re.I)
_MONEY_QUESTION = re.compile(
    r"\bhow much (money|cash|aid|funding)\b"
    # "how much did it cost", "how much in damages", not "how much storage did it offer"
    # (a noun right after "how much" says what is asked)
    r"|\bhow much (did|does|do|is|was|were|are|will|would|has|have|had|can|could|should"
    r"|must|might|in|more|less|extra)\b.*\b(pay|pays|paid|paying|cost|costs|costing|spend|spends|spent|spending"
    r"|earn|earns|earned|earning|offer|offers|offered|offering|charge|charges|charged|owe|owes"
    r"|owed|invest|invests|invested|bid|bids|fined|worth|priced|salary|damages|compensation"
    r"|fee|fees|bonus)\b"
    r"|\b(what|which)( [\w'’-]+){0,3} (price|cost|salary|wage|fee|fine|fare|budget|damages"
    r"|compensation|bill|bonus|payout|ransom)s?\b",
    re.I,
)
"""A question after a sum of money: "How much did it cost?", "What was his salary?"; not
"How much storage did it offer?"."""
_CURRENCY = re.compile(
    r"[$£€¥₹]|\d+p\b|\b(euros?|dollars?|pounds?|sterling|yen|yuan|renminbi|rupees?|roubles?"
    r"|rubles?|francs?|pesos?|rand|crowns?|kronor|krona|kroner|pence|cents?|usd|eur|gbp|aud"
    r"|cad|chf|jpy|cny|inr|dinars?|dirhams?|riyals?|shekels?|zloty|lira|lire|baht|ringgit)\b",
    re.I,
)
_PERCENT = re.compile(r"%|\bper ?cent\b", re.I)
_DURATION_UNITS = (
    r"seconds?|minutes?|mins?|hours?|hrs?|days?|nights?|weeks?|fortnights?|months?|years?"
    r"|yrs?|decades?|centuries|century|seasons?|terms?|life|lifetime"
)
_LENGTH_UNITS = (
    r"kilometres?|kilometers?|km|miles?|metres?|meters?|m|feet|foot|ft|inches|inch|yards?"
    r"|centimetres?|cm|millimetres?|mm"
)
_HOW_LONG = re.compile(r"\bhow long\b", re.I)
_DURATION_OR_LENGTH = re.compile(rf"\b({_DURATION_UNITS}|{_LENGTH_UNITS})\b", re.I)
_DURATION = re.compile(rf"\b({_DURATION_UNITS})\b", re.I)
_PERIOD = re.compile(r"\b(since|until|till|from|between)\b|\b(1[0-9]{3}|20[0-9]{2})\b", re.I)
_COUNTS_UNITS = re.compile(
    rf"\bhow many (\w+ (of )?)?({_DURATION_UNITS}|dollars?|pounds?|euros?|pence|cents?|yen"
    r"|times)\b",
    re.I,
)


def span_fits(
    kind: Kind, span: str, at_sentence_start: bool, before: str = "", after: str = "",
    question: str = "",
) -> bool:  # fmt: skip
    """Whether `span` is an answer of the `kind` asked, read in its sentence (`before` and
    `after` it): besides `span_kinds`, a number must be a whole one, an age answers only a
    question about age ("how many miners died" is not answered by "24-year-old"), and a
    figure with a unit of measure (tonnes, miles, per cent) does not count things ("how
    many people" is not answered by "17,000-tonne"), a question after a sum of money wants a
    currency ("How much did it cost?" is not answered by "two years"), "how long" a span of
    time or a length, a count is no sum of money, span of time or number of times, and "in
    which year" wants a year."""
    if kind not in span_kinds(span, at_sentence_start):
        return False
    if kind not in ("number", "time"):
        return True
    if cut_number(span, before, after):
        return False
    if kind != "number":
        # "In which year" is answered by a year, not by "60th year" or "last week"
        return not _YEAR_QUESTION.search(question) or bool(_YEAR.search(span))
    is_age = bool(_AGE_AFTER.match(after) or _AGE_BEFORE.search(before))
    if is_age and not _AGE_QUESTION.search(question):
        return False
    # the figure with the unit written right before or after it ("£" of "£54m", "minutes"
    # of "27 minutes"), not words further on ("3,000 a day" counts people)
    around = f"{before[-1:]}{span}{_unit_after(after)}"
    if _MONEY_QUESTION.search(question):
        # a share is a sum too ("pay 15% of its takings")
        return bool(_CURRENCY.search(around) or _PERCENT.search(around))
    if _HOW_LONG.search(question):
        # "for three years", "1.2 km", or the dates it ran between ("1870 to 1939")
        return bool(_DURATION_OR_LENGTH.search(around) or _PERIOD.search(span))
    if _HOW_MANY.search(question) and not _COUNTS_UNITS.search(question):
        # a count of things is no sum of money, no span of time, no measure
        # nor how often ("two times" for "how many bystanders")
        if _CURRENCY.search(around) or _DURATION.search(around) or _TIMES.search(around):
            return False
        return not _UNIT_AFTER.match(after)
    return True


def _unit_after(after: str) -> str:
    """The word right after a figure with the space or hyphen before it (" minutes" of
    " minutes later", "-tonne" of "-tonne ship")."""
    rest = after.lstrip(" -")
    found = _WORD.match(rest)
    return after[: len(after) - len(rest)] + (found.group() if found else "")


def type_features(
    kind: Kind | None, span: str, at_sentence_start: bool, before: str = "", after: str = "",
    question: str = "",
) -> dict[str, float]:  # fmt: skip
    """`<kind>_fits` = 1 when the question asks for `kind` and the span is one
    (`span_fits`), `<kind>_misfits` = 1 when it asks for `kind` and the span is not; all 0
    otherwise. `at_sentence_start`: the span begins its sentence (its first capital says
    nothing); `before`, `after`: the text of its sentence around it; `question`: the
    question asked."""
    features = dict.fromkeys(TYPE_FEATURES, 0.0)
    if kind is not None:
        fits = span_fits(kind, span, at_sentence_start, before, after, question)
        features[f"{kind}_{'fits' if fits else 'misfits'}"] = 1.0
    return features
