"""Relative dates in quotes, resolved against the article's publication date."""

from __future__ import annotations

from qa.answers import Answer, Result
from qa.batch import markdown_record
from qa.dates import relative_dates


def described(text: str, published: str | None) -> list[str]:
    return [mention.describe() for mention in relative_dates(text, published)]


def test_relative_dates_count_from_the_publication_date() -> None:
    text = (
        "On Wednesday the bank said profits fell last year; two days ago it met, yesterday "
        "shares rose and next Monday the board meets. Earlier, last week, Tuesday night..."
    )
    assert described(text, "2005-03-04") == [  # a Friday
        "On Wednesday = 2005-03-02",
        "last year = 2004",
        "two days ago = 2005-03-02",
        "yesterday = 2005-03-03",
        "next Monday = 2005-03-07",
        "last week = week of 2005-02-21",
        "Tuesday night = 2005-03-01",
    ]
    # the weekday of publication is that day, not a week before
    assert described("On Friday the index fell.", "2005-03-04T18:30") == ["On Friday = 2005-03-04"]
    # across a year's end and a leap day, as the calendar has them
    assert described("Yesterday it closed.", "2008-03-01") == ["Yesterday = 2008-02-29"]
    assert described("Last month it opened.", "2007-01-15") == ["Last month = 2006-12"]
    # "over the last month" is the thirty days before, not the calendar month before
    assert described("1,000 were discharged over the last month.", "2016-11-01") == []


def test_no_date_is_invented() -> None:
    assert described("On Wednesday the bank met.", None) == []  # an undated article
    assert described("On Wednesday the bank met.", "not a date") == []
    # absolute dates and words that only look like dates are not relative dates
    assert described("In May 2005 a second report came on March 2, 2005.", "2005-06-01") == []


def test_answers_carry_their_dates_in_json_and_markdown() -> None:
    text = "The bank raised rates on Wednesday."
    (mention,) = relative_dates(text, "2005-03-04")
    assert text[mention.start : mention.end] == "on Wednesday"
    answer = Answer(text, "raised rates", 9, 0.9, (), (mention,))
    data = Result(question="Q?", query="Q?", not_found=False, answers=(answer,)).as_dict()
    assert data["answers"][0]["dates"] == [
        {"start": 22, "end": 34, "text": "on Wednesday", "date": "2005-03-02", "period": "day"}
    ]
    assert Result.from_dict(data).answers[0] == answer
    assert "when: on Wednesday = 2005\\-03\\-02" in markdown_record({"id": "q1", **data})
