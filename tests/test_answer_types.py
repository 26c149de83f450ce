"""What kind of answer a question asks for, and whether a span is one (qa.answer_types)."""

from __future__ import annotations

import pytest

from qa.answer_types import (
    TYPE_FEATURES,
    cut_number,
    question_kind,
    span_fits,
    span_kinds,
    type_features,
)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Who runs General Electric?", "name"),
        ("Whose idea was the buy-back?", "name"),
        ("Which investment funds want the bosses removed?", "name"),
        ("What is the title of the book that won?", "name"),
        ("What is the new film called?", "name"),
        ("What nationality were the peacekeepers?", "name"),
        ("How many jobs will Littlewoods cut?", "number"),
        ("How old is the former prime minister?", "number"),
        ("What share of its staff is Delta laying off?", "number"),
        ("By what average percentage did funding go up?", "number"),
        ("What was the score when Spurs won?", "number"),
        ("What is the order worth?", "number"),
        # a possessive between the verb and the noun
        ("What was Trevor East's salary at Setanta?", "number"),
        ("What is Kenya's literacy rate?", "number"),
        ("What was Germany's jobless rate in December?", "number"),
        ("When does the whaling season close?", "time"),
        ("In what year did Ireland last win a Grand Slam?", "time"),
        ("To what date was the hearing moved?", "time"),
        ("Where will Labour hold its conference?", "place"),
        ("In which city is Delta based?", "place"),
        ("From which port did the boat leave?", "place"),
        ("What did he say about the budget cuts?", None),
        ("What happened to NASA's budget after the moon landing?", None),
        ("Why did the talks fail?", None),
    ],
)
def test_question_kind(question: str, kind: str | None) -> None:
    assert question_kind(question) == kind


def test_span_kinds() -> None:
    assert span_kinds("3,200", False) == {"number"}
    assert span_kinds("seven", False) == {"number"}
    assert "time" in span_kinds("August 31st", False)
    assert "time" in span_kinds("1948", False) and "number" in span_kinds("1948", False)
    assert "time" in span_kinds("08:15", False)
    assert "time" in span_kinds("c1180", False)  # circa, as Wikipedia writes it
    assert "time" not in span_kinds("ab1180", False)
    assert span_kinds("behemoth", False) == frozenset()
    assert "name" in span_kinds("Jeff Immelt", False)
    assert "name" in span_kinds("Pellerin", True)  # a name opening its sentence is still a name
    assert "name" not in span_kinds("The company", True)  # "The" is capitalised anyway
    assert "name" in span_kinds("the Irish carrier", False)


def test_type_features() -> None:
    assert type_features(None, "Jeff Immelt", False) == dict.fromkeys(TYPE_FEATURES, 0.0)
    fits = type_features("name", "Jeff Immelt", False)
    assert fits["name_fits"] == 1.0 and sum(fits.values()) == 1.0
    misfits = type_features("number", "behemoth", False)
    assert misfits["number_misfits"] == 1.0 and sum(misfits.values()) == 1.0


