"""What a relative date in a quote means: "on Wednesday" in an article of 2005-03-04 is
2005-03-02.

News writes dates relative to the day it is published ("yesterday", "last year", "on
Wednesday"); quoted years later, a reader cannot place them. The quote itself stays verbatim;
each relative date in it is resolved against the article's publication date by dateparser
(which knows the calendar: weekdays, month lengths, leap years) and shown beside the quote
with the precision the phrase has: a day, the week it starts, a month or a year.

A weekday names the last such day on or before publication (news reports what happened;
"next Monday" and "tomorrow" look ahead as they say); the weekday of publication itself is
that day. "The last month" is a span of time, not a date, and is left alone. Phrases are
found by a pattern of relative expressions only: an absolute date
("March 2, 2005") needs no resolving, and a free-text scan would turn "may" or "a second" into
dates.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass
from typing import Any

_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_COUNT = r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|\d{1,2})"
RELATIVE = re.compile(
    rf"""\b(?:
        (?:(?:last|next|this|on|early|late)\s+)?(?:{_WEEKDAYS})
            (?:\s+(?:morning|afternoon|evening|night))?
      | yesterday | today | tonight | tomorrow | last\s+night
      | (?<!the\ )(?<!The\ )(?:last|next|this|past)\s+(?:week|month|year)
      | {_COUNT}\s+(?:days?|weeks?|months?|years?)\s+ago
    )\b""",
    re.I | re.X,
)
_WEEKDAY = re.compile(rf"^(?:on\s+|early\s+|late\s+)?({_WEEKDAYS})\b", re.I)


@dataclass(frozen=True)
class DateMention:
    """A relative date in an answer's text and what it means."""

    start: int
    end: int
    """Offsets of the phrase in the answer's text."""
    text: str
    date: str
    """ISO 8601 at the phrase's precision: `2005-03-02` (a day), `2005-02` (a month),
    `2004` (a year); a week is the date of its Monday."""
    period: str
    """day, week, month or year."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "date": self.date,
            "period": self.period,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DateMention:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})

    def describe(self) -> str:
        """ "on Wednesday = 2005-03-02", "last week = week of 2005-02-21"."""
        shown = f"week of {self.date}" if self.period == "week" else self.date
        return f"{self.text} = {shown}"


_parsers: dict[dt.date, Any] = {}
_lock = threading.Lock()


def _parser(base: dt.date) -> Any:
    from dateparser.date import DateDataParser

    with _lock:
        if base not in _parsers:
            if len(_parsers) > 256:
                _parsers.clear()
            _parsers[base] = DateDataParser(
                languages=["en"],
                settings={
                    "RELATIVE_BASE": dt.datetime.combine(base, dt.time(12)),
                    "PREFER_DATES_FROM": "past",
                    "RETURN_AS_TIMEZONE_AWARE": False,
                },
            )
        return _parsers[base]


def relative_dates(text: str, published: str | None) -> tuple[DateMention, ...]:
    """The relative dates in `text` resolved against `published` (ISO date or date-time);
    none without a publication date."""
    if not published or not RELATIVE.search(text):
        return ()
    try:
        base = dt.date.fromisoformat(published[:10])
    except ValueError:
        return ()
    found = []
    for match in RELATIVE.finditer(text):
        phrase = match.group()
        weekday = _WEEKDAY.match(phrase)
        if weekday and weekday.group(1).lower() == base.strftime("%A").lower():
            date = base  # "on Wednesday" in Wednesday's paper
            period = "day"
        else:
            data = _parser(base).get_date_data(phrase)
            if data is None or data.date_obj is None:
                continue
            date, period = data.date_obj.date(), data.period or "day"
        if period == "week":
            date -= dt.timedelta(days=date.weekday())
            shown = date.isoformat()
        elif period == "month":
            shown = date.strftime("%Y-%m")
        elif period == "year":
            shown = str(date.year)
        else:
            shown = date.isoformat()
        found.append(DateMention(match.start(), match.end(), phrase, shown, period))
    return tuple(found)
