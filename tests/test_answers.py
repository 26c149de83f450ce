"""Answers end to end with the real model: citations, follow-ups, filters, abstention, batch."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.answers import Result
from qa.articles import Article, load_corpus
from qa.chat import Conversation
from qa.engine import Engine
from qa.index import sync_index
from qa.retrieval import Filters
from tests.conftest import BUNDLED_SEED, run_qa

pytestmark = pytest.mark.model

WIRE = [
    {"id": "w1", "title": "Lake Zorba falls to record low", "date": "2005-03-01",
     "source": "Wire A", "body": "The water level of Lake Zorba fell to 3.2 metres in March, "
     "officials said. Farmers blamed the dry winter."},
    {"id": "w2", "title": "Lake Zorba recovers after rains", "date": "2007-06-10",
     "source": "Wire B", "body": "The water level of Lake Zorba rose to 5.9 metres in June "
     "after heavy rains, officials said. Fishing resumed."},
]  # fmt: skip

QUESTIONS = [
    ("Who led the purge of North Korean officers?", "politburo"),
    ("How many officers and soldiers have been dishonorably discharged?", "1,000"),
    ("How much did quarterly profits at Time Warner jump?", "76%"),
    ("What is Kim's last bastion of support?", "military"),
    ("What level did the water of Lake Zorba rise to after heavy rains?", "5.9"),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, bbc: Path) -> Path:
    root = tmp_path_factory.mktemp("answers") / "corpus"
    (root / "bbc").mkdir(parents=True)
    shutil.copy(BUNDLED_SEED, root / "seed.txt")
    shutil.copy(BUNDLED_SEED, root / "syndicated-copy.txt")
    for category in ("business", "tech", "politics"):
        for number in range(1, 9):
            shutil.copy(
                bbc / category / f"{number:03d}.txt", root / "bbc" / f"{category}{number}.txt"
            )
    (root / "wire.jsonl").write_text("\n".join(json.dumps(r) for r in WIRE) + "\n")
    (root / "markup.txt").write_text(
        "Odd [bold]markup[/bold] story\n\n"
        "The [link=https://evil.example]mayor[/link] of Quuxville said \x1b[31mred\x1b[0m "
        "alerts were issued on Tuesday.\n"
    )
    return root


@pytest.fixture(scope="module")
def index(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from qa.encoders import load_encoder

    target = tmp_path_factory.mktemp("answers-index")
    encoder = load_encoder()
    sync_index(corpus, target, lambda _: encoder, full=True)
    return target


@pytest.fixture(scope="module")
def engine(index: Path) -> Iterator[Engine]:
    engine = Engine.open(index)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def articles(corpus: Path) -> dict[str, Article]:
    return {a.id: a for a in load_corpus(corpus).articles}


def check_citations(result: Result, articles: dict[str, Article]) -> None:
    for answer in result.answers:
        assert answer.citations
        for citation in answer.citations:
            body = articles[citation.article_id].body
            assert body[citation.char_start : citation.char_end] == citation.quote
            assert citation.quote == answer.text
            paragraph = articles[citation.article_id].paragraph_at(citation.char_start)
            assert citation.paragraph == paragraph
        if answer.span is not None:
            assert answer.span_start is not None
            assert answer.text[answer.span_start : answer.span_start + len(answer.span)] == (
                answer.span
            )
    for citation in result.related:
        body = articles[citation.article_id].body
        assert body[citation.char_start : citation.char_end] == citation.quote


@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_answers_quote_the_source_exactly(
    engine: Engine, articles: dict[str, Article], question: str, expected: str
) -> None:
    result = engine.ask(question)
    assert not result.not_found
    assert expected in result.answers[0].text.lower()
    check_citations(result, articles)


def test_duplicate_articles_merge_into_one_answer_with_two_citations(engine: Engine) -> None:
    result = engine.ask("How many officers and soldiers have been dishonorably discharged?")
    top = result.answers[0]
    assert sorted(c.path for c in top.citations) == ["seed.txt", "syndicated-copy.txt"]
    texts = [a.text for a in result.answers]
    assert len(texts) == len(set(texts))


def test_span_for_how_many(engine: Engine) -> None:
    result = engine.ask("How many officers and soldiers have been dishonorably discharged?")
    assert result.answers[0].span is not None and "1,000" in result.answers[0].span


def test_filters_restrict_articles(engine: Engine) -> None:
    question = "What was the water level of Lake Zorba?"
    late = engine.ask(question, filters=Filters(since="2006-01-01"))
    assert {c.title for a in late.answers for c in a.citations} == {
        "Lake Zorba recovers after rains"
    }
    early = engine.ask(question, filters=Filters(until="2005-12"))
    assert {c.title for a in early.answers for c in a.citations} == {
        "Lake Zorba falls to record low"
    }
    wire_a = engine.ask(question, filters=Filters(source="wire a"))
    assert {c.title for a in wire_a.answers for c in a.citations} == {
        "Lake Zorba falls to record low"
    }
    nothing = engine.ask(question, filters=Filters(since="2030-01-01"))
    assert nothing.not_found and not nothing.answers
    assert nothing.not_found_message == "Not found: no article matches the filter since:2030-01-01."
    unknown = engine.ask(question, filters=Filters(source="nosuchsource"))
    assert unknown.reason == "no article matches the filter source:nosuchsource"
    # a filter that matches articles but not the answer is the corpus's silence, said as such
    assert engine.ask("Zyxqv blorft gnarbled?", filters=Filters(source="wire a")).reason is None
    # ...unless the corpus answers it outside the filter: then the filter is named
    hidden = engine.ask(QUESTIONS[0][0], filters=Filters(source="wire a"))
    assert hidden.not_found and hidden.reason is not None
    assert hidden.reason.startswith("the filter source:wire a hides what may answer it")
    assert "passages closest to the question" in hidden.not_found_message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--since", "2009-13-45"), "--since 2009-13-45 is not a real date"),
        (("--until", "2009-02-30"), "--until 2009-02-30 is not a real date"),
        (("--since", "2010", "--until", "2009-12"), "since:2010 is after until:2009-12"),
    ],
)
def test_impossible_filter_dates_are_errors(
    capsys: pytest.CaptureFixture[str], index: Path, options: tuple[str, ...], message: str
) -> None:
    code, _, err = run_qa(capsys, "ask", "Who?", "--index", str(index), *options)
    assert code == 1 and message in err


def test_no_match_says_the_filter_in_text_output(
    capsys: pytest.CaptureFixture[str], index: Path
) -> None:
    code, out, _ = run_qa(capsys, "ask", "Who?", "--index", str(index), "--source", "nosuch")
    assert code == 0 and "Not found: no article matches the filter source:nosuch." in out


def test_abstains_without_evidence(engine: Engine, articles: dict[str, Article]) -> None:
    result = engine.ask("Zyxqv blorft gnarbled wuzzle?")
    assert result.not_found and result.answers == ()
    check_citations(result, articles)
    strict = engine.extractor.abstain_below
    try:
        engine.extractor.abstain_below = 1.01
        refused = engine.ask("Who led the purge of North Korean officers?")
    finally:
        engine.extractor.abstain_below = strict
    assert refused.not_found and refused.related, "related passages come with not-found"
    check_citations(refused, articles)


def test_follow_up_is_resolved_with_the_conversation(engine: Engine) -> None:
    conversation = Conversation()
    first = conversation.ask(engine.ask, "Who led the purge of North Korean officers?")
    assert "politburo" in first.answers[0].text.lower()
    second = conversation.ask(engine.ask, "How many were discharged?")
    assert second.query != second.question and "purge" in second.query
    assert "1,000" in second.answers[0].text
    fresh = conversation.ask(engine.ask, "How much did quarterly profits at Time Warner jump?")
    assert fresh.query == fresh.question
    assert "76%" in fresh.answers[0].text


def test_ask_json_contract(
    capsys: pytest.CaptureFixture[str], index: Path, articles: dict[str, Article]
) -> None:
    code, out, _ = run_qa(capsys, "ask", QUESTIONS[2][0], "--index", str(index), "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"question", "not_found", "answers"}
    citation = data["answers"][0]["citations"][0]
    assert set(citation) >= {"article_id", "title", "path", "published", "url", "paragraph",
                             "char_start", "char_end", "quote"}  # fmt: skip
    body = articles[citation["article_id"]].body
    assert body[citation["char_start"] : citation["char_end"]] == citation["quote"]


def test_ask_text_output_is_terminal_safe(capsys: pytest.CaptureFixture[str], index: Path) -> None:
    code, out, _ = run_qa(
        capsys, "ask", "What did the mayor of Quuxville say about alerts?", "--index", str(index)
    )
    assert code == 0
    assert "\x1b" not in out
    # shown as escapes (the answer's highlight may start inside one: "\x1b[**31mred**")
    assert "\\x1b[" in out and "31mred" in out and "\\x1b[0m" in out
    assert "[link=https://evil.example]mayor[/link]" in out
    assert "[1] " in out


def test_ask_bad_date_is_one_line_error(capsys: pytest.CaptureFixture[str], index: Path) -> None:
    code, _, err = run_qa(capsys, "ask", "Who?", "--index", str(index), "--since", "last week")
    assert code == 1 and err.startswith("qa: error: --since must be a date")


def test_batch_formats_resume_and_failures(
    capsys: pytest.CaptureFixture[str], index: Path, tmp_path: Path
) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"id": "a", "question": QUESTIONS[0][0]}) + "\n"
        + "{broken json\n"
        + json.dumps({"id": "c", "question": QUESTIONS[2][0]}) + "\n"
    )  # fmt: skip
    out = tmp_path / "answers.jsonl"
    code, _, err = run_qa(capsys, "batch", str(questions), "--index", str(index), "-o", str(out))
    assert code == 1, "a failed question makes the exit code 1"
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["a", "q2", "c"]
    assert "error" in records[1] and "bad JSON" in records[1]["error"]
    assert "politburo" in records[0]["answers"][0]["text"].lower()
    assert "2 answered, 1 failed" in err

    # --resume asks only what is missing; a failed question is not asked and appended again
    # (a second record with its id), it is reported
    code, _, err = run_qa(
        capsys, "batch", str(questions), "--index", str(index), "-o", str(out), "--resume"
    )
    assert code == 1
    assert "0 answered, 0 failed, 3 already done (1 of them failed" in err
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["a", "q2", "c"]

    text = tmp_path / "questions.txt"
    text.write_text(f"# a comment\n{QUESTIONS[1][0]}\n\n{QUESTIONS[3][0]}\n")
    csv_out = tmp_path / "answers.csv"
    code, _, _ = run_qa(capsys, "batch", str(text), "--index", str(index), "-o", str(csv_out))
    assert code == 0
    rows = list(csv.DictReader(csv_out.open()))
    assert [r["id"] for r in rows] == ["q2", "q4"]
    assert "1,000" in rows[0]["answer"] and rows[0]["path"] and rows[0]["char_start"]
    assert rows[0]["not_found"] == "false" and 0 < float(rows[0]["confidence"]) <= 1
    assert "url" in rows[0]

    md_out = tmp_path / "answers.md"
    code, _, _ = run_qa(capsys, "batch", str(text), "--index", str(index), "-o", str(md_out))
    markdown = md_out.read_text()
    assert code == 0 and "## q2:" in markdown and "> " in markdown and "[1]" in markdown


def test_batch_csv_input_needs_question_column(
    capsys: pytest.CaptureFixture[str], index: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "q.csv"
    bad.write_text("id,text\n1,hello\n")
    code, _, err = run_qa(capsys, "batch", str(bad), "--index", str(index))
    assert code == 1 and "needs a 'question' column" in err


def test_batch_refuses_a_file_that_is_not_questions_up_front(
    capsys: pytest.CaptureFixture[str], index: Path, tmp_path: Path
) -> None:
    article = tmp_path / "article.md"
    article.write_text("---\ntitle: Ring\ndate: 2018-02-27\n---\nAmazon bought Ring.\n")
    page = tmp_path / "page.txt"
    page.write_text("<!DOCTYPE html><html><body><p>Hello</p></body></html>\n")
    prose = tmp_path / "story.txt"
    prose.write_text(("Amazon has bought Ring, the maker of video doorbells. " * 8 + "\n") * 3)
    records = tmp_path / "articles.jsonl"
    records.write_text('{"title": "Ring", "body": "Amazon bought Ring."}\n' * 3)
    for path, reason in (
        (article, "front matter"),
        (page, "HTML"),
        (prose, "no line is a question"),
        (records, "no 'question' text"),
    ):
        code, out, err = run_qa(capsys, "batch", str(path), "--index", str(index))
        assert code == 1 and out == "", err
        assert err.count("\n") == 1 and f"{path}: not a question file" in err and reason in err
    # questions without a question mark, requests and one odd line are questions
    fine = tmp_path / "fine.txt"
    fine.write_text("Tell me about Ring\nWho bought Ring\nprice of the deal\n")
    from qa.batch import read_questions

    assert len(read_questions(fine)) == 3


def test_ask_reads_the_question_from_stdin(
    capsys: pytest.CaptureFixture[str], index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    for args in (["-"], []):
        monkeypatch.setattr("sys.stdin", io.StringIO(QUESTIONS[2][0] + "\n"))
        code, out, _ = run_qa(capsys, "ask", *args, "--index", str(index), "--json")
        assert code == 0 and json.loads(out)["question"] == QUESTIONS[2][0]


def test_eval_against_an_index_without_the_articles_says_so(
    capsys: pytest.CaptureFixture[str], index: Path, tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "Who?", "answers": ["x"], "article": "nope.txt"}))
    code, _, err = run_qa(capsys, "eval", str(questions), "--index", str(index))
    assert code == 1 and "holds none of the articles" in err


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "md"])
def test_verify_checks_every_citation_against_the_corpus(
    capsys: pytest.CaptureFixture[str], index: Path, corpus: Path, tmp_path: Path, fmt: str
) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text(f"{QUESTIONS[0][0]}\n{QUESTIONS[1][0]}\n")
    answers = tmp_path / f"answers.{fmt}"
    if fmt == "json":
        code, out, _ = run_qa(capsys, "ask", QUESTIONS[1][0], "--index", str(index), "--json")
        answers.write_text(out)
    else:
        code, _, _ = run_qa(capsys, "batch", str(questions), "--index", str(index),
                            "-o", str(answers), "-q")  # fmt: skip
    assert code == 0
    code, out, _ = run_qa(capsys, "verify", str(answers), "--corpus", str(corpus), "--json")
    report = json.loads(out)
    assert code == 0 and report["verified"] > 0 and report["changed"] == report["missing"] == 0

    # the corpus moves on: one article edited, one deleted
    copy = tmp_path / "corpus"
    shutil.copytree(corpus, copy)
    cited = [c["ref"] for c in report["citations"]]
    edited = copy / cited[0]
    edited.write_text(edited.read_text().replace("e", "E"))
    code, out, _ = run_qa(capsys, "verify", str(answers), "--corpus", str(copy))
    assert code == 1 and "changed" in out and f"{cited[0]} chars" in out
    edited.unlink()
    code, out, _ = run_qa(capsys, "verify", str(answers), "--corpus", str(copy))
    assert code == 1 and "missing" in out


def test_python_api(index: Path, corpus: Path, tmp_path: Path) -> None:
    import qa

    with qa.open(index) as opened:
        result = opened.ask(QUESTIONS[1][0])
        assert isinstance(result, qa.Result) and isinstance(result.answers[0], qa.Answer)
        assert isinstance(result.answers[0].citations[0], qa.Citation)
        assert opened.ask(QUESTIONS[1][0], since="2030").not_found
        with pytest.raises(qa.QAError, match="not a real date"):
            opened.ask("Who?", since="2009-02-30")
        assert opened.status()["articles"] > 0
        assert opened.corpus == corpus.resolve()
    # updates: a copy of the index over a corpus that gained an article
    copy = tmp_path / "corpus"
    shutil.copytree(corpus, copy)
    shutil.copy(corpus / "seed.txt", copy / "seed-again.txt")
    shutil.copytree(index, tmp_path / "index")
    with qa.open(tmp_path / "index", corpus=copy) as opened:
        assert opened.update().added == 1


def test_python_api_validates_its_arguments(index: Path) -> None:
    """Wrong arguments are named at the boundary, not met deep inside (a TypeError or
    AttributeError from the retriever)."""
    import qa

    with pytest.raises(TypeError, match="index_dir must be a path, not NoneType"):
        qa.open(None)  # type: ignore[arg-type]
    opened = qa.open(index)
    for kwargs, error, message in (
        ({"question": None}, TypeError, "question must be a str"),
        ({"question": "  "}, ValueError, "the question is empty"),
        ({"n": "3"}, TypeError, "n must be an int, not str"),
        ({"n": 0}, ValueError, "n must be at least 1"),
        ({"since": 2016}, TypeError, "since must be a str"),
        ({"source": 5}, TypeError, "source must be a str"),
    ):
        arguments: dict[str, Any] = {"question": QUESTIONS[1][0], **kwargs}
        with pytest.raises(error, match=message):
            opened.ask(**arguments)
    opened.close()
    with pytest.raises(qa.QAError, match="this index was closed"):
        opened.ask(QUESTIONS[1][0])
    opened.close()  # closing twice is harmless


def test_an_interrupted_batch_says_so_once(
    capsys: pytest.CaptureFixture[str],
    index: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("".join(f"{q}\n" for q, _ in QUESTIONS[:3]))
    out = tmp_path / "answers.jsonl"
    asked: list[str] = []
    real_ask = Engine.ask

    def ask(self: Engine, question: str, **options: Any) -> Any:
        if asked:
            raise KeyboardInterrupt
        asked.append(question)
        return real_ask(self, question, **options)

    monkeypatch.setattr(Engine, "ask", ask)
    code, _, err = run_qa(
        capsys, "batch", str(questions), "--index", str(index), "-o", str(out), "-q"
    )
    assert code == 130
    assert "interrupted after 1 record(s) written" in err and "--resume" in err
    assert "nothing was changed" not in err, "one message, not two"


def test_batch_output_that_is_a_link_pipe_corpus_file_or_folder(
    capsys: pytest.CaptureFixture[str], index: Path, corpus: Path, tmp_path: Path
) -> None:
    """A link or a pipe is written to, not replaced by a renamed temporary file; an article
    of the corpus or a folder is refused."""
    import os
    import threading

    questions = tmp_path / "q.txt"
    questions.write_text(f"{QUESTIONS[0][0]}\n")
    target = tmp_path / "real.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    batch = ("batch", str(questions), "--index", str(index))
    code, _, _ = run_qa(capsys, *batch, "-o", str(link), "-q")
    assert code == 0 and link.is_symlink() and json.loads(target.read_text())["id"] == "q1"
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left"
    code, _, err = run_qa(capsys, *batch, "-o", str(link), "--resume", "-q")
    assert code == 1 and "--resume needs a regular output file" in err

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text()))
    reader.start()
    code, _, _ = run_qa(capsys, *batch, "-o", str(pipe), "-q")
    reader.join(timeout=60)
    assert code == 0 and json.loads(received[0])["id"] == "q1" and pipe.is_fifo()

    article = next(p for p in corpus.rglob("*.txt"))
    before = article.read_bytes()
    code, _, err = run_qa(capsys, "--corpus", str(corpus), *batch, "-o", str(article))
    assert code == 1 and "inside the corpus folder" in err and article.read_bytes() == before
    code, _, err = run_qa(capsys, *batch, "-o", str(tmp_path))
    assert code == 2 and "is a directory" in err  # click's own check of -o


def test_a_batch_killed_with_sigkill_resumes_where_it_stopped(
    capsys: pytest.CaptureFixture[str], index: Path, tmp_path: Path
) -> None:
    """A new output is written as records are answered: kill -9 leaves them in OUT (they
    were only in a hidden temporary file, which --resume never found), and --resume asks
    the rest, each question once."""
    import os
    import subprocess
    import sys
    import time

    questions = tmp_path / "q.txt"
    lines = [f"{q} ({n})" for n in range(8) for q, _ in QUESTIONS[:4]]
    questions.write_text("".join(f"{line}\n" for line in lines))
    out = tmp_path / "answers.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "batch", str(questions), "--index", str(index),
         "-o", str(out), "-q"],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    kept = [json.loads(line) for line in out.read_text().split("\n")[:-1]]
    assert len(kept) >= 2, "the records answered before the kill are in OUT"
    assert not list(tmp_path.glob(".*.tmp")), "no hidden temporary file"
    code, _, _ = run_qa(capsys, "batch", str(questions), "--index", str(index), "-o", str(out),
                        "--resume", "-q")  # fmt: skip
    assert code == 0
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(f"q{n}" for n in range(1, len(lines) + 1)), "each once"


def test_confidence_words_read_the_same_everywhere() -> None:
    """One pair of parentheses in the CLI and in Markdown ("(medium confidence (65 %))" had
    two), and the same percentage from the float the chat has and the four decimals an export
    keeps (0.405 was 40 % in the chat and 41 % in an export)."""
    from qa.answers import confidence_words

    assert confidence_words(0.65) == "medium confidence, 65 %"
    assert confidence_words(0.405) == confidence_words(round(0.405, 4)) == "low confidence, 41 %"
    assert confidence_words(0.40499999) == "low confidence, 41 %"
    assert confidence_words(0.79996) == "high confidence, 80 %"
    assert confidence_words(0.8) == "high confidence, 80 %"
    assert confidence_words(0.0) == "low confidence, 0 %"


def test_markdown_highlight_keeps_the_quote_exact() -> None:
    from qa.batch import markdown_record

    def answer(text: str, span: str) -> dict:
        return {"text": text, "span": span, "span_start": text.index(span), "score": 0.9,
                "citations": []}  # fmt: skip

    record = {"id": "q1", "question": "Who?", "answers": [
        answer("Trevor East, 54, joins Setanta.", "Trevor East"),
        answer("The deal was worth £1.02bn.", "£1.02bn"),
        answer("It cost 7.5bn in total.", "7.5bn"),
    ]}  # fmt: skip
    lines = markdown_record(record).splitlines()
    assert "1. **Trevor East**, 54, joins Setanta. _(" in lines[2]
    assert "2. The deal was worth **£1.02bn**. _(" in lines[3]
    assert "3. It cost **7.5bn** in total. _(" in lines[4]


def test_the_conversation_outside_the_chat(
    capsys: pytest.CaptureFixture[str],
    index: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """qa ask keeps each question; -c asks a follow-up of the last; qa history lists, shows
    and exports them."""
    monkeypatch.setenv("QA_DATA_DIR", str(tmp_path / "data"))
    code, _, err = run_qa(capsys, "ask", "-c", "Why?", "--index", str(index))
    assert code == 1 and "no conversation of" in err and "ask without -c first" in err
    code, out, _ = run_qa(capsys, "ask", QUESTIONS[0][0], "--index", str(index))
    assert code == 0 and QUESTIONS[0][1] in out.lower()
    code, out, _ = run_qa(capsys, "ask", "-c", "Why?", "--index", str(index), "--json")
    record = json.loads(out)
    assert code == 0 and record["question"] == "Why?"
    assert "purge" in record["query"]  # searched with the last turn's words
    code, out, _ = run_qa(capsys, "history", "--json")
    (listed,) = json.loads(out)
    assert listed["turns"] == 2 and listed["title"] == QUESTIONS[0][0]
    conversation = str(listed["id"])
    code, out, _ = run_qa(capsys, "history", "show", conversation)
    assert code == 0 and out.startswith(f"Q1: {QUESTIONS[0][0]}\n") and "\nQ2: Why?\n" in out
    assert "(searched: " in out
    target = tmp_path / "chat.md"
    code, _, _ = run_qa(capsys, "history", "export", conversation, "-o", str(target))
    text = target.read_text()
    assert code == 0 and text.startswith("# qa conversation") and "## 2: Why?" in text
    code, _, err = run_qa(capsys, "history", "export", conversation, "-o", str(target))
    assert code == 1 and "exists" in err and target.read_text() == text
    code, _, err = run_qa(capsys, "ask", "--cid", "999", "Why?", "--index", str(index))
    assert code == 1 and "no conversation 999" in err
    code, _, err = run_qa(capsys, "ask", "--no-save", "-c", "Why?", "--index", str(index))
    assert code == 2 and "--no-save" in err
    code, _, _ = run_qa(capsys, "ask", "--no-save", QUESTIONS[1][0], "--index", str(index))
    code, out, _ = run_qa(capsys, "history", "--json")
    assert code == 0 and len(json.loads(out)) == 1  # --no-save kept nothing


def test_python_api_holds_a_conversation(index: Path) -> None:
    import qa

    with qa.open(index) as opened:
        chat = opened.chat()
        first = chat.ask(QUESTIONS[0][0])
        follow_up = chat.ask("Why?")
        assert QUESTIONS[0][1] in first.answers[0].text.lower()
        assert [t.question for t in chat.turns] == [QUESTIONS[0][0], "Why?"]
        assert "purge" in chat.turns[1].query and follow_up.query == chat.turns[1].query
        with pytest.raises(TypeError, match="n must be an int"):
            chat.ask("Why?", n="2")  # type: ignore[arg-type]
        chat.reset()
        assert chat.turns == []


def test_an_answer_shows_the_date_its_relative_date_means(
    capsys: pytest.CaptureFixture[str], index: Path
) -> None:
    """The seed article (2016-11-01, a Tuesday) says "a source said Monday"."""
    code, out, _ = run_qa(capsys, "ask", QUESTIONS[0][0], "--index", str(index), "--json")
    answer = json.loads(out)["answers"][0]
    assert code == 0 and "said Monday" in answer["text"]
    (date,) = answer["dates"]
    assert (date["text"], date["date"], date["period"]) == ("Monday", "2016-10-31", "day")
    assert answer["text"][date["start"] : date["end"]] == "Monday"
    code, out, _ = run_qa(capsys, "ask", QUESTIONS[0][0], "--index", str(index))
    assert "when: Monday = 2016-10-31" in out


def test_keys_typed_while_the_chat_starts_reach_the_question_box(
    index: Path, tmp_path: Path
) -> None:
    """In a real terminal (a pty): what is typed a moment after launch, before the app has
    shown its first frame, lands in the question box (it went to the transcript, lost)."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    pyte = pytest.importorskip("pyte")  # a terminal emulator: what the screen shows
    main, child = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30",
           "QA_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "tui", "--index", str(index), "--no-save"],
        stdin=child, stdout=child, stderr=child, env=env, close_fds=True,
    )  # fmt: skip
    os.close(child)
    try:
        time.sleep(0.1)
        os.write(main, b"Who led the purge")  # echoed by the terminal until the app starts
        screen = pyte.Screen(100, 30)
        stream = pyte.ByteStream(screen)
        deadline = time.monotonic() + 60
        ready_at = None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    stream.feed(os.read(main, 65536))
                except OSError:
                    break
            if any("▊" in line and "▎" in line for line in screen.display):  # the box is up
                ready_at = ready_at or time.monotonic()
            if ready_at and time.monotonic() - ready_at > 3:
                break  # the app has drawn its frames: what is shown now stays
        box = [line for line in screen.display if "▊" in line and "▎" in line]
        assert any("Who led the purge" in line for line in box), "\n".join(screen.display)
    finally:
        process.kill()
        process.wait()
        os.close(main)


def test_answer_pieces_split_the_sentence_around_the_span() -> None:
    from qa.answers import answer_pieces

    text = "Shares fell 5% on Monday."
    assert answer_pieces(text, "5%", 12) == ("Shares fell ", "5%", " on Monday.")
    assert answer_pieces(text, None, None) == (text, "", "")
    assert "".join(answer_pieces(text, "Shares", 0)) == text
