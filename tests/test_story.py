"""Story questions ("What happened to Ring?") answered with the lead of the story meant."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.engine import Engine
from qa.evaluate import evaluate_headlines
from qa.index import IndexReader, sync_index
from qa.story import lead_span, story_subject, subject_cover
from tests.fakes import HashEncoder


@pytest.mark.parametrize(
    ("question", "subject"),
    [
        ("What happened to Ring?", "Ring"),
        ("What is the story behind “Amazon to buy smart doorbell startup Ring”?",
         "Amazon to buy smart doorbell startup Ring"),
        ("What's the story behind the CMHC report?", "the CMHC report"),
        ("Tell me about the Sensex crash", "the Sensex crash"),
        ("What is the latest news on Iran?", "Iran"),
        ("what's going on with BT", "BT"),
        # questions for a fact are not stories
        ("What happened in the third quarter?", None),
        ("Who runs General Electric?", None),
        ("What is the story?", None),
        ("Tell me about it", None),
    ],
)  # fmt: skip
def test_story_subject(question: str, subject: str | None) -> None:
    assert story_subject(question) == subject


def test_lead_span_is_the_first_sentences_of_the_first_paragraph() -> None:
    body = "Short one. Second sentence here. Third. Fourth.\n\nNext paragraph."
    paragraphs = [[0, 47], [49, len(body)]]
    lead = lead_span(body, paragraphs)
    assert lead is not None
    start, end = lead
    assert body[start:end] == "Short one. Second sentence here. Third."
    long_first = "A" * 210 + " ends here. Then more. And more.\n\nNext."
    lead = lead_span(long_first, [[0, 243], [245, len(long_first)]])
    assert lead is not None
    start, end = lead
    assert long_first[start:end].endswith("ends here.")  # one sentence past 200 characters
    assert lead_span("", []) is None


def test_subject_cover() -> None:
    assert subject_cover("the Sensex crash", "Sensex crashes 5% as ...") == 1.0
    assert subject_cover("Ring doorbell", "Amazon buys Ring") == 0.5
    assert subject_cover("the", "anything") == 0.0


@pytest.fixture
def news_index(tmp_path: Path, bbc: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("business/118.txt", "business/275.txt", "tech/327.txt", "sport/455.txt",
                 "entertainment/044.txt", "politics/103.txt", "tech/365.txt"):  # fmt: skip
        shutil.copy(bbc / name, corpus / name.replace("/", "-"))
    shutil.copy(bbc / "tech/327.txt", corpus / "copy-of-tech-327.txt")  # a syndicated copy
    index = tmp_path / "index"
    sync_index(corpus, index, lambda _: HashEncoder(), full=True)
    return index


def test_story_question_gets_the_lead_with_its_citation(news_index: Path) -> None:
    engine = Engine(IndexReader(news_index), HashEncoder())
    try:
        result = engine.ask("What happened to German unemployment?")
        assert not result.not_found
        answer = result.answers[0]
        (citation,) = answer.citations
        assert citation.path == "business-275.txt"
        assert answer.text.startswith("Germany's unemployment figure rose above")
        assert answer.span is None and result.confidence == answer.score > 0.5
        # a story about nothing the corpus holds is not found
        assert engine.ask("Tell me about the zzyzx quorble").not_found
    finally:
        engine.close()


def test_headline_measure_on_a_small_corpus(news_index: Path) -> None:
    engine = Engine(IndexReader(news_index), HashEncoder())
    try:
        figures = evaluate_headlines(engine, count=20, seed=1)
        # every headline of the corpus is drawn once (7 texts, 8 articles with the copy)
        assert figures["headlines"] == 8
        assert figures["cites_the_article"] == 1.0 and figures["quotes_its_lead"] == 1.0
        assert figures["misses"] == []
        starters = engine.starter_questions(count=3)
        assert len(starters) == 3 and all(
            q.startswith("What is the story behind") for q in starters
        )
    finally:
        engine.close()
