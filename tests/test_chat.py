"""Follow-up questions (`qa.chat`): which questions lean on the conversation, and how they are
read with the previous answer or topic. Pure: no model."""

from __future__ import annotations

from qa.answers import Answer, Result
from qa.chat import Interpretation, Turn, interpretations, kind, rewrite


def test_follow_up_detection() -> None:
    assert kind("When did he leave?") == "follow-up"  # nothing "he" could point at
    assert kind("Why?") == "follow-up"
    assert kind("And what about Google?") == "follow-up"
    assert kind("How many were discharged?") == "ambiguous"  # one word of its own
    assert kind("What price did gold reach when it hit a 25 year high?") == "ambiguous"
    assert kind("How much did quarterly profits at Time Warner jump?") == "alone"
    assert kind("Which firm bought the company that makes Ray-Ban?") == "alone"  # relative
    assert rewrite("When did he leave?", []) == "When did he leave?"


def _turn(question: str, span: str, sentence: str) -> Turn:
    answer = Answer(sentence, span, sentence.index(span), 0.6, ())
    return Turn(
        question,
        question,
        Result(question=question, query=question, not_found=False, answers=(answer,)),
    )


def test_follow_ups_take_the_previous_answer_or_topic() -> None:
    who = _turn("Who runs General Electric?", "Jeff Immelt", "said chief executive Jeff Immelt.")
    # a person pronoun after a "who" question: the answer
    assert interpretations("How old is he?", [who]) == [
        Interpretation("How old is Jeff Immelt?", "How old is Jeff Immelt?"),
        Interpretation("How old is he?", "How old is he? Jeff Immelt runs General Electric"),
    ]
    # a thing pronoun: what the previous question was about
    its = interpretations("Who is its finance chief?", [who])
    assert its[0].question == "Who is General Electric's finance chief?"
    # a new topic whose pronoun points inside the question is asked as typed first
    gold = interpretations("What price did gold reach when it hit a 25 year high?", [who])
    assert gold[0].query == "What price did gold reach when it hit a 25 year high?"
    # an ellipsis with its own subject does not drag the old answer along
    other = interpretations("And 50 Cent?", [_turn("What is The Game really called?", "Jayceon "
                                            "Taylor", "real name Jayceon Taylor")])  # fmt: skip
    assert "Jayceon" not in other[0].query and "called" in other[0].query


def test_words_borrowed_from_earlier_turns_never_pile_up() -> None:
    """A question opening with "And" or "So" that names its own subject is asked as typed,
    and a follow-up borrows from the last turn only: "And where did Putin and Prodi meet..."
    had searched "... Skype's boss outage Metronet go administration"."""
    assert kind("And where did Putin and Prodi meet for their talks?") == "alone"
    assert kind("So what did Microsoft pay for Skype last year?") == "alone"
    assert kind("And 50 Cent?") == "follow-up"  # one name, nothing else of its own
    first = _turn("Who runs Skype?", "Niklas Zennstrom", "Its boss is Niklas Zennstrom.")
    # the second turn was searched with the first turn's words appended
    second = Turn(
        "Why?",
        "Why? Niklas Zennstrom runs Skype",
        Result(
            question="Why?", query="Why? Niklas Zennstrom runs Skype", not_found=False,
            answers=(Answer("A software fault caused the outage.", "software fault", 2, 0.6, ()),),
        ),
    )  # fmt: skip
    third = interpretations("And when?", [first, second])
    # the last turn's own words and answer, not what it borrowed from the first turn
    assert third and all("Zennstrom" not in r.query and "runs" not in r.query for r in third)
    assert all("software fault" in r.query for r in third)
    new_topic = interpretations(
        "And where did Putin and Prodi meet for their talks?", [first, second]
    )
    assert new_topic == [Interpretation(new_topic[0].question, new_topic[0].question)]
