"""`qa eval`: gold offsets, metrics on hand-checked outcomes, and a tiny SQuAD file end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from qa.articles import load_corpus
from qa.cli import main
from qa.datasets import (
    GoldMapper,
    article_half,
    load_news_questions,
    load_squad,
    select_questions,
    write_corpus,
)
from qa.errors import InputError
from qa.evaluate import Outcome, auroc, summarize
from qa.text import contains_answer, exact_match, normalize_answer, token_f1

TINY = Path(__file__).parent / "data" / "tiny-squad-v2.json"


def test_squad_normalisation_and_scores() -> None:
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert exact_match("the Denver Broncos", "Denver Broncos") == 1.0
    assert token_f1("Denver", "Denver Broncos") == pytest.approx(2 / 3)
    assert contains_answer("It was opened in 1932 by Lang.", "1932")
    assert not contains_answer("It was opened in 19321.", "1932")


def test_gold_offsets_survive_whitespace_cleaning(tmp_path: Path) -> None:
    squad = load_squad(TINY)
    write_corpus(squad, tmp_path)
    articles = {a.record: a for a in load_corpus(tmp_path).articles}
    mapper = GoldMapper(squad)
    for q in squad.questions:
        body = articles[f"a{q.article:03d}"].body
        for (text, _), (start, end) in zip(q.answers, mapper.spans(q)):
            assert body[start:end] == text


def test_halves_split_by_article_title() -> None:
    squad = load_squad(TINY)
    fit = select_questions(squad, "fit")
    heldout = select_questions(squad, "heldout")
    assert len(fit) + len(heldout) == len(squad.questions)
    for q in fit:
        assert article_half(squad.titles[q.article]) == "fit"
    for q in heldout:
        assert article_half(squad.titles[q.article]) == "heldout"
    # the same title falls in the same half in every file and on every run (a stable hash,
    # not Python's salted hash()): these are the halves the shipped weights were fitted on
    assert article_half("Super Bowl 50") == "fit"
    assert article_half("Normans") == "fit"
    assert article_half("Coffee") == "heldout"
    assert {article_half(t) for t in ("Coffee", "Tea", "Milk", "Water", "Juice")} == {
        "fit",
        "heldout",
    }
    assert len(select_questions(squad, "all", sample=2, seed=1)) == 2


def test_metrics_by_hand() -> None:
    squad = load_squad(TINY)
    q = {x.id: x for x in squad.questions}
    outcomes = [
        # answerable: hit at 1, correct, exact span
        Outcome(q["hb1"], 1, True, True, False, 1.0, 1.0, 0.010, retrieval_hit=1),
        # answerable: hit at 3 (retrieved at 7, moved up by the reader), correct sentence but
        # abstained
        Outcome(q["hb2"], 3, False, True, True, 0.0, 0.5, 0.020, retrieval_hit=7),
        # answerable: no hit, wrong
        Outcome(q["hb4"], None, False, False, False, 0.0, 0.0, 0.030),
        # answerable: hit at 20
        Outcome(q["c1"], 20, False, False, False, 0.0, 0.25, 0.040),
        # unanswerable, abstained
        Outcome(q["hb3"], None, False, False, True, 0.0, 0.0, 0.050),
    ]
    metrics = summarize(outcomes, squad)
    assert metrics["questions"] == 5 and metrics["answerable"] == 4
    assert metrics["recall@1"] == 0.25
    assert metrics["recall@5"] == 0.5
    assert metrics["retrieval_recall@5"] == 0.25
    assert metrics["recall@20"] == 0.75
    assert metrics["mrr"] == round((1 + 1 / 3 + 1 / 20) / 4, 4)
    assert metrics["answer_accuracy"] == 0.5
    assert metrics["answered_accuracy"] == 0.25
    assert metrics["span_em"] == 0.25 and metrics["span_f1"] == round(1.75 / 4, 4)
    assert metrics["no_answer_accuracy"] == 1.0
    assert metrics["latency_ms_p50"] == pytest.approx(30.0)


@pytest.mark.model
def test_eval_on_tiny_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(TINY), "--json", "--index", str(tmp_path / "ix"),
              "--answers", str(tmp_path / "answers.jsonl")])  # fmt: skip
    out, _ = capsys.readouterr()
    assert exit_info.value.code == 0
    metrics = json.loads(out)
    assert metrics["questions"] == 5 and metrics["unanswerable"] == 1
    assert metrics["recall@1"] == 1.0
    assert metrics["answer_accuracy"] == 1.0
    for key in ("recall@5", "recall@20", "mrr", "span_em", "span_f1", "no_answer_accuracy",
                "answered_accuracy", "latency_ms_p50", "latency_ms_p95"):  # fmt: skip
        assert key in metrics
    assert (tmp_path / "ix" / "store.sqlite").exists(), "--index DIR keeps the built index"
    # --answers: one record a question, scored as the metrics were
    records = [json.loads(line) for line in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(q.id for q in load_squad(TINY).questions)
    assert not (tmp_path / "answers.jsonl.part").exists()
    answerable = [r for r in records if r["gold"]]
    for r in answerable:
        right = any(contains_answer(r["sentence"], gold) for gold in r["gold"])
        assert r["correct_without_abstention"] == right
        assert r["correct"] == (right and not r["abstained"])
        assert r["span"] is None or r["span"] in r["sentence"]
        assert r["char_end"] - r["char_start"] == len(r["sentence"])
    accuracy = sum(r["correct_without_abstention"] for r in answerable) / len(answerable)
    assert accuracy == metrics["answer_accuracy"]


def test_calibration_table_and_confident_accuracy() -> None:
    squad = load_squad(TINY)
    q = {x.id: x for x in squad.questions}
    outcomes = [
        Outcome(q["hb1"], 1, True, True, False, 1.0, 1.0, 0.01, confidence=0.95),
        Outcome(q["hb2"], 1, False, False, False, 0.0, 0.0, 0.01, confidence=0.85),
        Outcome(q["hb4"], 1, True, True, False, 1.0, 1.0, 0.01, confidence=1.0),
        Outcome(q["c1"], 1, False, True, True, 1.0, 1.0, 0.01, confidence=0.1),
        Outcome(q["hb3"], None, False, False, True, 0.0, 0.0, 0.01, confidence=0.5),
    ]
    metrics = summarize(outcomes, squad)
    table = {row["bin"]: row for row in metrics["calibration"]}
    assert table["0.8-1.0"] == {
        "bin": "0.8-1.0", "questions": 3, "mean_confidence": 0.9333, "accuracy": 0.6667
    }  # fmt: skip
    assert table["0.0-0.2"]["accuracy"] == 1.0 and table["0.4-0.6"]["accuracy"] == 0.0
    assert table["0.2-0.4"] == {
        "bin": "0.2-0.4", "questions": 0, "mean_confidence": None, "accuracy": None
    }  # fmt: skip
    assert metrics["shown_confidence>=0.8"] == 3
    assert metrics["accuracy_confidence>=0.8"] == 0.6667


def test_news_question_file_loads_and_rejects_bad_lines(tmp_path: Path) -> None:
    questions = load_news_questions(Path(__file__).parent / "data" / "bbc_paraphrased.jsonl")
    assert len(questions) >= 40 and all(q.answers and q.article for q in questions)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Who?", "answers": ["A"]}\n{"answers": ["B"]}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: not a question record"):
        load_news_questions(bad)
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"question": "Who?", "answers": []}\n')
    assert load_news_questions(foreign)[0].impossible


def test_eval_of_a_jsonl_file_needs_an_index(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Who?", "answers": ["A"]}\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(questions), "--index", str(tmp_path / "none")])
    _, err = capsys.readouterr()
    assert exit_info.value.code == 1 and "needs --index DIR with an index" in err


def test_auroc_counts_pairs_and_ties() -> None:
    assert auroc([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.3, 0.8, 0.9], [True, True, False, False]) == 0.0
    # one right answer below one wrong answer, one tie: (3 + 0.5) of 4 pairs
    assert auroc([0.9, 0.5, 0.5, 0.7], [True, True, False, False]) == 2.5 / 4
    assert auroc([0.9, 0.8], [True, True]) is None


def test_trust_metrics_by_hand() -> None:
    squad = load_squad(TINY)
    q = {x.id: x for x in squad.questions}
    outcomes = [
        # shown at high confidence: right, right
        Outcome(q["hb1"], 1, True, True, False, 1.0, 1.0, 0.01, confidence=0.95),
        Outcome(q["hb2"], 1, True, True, False, 1.0, 1.0, 0.01, confidence=0.85),
        # shown at medium: wrong; at low: right
        Outcome(q["hb4"], 1, False, False, False, 0.0, 0.0, 0.01, confidence=0.6),
        Outcome(q["c1"], 1, True, True, False, 1.0, 1.0, 0.01, confidence=0.3),
        # unanswerable and answered: a wrong answer at 0.9
        Outcome(q["hb3"], None, False, False, False, 0.0, 0.0, 0.01, confidence=0.9),
    ]
    trust = summarize(outcomes, squad)["trust"]
    # right {0.95, 0.85, 0.3} against wrong {0.9, 0.6}: 0.95 beats 2, 0.85 beats 1, 0.3 none
    assert trust["auroc"] == round(3 / 6, 4)
    bands = {row["band"]: row for row in trust["bands"]}
    assert bands["0.8-1.0"] == {"band": "0.8-1.0", "answers": 3, "share": 0.6, "accuracy": 0.6667}
    assert bands["0.5-0.8"]["accuracy"] == 0.0 and bands["0.0-0.5"]["accuracy"] == 1.0
    # answerable questions answered at >= 0.8: hb1, hb2 of 4
    assert trust["high_coverage"] == 0.5
    # only the 0.95 answer alone is right 90 % of the time: it covers 1 of 4 answerable
    assert trust["selective_coverage"] == 0.25
    # an abstention is no answer: nothing shown, nothing to rank
    abstaining = [dataclasses.replace(o, abstained=True) for o in outcomes]
    assert summarize(abstaining, squad)["trust"]["auroc"] is None


def test_news_questions_split_by_article_half(tmp_path: Path) -> None:
    from qa.evaluate import news_half, select_news

    questions = load_news_questions(Path(__file__).parent / "data" / "bbc_nearmiss.jsonl")
    fit = select_news(questions, "fit")
    heldout = select_news(questions, "heldout")
    assert fit and heldout and len(fit) + len(heldout) == len(questions)
    assert {news_half(q) for q in fit} == {"fit"}
    # every question of an article falls in the same half
    halves: dict[str, set[str | None]] = {}
    for q in questions:
        halves.setdefault(str(q.article), set()).add(news_half(q))
    assert all(len(h) == 1 for h in halves.values())
    parts = select_news(questions, "fit:reader") + select_news(questions, "fit:weights")
    assert sorted(q.question for q in parts) == sorted(q.question for q in fit)
    assert len(select_news(questions, "all", sample=7, seed=3)) == 7
    assert select_news(questions, "all", sample=7, seed=3) == select_news(
        questions, "all", sample=7, seed=3
    )


def test_eval_refuses_a_squad_file_with_others(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Who?", "answers": ["A"]}\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(questions), str(TINY), "--index", str(tmp_path / "none")])
    _, err = capsys.readouterr()
    assert exit_info.value.code == 1 and "only JSONL question files can be asked together" in err