@pytest.mark.parametrize(
    ("question", "span", "before", "after", "fits"),
    [
        # an age does not count the dead, the injured or the jobs
        ("How many miners died in the accident?", "24", "Juan, ", "-year-old, was hurt", False),
        ("How many miners died in the accident?", "24", "a total of ", " miners died", True),
        ("How old was the miner?", "24", "Juan, ", "-year-old, was hurt", True),
        ("How many people were killed?", "61", "aged ", ", he was shot", False),
        # a tonnage, a distance or a share does not count people
        ("How many people did the pirates kill?", "17,000", "the ", "-tonne ship", False),
        ("How many people live there?", "8,000", "run by the ", " residents", True),
        ("How much did output grow?", "2.9", "up ", "% on a year earlier", True),
        # a sum of money is asked: a currency (or a share), not a span of time or a tonnage
        ("How much did he win in damages?", "two years", "for ", " in", False),
        ("How much will the clean-up cost?", "1.8 million", "spilled ", " barrels of oil", False),
        ("How much is Euronext offering?", "1.35bn", "of \u00a3", " for the LSE", True),
        ("What is the salary of the boss?", "$54m", "paid ", " a year", True),
        ("What was Trevor East's salary?", "£1.02bn", "a ", " deal", True),
        ("What was Trevor East's salary?", "17,000", "the ", "-tonne ship", False),
        ("How much did the site pay the society?", "15%", "paid ", " of takings", True),
        ("How much online storage did Yahoo offer?", "30mb", "offered ", " of space", True),
        ("How much aid did the donors offer?", "two years", "for ", ".", False),
        ("How much in damages did he win?", "two years", "for ", ".", False),
        ("How much more will the bridge cost?", "1.8 million", "spilled ", " barrels", False),
        # "how long" wants a span of time or a length; a count is neither money nor time
        ("How long did the match last?", "27", "just ", " minutes.", True),
        ("How long did the match last?", "Monday", "on ", ".", False),
        ("How long is the bridge?", "1.2", "", " km long", True),
        ("How long was the theatre open?", "1870 to 1939", "from ", ", when", True),
        ("How many hundreds of years did it last?", "three hundred", "", " years", True),
        ("How many people were hurt?", "two years", "", " ago", False),
        ("How many people were hurt?", "300", "$", " in damages", False),
        ("How many people die each day?", "3,000", "", " a day", True),
        ("How many years did he serve?", "three years", "", " in jail", True),
        ("How many bystanders were hurt?", "two times", "shot ", ".", False),
        ("How many times has he won?", "three times", "won ", ".", True),
        ("How many times has he won?", "three", "won ", " times.", True),
        # "which year" wants a year
        ("In which year was Tito born?", "60th year", "in his ", ".", False),
        ("In which year was Tito born?", "1892", "born in ", ".", True),
        ("When was Tito born?", "60 years ago", "born ", ".", True),
        # a piece of a figure is no answer at all
        ("When did the Sensex first close above 21,000?", "96", "at 21,004.", " on", False),
        ("How many points did the Sensex gain?", "004", "21,", " points", False),
        ("Who runs General Electric?", "Jeff Immelt", "boss ", " said", True),
    ],
)
def test_span_fits_reads_the_sentence_around_the_span(
    question: str, span: str, before: str, after: str, fits: bool
) -> None:
    kind = question_kind(question)
    assert kind is not None
    assert span_fits(kind, span, False, before, after, question) is fits


def test_cut_number() -> None:
    assert cut_number("96", "21,004.", "")
    assert cut_number("21", "", ",004.96 points")
    assert not cut_number("21,004.96", "at ", " points")
    assert not cut_number("2004", "in ", ".")  # a full stop ending the sentence


def test_why_and_how_did_questions_get_the_sentence_that_goes_on() -> None:
    from qa.answer_types import asks_why
    from qa.extractor import Candidate, explained_end
    from qa.retrieval import Passage

    assert asks_why("Why did the Sensex crash?") and asks_why("How did the miners survive?")
    assert asks_why("What caused the blackout?") and asks_why("And why?")
    assert not asks_why("How many miners died?") and not asks_why("How old is he?")
    assert not asks_why("Who bought Ring?")
    text = "Shares fell. The CPI was above forecasts. That hit emerging markets.\nNew paragraph."
    sentences = ((100, 112), (113, 141), (142, 168), (169, 183))
    passage = Passage(1, 1, 1, 1.0, 100, 100 + len(text), text, "T", sentences)
    assert text[sentences[1][0] - 100 : sentences[1][1] - 100] == "The CPI was above forecasts."

    def candidate(start: int, end: int) -> Candidate:
        return Candidate(passage, start, start + 3, start, end, "", {})

    assert explained_end(candidate(113, 141)) == 168  # and the sentence after it
    assert explained_end(candidate(142, 168)) == 168  # not into the next paragraph
    assert explained_end(candidate(169, 183)) == 183  # the passage's last sentence
