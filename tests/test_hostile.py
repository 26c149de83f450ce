"""Hostile input: what comes from articles or questions is data in every output file."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace

from qa.batch import Writer, markdown_record

EVIL = '=HYPERLINK("http://evil.example","x") \x1b]52;c;cHduZWQ=\x07 \u202e'
RECORD = {
    "id": "q1",
    "question": "+cmd|' /C calc'!A0 \x1b[2J?",
    "not_found": False,
    "confidence": 0.9,
    "answers": [
        {
            "text": EVIL + " said <script>alert(1)</script> ![img](http://x/y.png)",
            "span": "=HYPERLINK",
            "span_start": 0,
            "score": 0.9,
            "citations": [
                {
                    "article_id": "a",
                    "title": "@SUM(1+1) [link](javascript:alert(1))",
                    "path": "-evil.txt",
                    "published": None,
                    "url": "javascript:alert(1)",
                    "paragraph": 1,
                    "char_start": 0,
                    "char_end": 10,
                    "quote": "<img src=x onerror=alert(1)>\nnext line",
                }
            ],
        }
    ],
    "related": [],
}


def write(fmt: str) -> str:
    handle = io.StringIO()
    Writer(handle, fmt, header=True).write(RECORD)
    return handle.getvalue()


def test_csv_cells_are_never_formulas_or_control_sequences() -> None:
    rows = list(csv.DictReader(io.StringIO(write("csv"))))
    row = rows[0]
    for key in ("question", "answer", "span", "title", "path"):
        assert not row[key].startswith(("=", "+", "-", "@")), key
        assert "\x1b" not in row[key] and "\x07" not in row[key] and "\u202e" not in row[key]
    assert row["answer"].startswith("'=HYPERLINK") and "\\x1b]52" in row["answer"]
    assert row["id"] == "q1"


def test_csv_ids_are_made_safe_and_still_resume(tmp_path: Path) -> None:
    """An id from the input is data: no formula, no escape sequence in the CSV; --resume
    still knows the question was answered."""
    from qa.answers import Result
    from qa.batch import BatchQuestion, run_batch, written_ids

    evil = '=HYPERLINK("http://evil.example") \x1b]52;c;cHduZWQ=\x07'
    out = tmp_path / "answers.csv"
    questions = [BatchQuestion(evil, "Who?"), BatchQuestion("q2", "What?")]
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = Writer(handle, "csv", header=True)
        run_batch(
            questions[:1],
            lambda q: Result(question=q, query=q, not_found=True, answers=()),
            writer,
            set(),
        )
    (row,) = csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))
    assert row["id"].startswith("'=") and "\x1b" not in row["id"] and "\x07" not in row["id"]
    with out.open("a", encoding="utf-8", newline="") as handle:
        writer = Writer(handle, "csv", header=False)
        asked: list[str] = []

        def ask(question: str) -> Result:
            asked.append(question)
            return Result(question=question, query=question, not_found=True, answers=())

        run_batch(questions, ask, writer, set(written_ids(out, "csv")))
    assert asked == ["What?"], "the evil id was answered already"


def test_markdown_output_is_literal() -> None:
    text = markdown_record(RECORD)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "<script>" not in text and "<img" not in text and "&lt;script&gt;" in text
    assert "![img]" not in text and "\\!\\[img\\]" in text
    assert "](javascript:" not in text and "<javascript:" not in text
    assert "[link](" not in text and "address: javascript:alert" in text
    # the quote stays one blockquote line, and the span is still emphasised by us
    assert "> &lt;img src=x onerror=alert\\(1\\)&gt; next line" in text
    assert "1. **=HYPERLINK**" in text


# =========================================================================== issue 13, 1-16
# Every test below reproduces one item of the hostile-input list: a bad file, a damaged index
# or a careless command. None may end in a traceback or lose work.

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from qa.articles import load_corpus  # noqa: E402
from qa.errors import (  # noqa: E402
    CommittedInterrupt,
    IndexCorruptError,
    IndexMismatchError,
    InputError,
    MassRemovalError,
)
from qa.index import STORE_FILE, IndexReader, check_encoder, sync_index, write_lock  # noqa: E402
from tests.conftest import BUNDLED_SEED, run_qa  # noqa: E402
from tests.fakes import Factory, HashEncoder  # noqa: E402

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def corpus(tmp_path: Path, bbc: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    shutil.copy(BUNDLED_SEED, root / "seed.txt")
    for number in range(1, 7):
        shutil.copy(bbc / "business" / f"{number:03d}.txt", root / f"business-{number}.txt")
    return root


def in_time(func: object, seconds: float = 20.0) -> object:
    """Run `func()` in a thread; fail (instead of hanging the suite) if it does not return."""
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["value"] = func()  # type: ignore[operator]
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]


def problems_of(result: object) -> dict[str, str]:
    return {p.path: p.reason for p in result.problems}  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- 1-5: bad files


def test_1_deeply_nested_json_is_one_skipped_file(corpus: Path, tmp_path: Path) -> None:
    (corpus / "deep.json").write_text(DEEP)
    (corpus / "deep.jsonl").write_text(DEEP + "\n" + json.dumps({"title": "T", "body": "B."}))
    result = load_corpus(corpus)
    assert len(result.articles) == 8  # the seven files, and the good line of deep.jsonl
    assert "nested too deeply" in problems_of(result)["deep.json"]
    assert "nested too deeply" in problems_of(result)["deep.jsonl:1"]
    report = sync_index(corpus, tmp_path / "index", Factory(), full=True)
    assert report.article_count == 8


def test_1_deeply_nested_json_line_in_a_batch_is_one_failed_question(tmp_path: Path) -> None:
    from qa.batch import read_questions

    path = tmp_path / "q.jsonl"
    path.write_text(DEEP + "\n" + json.dumps({"id": "ok", "question": "Who?"}) + "\n")
    questions = read_questions(path)
    assert [q.error is not None for q in questions] == [True, False]
    assert "nested too deeply" in (questions[0].error or "")


def test_2_impossible_date_is_dropped_and_the_article_kept(corpus: Path) -> None:
    (corpus / "d.md").write_text("---\ntitle: T\ndate: 2016-13-45\n---\nBody.\n")
    (corpus / "ok.md").write_text("---\ntitle: U\ndate: 2016-11-01\n---\nBody two.\n")
    articles = {a.path: a for a in load_corpus(corpus).articles}
    assert articles["d.md"].published is None and articles["d.md"].body == "Body."
    assert articles["ok.md"].published == "2016-11-01"
    problem = next(p for p in load_corpus(corpus).problems if p.path == "d.md")
    assert "2016-13-45" in problem.reason and problem.action == "repaired"


def test_3_pipes_and_devices_are_never_read(corpus: Path, tmp_path: Path) -> None:
    os.mkfifo(corpus / "pipe.txt")
    (corpus / "zero.txt").symlink_to("/dev/zero")
    result = in_time(lambda: load_corpus(corpus))
    assert problems_of(result)["pipe.txt"] == "not a regular file (named pipe)"
    assert problems_of(result)["zero.txt"] == "not a regular file (device)"
    report = in_time(lambda: sync_index(corpus, tmp_path / "index", Factory(), full=True))
    assert report.article_count == 7  # type: ignore[attr-defined]


def test_3_a_file_is_never_read_past_the_size_limit(tmp_path: Path) -> None:
    from qa.articles import load_file

    big = tmp_path / "big.txt"
    big.write_text("Title\n\n" + "word " * 5000)
    articles, problems = load_file(big, "big.txt", max_bytes=1000)
    assert not articles and "too large" in problems[0].reason


def test_4_links_leaving_the_corpus_are_skipped(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("Secret memo\n\nThe password is swordfish.\n")
    (corpus / "p.txt").symlink_to(secret)
    (corpus / "inside.txt").symlink_to(corpus / "seed.txt")  # inside: fine
    result = load_corpus(corpus)
    assert problems_of(result)["p.txt"] == "symbolic link to a file outside the corpus"
    assert all("swordfish" not in a.body for a in result.articles)
    assert any(a.path == "inside.txt" for a in result.articles)

    # `qa add DIR` does not copy a link's outside target in either
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "leak.txt").symlink_to(secret)
    shutil.copy(corpus / "business-1.txt", incoming / "fine.txt")
    index = tmp_path / "index"
    code, _, err = run_qa(
        capsys, "add", str(incoming), "--corpus", str(corpus), "--index", str(index), "-q"
    )
    assert code == 1 and "outside the corpus" in err
    assert (corpus / "fine.txt").exists() and not (corpus / "leak.txt").exists()


def test_4_unreadable_folder_is_reported(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (corpus / "locked").mkdir()
    shutil.copy(corpus / "seed.txt", corpus / "locked" / "x.txt")
    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    # Root reads a chmod 000 folder anyway, so the refusal is injected where os.walk lists.
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "scandir", scandir)
    result = load_corpus(corpus)
    assert problems_of(result)["locked/"] == "cannot read folder: Permission denied"
    report = sync_index(corpus, index, Factory())
    assert report.removed == 0, "what was indexed from an unreadable folder stays"
    assert any(item["path"] == "locked/" for item in report.skipped)


def test_an_unreadable_file_keeps_its_article_like_an_unreadable_folder(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chmod 000 on a file removed its article from the index, while an unreadable folder
    kept its articles: both are kept now, with a problem line."""
    shutil.copy(corpus / "seed.txt", corpus / "locked.txt")
    index = tmp_path / "index"
    built = sync_index(corpus, index, Factory(), full=True)
    # Root reads a chmod 000 file anyway, so the refusal is injected where files are opened.
    real_open, real_path_open = os.open, Path.open

    def refuse(path: object) -> None:
        if str(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied", str(path))

    def os_open(path: Any, *args: Any, **kwargs: Any) -> int:
        refuse(path)
        return real_open(path, *args, **kwargs)

    def path_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        refuse(self)
        return real_path_open(self, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(Path, "open", path_open)
    (corpus / "locked.txt").touch()  # a new modification time: the file is looked at again
    report = sync_index(corpus, index, Factory())
    assert report.removed == 0 and report.article_count == built.article_count
    (item,) = [i for i in report.skipped if i["path"] == "locked.txt"]
    assert item["reason"] == "cannot read file now; what was indexed from it is kept"


def test_4_utf16_text_with_a_bom_is_decoded(corpus: Path) -> None:
    (corpus / "wide.txt").write_bytes("Wide headline\n\nA body in UTF-16.\n".encode("utf-16"))
    articles = {a.path: a for a in load_corpus(corpus).articles}
    assert articles["wide.txt"].title == "Wide headline"
    assert articles["wide.txt"].body == "A body in UTF-16."


def test_utf32_text_with_a_bom_is_decoded_as_utf32(corpus: Path) -> None:
    """UTF-32 LE's byte order mark begins with UTF-16 LE's: it was read as UTF-16, with a NUL
    between every two characters."""
    for codec in ("utf-32", "utf-32-be"):
        data = "Wide headline\n\nA body in UTF-32.\n".encode(codec)
        if codec == "utf-32-be":
            data = b"\x00\x00\xfe\xff" + data
        (corpus / f"{codec}.txt").write_bytes(data)
    result = load_corpus(corpus)
    articles = {a.path: a for a in result.articles}
    for codec in ("utf-32", "utf-32-be"):
        assert articles[f"{codec}.txt"].title == "Wide headline"
        assert articles[f"{codec}.txt"].body == "A body in UTF-32."


@pytest.mark.parametrize("text", ["\u200b\u200b\n\u200d", "\u3000\u3000\n", "\ufeff\u2060 \u00ad"])
def test_text_that_shows_nothing_is_an_empty_file(corpus: Path, text: str) -> None:
    (corpus / "invisible.txt").write_text(text, encoding="utf-8")
    result = load_corpus(corpus)
    assert "invisible.txt" not in {a.path for a in result.articles}
    assert problems_of(result)["invisible.txt"].startswith("empty file")


def test_5_file_names_are_printed_as_data(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (corpus / "e\x1b]52;c;cHduZWQ=\x07.txt").write_text("")
    (corpus / "a\nindex built in 0.1 s.txt").write_text("")
    code, out, _ = run_qa(capsys, "corpus", "check", "--corpus", str(corpus))
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "e\\x1b]52;c;cHduZWQ=\\x07.txt: empty file" in out
    assert "a\\nindex built in 0.1 s.txt: empty file" in out
    assert not any(line.startswith("index built") for line in out.splitlines())


# --------------------------------------------------------------------------- 6-12: damage


def corrupt_a_page(store: Path) -> None:
    pages = store.stat().st_size // 4096
    with store.open("r+b") as handle:
        handle.seek(4096 * (pages // 2))
        handle.write(os.urandom(4096))


def test_6_a_corrupt_page_is_detected_and_a_build_always_succeeds(
    corpus: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    with IndexReader(index) as reader:
        assert reader.check() == "ok"
    corrupt_a_page(index / STORE_FILE)
    with IndexReader(index) as reader:
        assert reader.check().startswith("damaged")
    with pytest.raises(IndexCorruptError, match="qa index build"):
        sync_index(corpus, index, Factory())
    report = sync_index(corpus, index, Factory(), full=True)
    assert report.article_count == 7
    with IndexReader(index) as reader:
        assert reader.check() == "ok"
        assert reader.conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 7


def test_6_index_status_says_what_is_wrong(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    corrupt_a_page(index / STORE_FILE)
    code, out, _ = run_qa(capsys, "index", "status", "--index", str(index), "--json")
    assert code == 1 and json.loads(out)["integrity"].startswith("damaged")


def test_7_a_lost_keyword_index_is_rebuilt_by_update(corpus: Path, tmp_path: Path) -> None:
    from qa.engine import Engine

    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    with IndexReader(index) as reader:
        fts_before = sorted(
            map(tuple, reader.conn.execute("SELECT rowid, title, text FROM chunks_fts"))
        )
    conn = sqlite3.connect(index / STORE_FILE)
    conn.execute("DROP TABLE chunks_fts")
    conn.commit()
    conn.close()

    engine = Engine(IndexReader(index), HashEncoder())
    with pytest.raises(IndexCorruptError, match="qa index update"):
        engine.search("military officers purged")
    engine.close()
    sync_index(corpus, index, Factory())
    with IndexReader(index) as reader:
        assert reader.check() == "ok"
        fts_after = sorted(
            map(tuple, reader.conn.execute("SELECT rowid, title, text FROM chunks_fts"))
        )
    assert fts_after == fts_before and fts_after


def test_8_other_weights_say_what_differs() -> None:
    from qa.chunking import ChunkSettings
    from qa.index import IndexSettings

    settings = IndexSettings(
        model="m", weights_sha256="a" * 64, backend="fake", dimension=64,
        chunking=ChunkSettings(), faiss="Flat",
    )  # fmt: skip
    encoder = HashEncoder()
    encoder.name, encoder.weights_sha256 = "m", "b" * 64  # type: ignore[assignment]
    with pytest.raises(IndexMismatchError) as info:
        check_encoder(settings, encoder)
    message = str(info.value)
    assert "aaaaaaaaaaaa" in message and "bbbbbbbbbbbb" in message and "qa index build" in message


def test_9_a_read_only_index_can_be_queried(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    # What SQLite says when a WAL store's -shm cannot be created (a read-only folder; root,
    # who runs CI, may write anywhere, so the refusal is injected).
    real_connect = sqlite3.connect

    def connect(target: str, *args: object, **kwargs: object) -> sqlite3.Connection:
        if "mode=ro" in str(target) and "immutable=1" not in str(target):
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return real_connect(target, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(sqlite3, "connect", connect)
    with IndexReader(index) as reader:
        assert reader.meta["articles"] == "7"
        vector = HashEncoder().encode(["profits"])[0]
        assert reader.search_dense(vector, 3)


def test_10_a_question_reads_one_committed_state(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    reader = IndexReader(index)
    count = "SELECT count(*) FROM chunks"
    with reader.snapshot():
        before = reader.conn.execute(count).fetchone()[0]
        for path in corpus.glob("business-*.txt"):
            path.unlink()
        sync_index(corpus, index, Factory(), confirm_removal=lambda *_: True)
        # the writer committed; this question still sees the state it started with
        assert reader.conn.execute(count).fetchone()[0] == before
    with reader.snapshot():
        after = reader.conn.execute(count).fetchone()[0]
        assert after < before
        # and the next question searches the new generation, FAISS included
        assert reader.faiss.ntotal == after
    reader.close()


def test_11_temporary_files_of_dead_writers_are_cleaned(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    (index / ".manifest.json.999999.tmp").write_text("{")
    (index / ".vectors.faiss.999999.tmp").write_bytes(b"x")
    sync_index(corpus, index, Factory())
    assert not list(index.glob(".*.tmp"))


def test_12_a_cancel_event_stops_before_or_reports_after_the_commit(
    corpus: Path, tmp_path: Path, bbc: Path
) -> None:
    """`sync_index(cancel=...)` (the chat's F5 and build screen): set before the commit,
    `Cancelled` and nothing changed; set after it, `CommittedInterrupt` with what was."""
    import threading

    from qa.errors import Cancelled
    from qa.index import Progress

    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    shutil.copy(bbc / "tech" / "001.txt", corpus / "new.txt")

    def cancel_at(stage: str, done: int) -> tuple[threading.Event, object]:
        cancel = threading.Event()

        def progress(report: Progress) -> None:
            if report.stage == stage and report.done == done:
                cancel.set()

        return cancel, progress

    cancel, progress = cancel_at("embed", 0)
    with pytest.raises(Cancelled):
        sync_index(corpus, index, Factory(), progress=progress, cancel=cancel)  # type: ignore[arg-type]
    with IndexReader(index) as reader:
        assert reader.meta["articles"] == "7"
    cancel, progress = cancel_at("write", 1)
    with pytest.raises(CommittedInterrupt, match="1 added") as info:
        sync_index(corpus, index, Factory(), progress=progress, cancel=cancel)  # type: ignore[arg-type]
    assert info.value.report.added == 1
    with IndexReader(index) as reader:
        assert reader.meta["articles"] == "8"


def test_12_interrupt_after_the_commit_says_it_was_committed(
    corpus: Path, tmp_path: Path, bbc: Path
) -> None:
    from qa.index import Progress

    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    shutil.copy(bbc / "tech" / "001.txt", corpus / "new.txt")

    def interrupt_at(stage: str, done: int) -> object:
        def progress(report: Progress) -> None:
            if report.stage == stage and report.done == done:
                raise KeyboardInterrupt

        return progress

    # before the commit: nothing changed, and the interrupt is the plain one
    with pytest.raises(KeyboardInterrupt):
        sync_index(corpus, index, Factory(), progress=interrupt_at("write", 0))  # type: ignore[arg-type]
    with IndexReader(index) as reader:
        assert reader.meta["articles"] == "7"
    # after it: the caller learns what was committed, and the index has it
    with pytest.raises(CommittedInterrupt, match="1 added") as info:
        sync_index(corpus, index, Factory(), progress=interrupt_at("write", 1))  # type: ignore[arg-type]
    assert info.value.report.added == 1
    with IndexReader(index) as reader:
        assert reader.meta["articles"] == "8"
        assert reader.faiss.ntotal == int(reader.meta["chunks"])


# --------------------------------------------------------------------------- 13-16: commands


def test_13_emptying_most_of_an_index_needs_yes(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MassRemovalError, match="remove 7 of the 7"):
        sync_index(empty, index, Factory())
    with pytest.raises(MassRemovalError):
        sync_index(empty, index, Factory(), full=True, confirm_removal=lambda *_: False)
    with IndexReader(index) as reader:
        assert reader.meta["articles"] == "7"
    # a removal of fewer than half goes through without asking
    (corpus / "business-1.txt").unlink()
    assert sync_index(corpus, index, Factory()).removed == 1
    # and --yes on the command line is the confirmation (the CLI's own test, no model needed)
    from qa.cli.options import _confirm_removal

    assert _confirm_removal(True)(6, 6) is True
    assert _confirm_removal(False)(6, 6) is False  # not a terminal: refused


@pytest.fixture(scope="module")
def real_index(tmp_path_factory: pytest.TempPathFactory, bbc: Path) -> Path:
    from qa.encoders import load_encoder

    root = tmp_path_factory.mktemp("hostile") / "corpus"
    root.mkdir()
    shutil.copy(BUNDLED_SEED, root / "seed.txt")
    for number in range(1, 4):
        shutil.copy(bbc / "business" / f"{number:03d}.txt", root / f"b{number}.txt")
    index = root.parent / "index"
    encoder = load_encoder()
    sync_index(root, index, lambda _: encoder, full=True)
    return index


QUESTIONS = ["Who was purged?", "What did Yukos do?", "Who is the defence minister?"]


def test_14_batch_output_never_overwrites_an_input(
    real_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n")
    store = real_index / STORE_FILE
    size = store.stat().st_size
    for target in (store, questions, real_index / "answers.jsonl"):
        code, _, err = run_qa(capsys, "batch", str(questions), "--index", str(real_index),
                              "-o", str(target), "-q")  # fmt: skip
        assert code == 1 and err.startswith("qa: error:"), err
    assert store.stat().st_size == size
    assert questions.read_text().splitlines() == QUESTIONS
    assert not (real_index / "answers.jsonl").exists()


def test_14_an_interrupted_batch_leaves_an_existing_output_as_it_was(
    real_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from qa.engine import Engine

    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n")
    output = tmp_path / "answers.jsonl"
    output.write_text('{"id": "old", "question": "kept"}\n')
    real_ask = Engine.ask
    asked = []

    def ask(self: Engine, question: str, **kwargs: object) -> object:
        asked.append(question)
        if len(asked) == 2:
            raise KeyboardInterrupt
        return real_ask(self, question, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Engine, "ask", ask)
    code, _, _ = run_qa(capsys, "batch", str(questions), "--index", str(real_index),
                        "-o", str(output), "-q")  # fmt: skip
    assert code == 130
    assert output.read_text() == '{"id": "old", "question": "kept"}\n'
    assert not list(tmp_path.glob(".answers.jsonl.*"))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_15_resume_drops_a_torn_last_record(
    real_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n")
    output = tmp_path / f"answers.{fmt}"
    code, _, _ = run_qa(capsys, "batch", str(questions), "--index", str(real_index),
                        "-o", str(output), "-q")  # fmt: skip
    assert code == 0
    whole = output.read_bytes()
    # a crash in the middle of the last record: inside a quoted CSV field, mid-line in JSONL
    cut = whole.rindex(b'"', 0, len(whole) - 10) if fmt == "csv" else len(whole) - 25
    output.write_bytes(whole[:cut])
    code, _, err = run_qa(capsys, "batch", str(questions), "--index", str(real_index),
                          "-o", str(output), "--resume")  # fmt: skip
    assert code == 0 and "half-written" in err
    if fmt == "jsonl":
        records = [json.loads(line) for line in output.read_text().splitlines()]
    else:
        records = list(csv.DictReader(io.StringIO(output.read_text())))
    assert [r["id"] for r in records] == ["q1", "q2", "q3"]


def test_15_duplicate_ids_are_reported(tmp_path: Path) -> None:
    from qa.batch import read_questions

    path = tmp_path / "q.csv"
    path.write_text("id,question\na,Who?\na,What?\nb,Where?\n")
    questions = read_questions(path)
    assert [q.error for q in questions] == [None, "duplicate id 'a' in the input", None]


@pytest.fixture
def story(corpus: Path, tmp_path: Path) -> Path:
    """An article outside the corpus, to `qa add`."""
    path = tmp_path / "story.txt"
    shutil.copy(corpus / "seed.txt", path)
    return path


def test_16_add_refuses_targets_outside_the_corpus(
    corpus: Path, tmp_path: Path, story: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    for target in ("../outside", str(tmp_path / "abs"), "sub/../../x"):
        code, _, err = run_qa(capsys, "add", str(story), "--to", target,
                              "--corpus", str(corpus), "--index", str(index))  # fmt: skip
        assert code == 2 and "not a folder inside the corpus" in err
    assert not (tmp_path / "outside").exists() and not (tmp_path / "abs").exists()
    assert not (tmp_path / "x").exists()


def test_16_add_checks_the_lock_before_copying(
    corpus: Path, tmp_path: Path, story: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    with write_lock(index):
        code, _, err = run_qa(capsys, "add", str(story), "--corpus", str(corpus),
                              "--index", str(index))  # fmt: skip
    assert code == 1 and "being written" in err
    assert not (corpus / "story.txt").exists()


def test_8_update_of_an_index_with_other_bundled_weights_is_refused(
    corpus: Path, tmp_path: Path
) -> None:
    from qa.encoders import DEFAULT_MODEL

    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    conn = sqlite3.connect(index / STORE_FILE)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'model'", (DEFAULT_MODEL,))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'weights_sha256'", ("c" * 64,))
    conn.commit()
    conn.close()
    factory = Factory()
    with pytest.raises(IndexMismatchError, match=r"cccccccccccc.*qa index build"):
        sync_index(corpus, index, factory)
    assert factory.calls == 0, "found out without loading a model"


@pytest.mark.parametrize("value", ["1e9", "inf", "nan", "-5", "0", "many"])
def test_an_unusable_file_size_limit_is_one_line(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import run_qa

    (tmp_path / "a.txt").write_text("Title\n\nBody text.\n")
    monkeypatch.setenv("QA_MAX_FILE_MB", value)
    code, _, err = run_qa(capsys, "corpus", "check", "--corpus", str(tmp_path))
    assert code == 1 and f"QA_MAX_FILE_MB={value!r}" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("value", ["٢٠٠٣", "２０１６", "2016\n", "2016-01-31\n", " 2016"])
def test_filter_dates_are_ascii_and_whole(value: str) -> None:
    from qa.errors import QAError
    from qa.retrieval import parse_filter_date

    with pytest.raises(QAError, match="must be a date like 2006-01-31"):
        parse_filter_date(value, "--since")
    assert parse_filter_date("2016-01-31", "--since") == "2016-01-31"


def test_a_file_name_that_is_not_utf8_is_skipped_not_fatal(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One Latin-1 file name (from an old system) stopped every article from being indexed
    (UnicodeEncodeError); it is one skipped file with a reason now."""
    import os

    with open(os.fsencode(corpus) + b"/caf\xe9.txt", "wb") as handle:
        handle.write(b"Cafe headline\n\nA body.\n")
    report = sync_index(corpus, tmp_path / "index", Factory(), full=True)
    assert report.added >= 1
    (skipped,) = [item for item in report.skipped if item["path"] == "caf\\xe9.txt"]
    assert skipped["reason"] == "file name is not valid UTF-8 (rename the file to index it)"
    report = sync_index(corpus, tmp_path / "index", Factory())
    assert report.added == report.removed == 0, "an update after it is a no-op"
    code, out, _ = run_qa(capsys, "corpus", "check", "--corpus", str(corpus))
    assert code == 0 and "caf\\xe9.txt: file name is not valid UTF-8" in out


def test_line_separators_inside_jsonl_records_do_not_split_them(tmp_path: Path) -> None:
    """U+2028, U+2029 and U+0085 may stand raw inside JSON strings (qa writes them so, from
    article text); str.splitlines cut such a record in two."""
    import json

    from qa.batch import read_questions, written_ids
    from qa.datasets import load_news_questions

    odd = "Who said\u2028it\u2029and\x85this?"
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "a", "question": odd}, ensure_ascii=False) + "\n"
        + json.dumps({"id": "b", "question": "Plain?"}) + "\r\n",
        encoding="utf-8",
    )  # fmt: skip
    assert [(q.id, q.question, q.error) for q in read_questions(questions)] == [
        ("a", odd, None), ("b", "Plain?", None)
    ]  # fmt: skip
    news = tmp_path / "news.jsonl"
    news.write_text(json.dumps({"question": odd, "answers": ["x\u2028y"]}, ensure_ascii=False))
    (loaded,) = load_news_questions(news)
    assert loaded.question == odd and loaded.answers == ("x\u2028y",)
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        json.dumps(
            {"id": "a", "answers": [{"text": "quote\u2028with a break"}]}, ensure_ascii=False
        )
        + "\n",
        encoding="utf-8",
    )
    assert written_ids(answers, "jsonl") == {"a": False}


def test_a_damaged_conversation_store_is_moved_aside(tmp_path: Path) -> None:
    """A corrupt conversations.sqlite killed `qa tui` before the UI started; it is moved
    aside (kept, not deleted) and a new store takes its place."""
    from qa.answers import Result
    from qa.chat import Turn
    from qa.conversations import ConversationStore

    path = tmp_path / "conversations.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    store = ConversationStore(path)
    assert store.moved_aside is not None and store.moved_aside.read_bytes().startswith(b"this is")
    conversation = store.start("Who?", "index")
    store.add_turn(
        conversation,
        Turn("Who?", "Who?", Result(question="Who?", query="Who?", not_found=True, answers=())),
    )
    store.add_turn(
        conversation,
        Turn("And?", "And?", Result(question="And?", query="And?", not_found=True, answers=())),
    )
    # one stored turn that is not JSON: the others still reopen
    store.conn.execute("UPDATE turns SET result = '{not json' WHERE number = 1")
    store.conn.commit()
    assert [turn.question for turn in store.turns(conversation)] == ["And?"]
    store.close()
    reopened = ConversationStore(path)
    assert reopened.moved_aside is None and len(reopened.recent()) == 1
    reopened.close()


def test_the_settings_file_is_kept_as_the_user_wrote_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A theme change rewrote config.toml wholesale (comments and other keys lost), and an
    invalid file was silently replaced."""
    from qa.tui import settings

    monkeypatch.setenv("QA_CONFIG_DIR", str(tmp_path))
    path = tmp_path / "config.toml"
    path.write_text('# my settings\ntheme = "nord"  # dark\neditor = "vim"\n\n[extra]\nx = 1\n')
    assert settings.read() == ({"theme": "nord"}, None)
    assert settings.save(theme="gruvbox") is None
    assert path.read_text() == (
        '# my settings\ntheme = "gruvbox"  # dark\neditor = "vim"\n\n[extra]\nx = 1\n'
    )
    broken = 'theme = "nord\n# half-edited\n'
    path.write_text(broken)
    values, problem = settings.read()
    assert values == {} and problem is not None and "not valid TOML" in problem
    assert settings.save(theme="gruvbox") == problem
    assert path.read_text() == broken, "an unreadable file is never replaced"
    path.unlink()
    assert settings.save(theme="nord") is None and settings.read() == ({"theme": "nord"}, None)


def test_a_yaml_alias_bomb_in_front_matter_is_one_skipped_file(corpus: Path) -> None:
    """Nine levels of nine aliases (1 KB) took 73 s and 2.8 GB in `qa corpus check`."""
    import time

    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, 9):
        prev, name = chr(ord("a") + n - 1), chr(ord("a") + n)
        levels.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    (corpus / "bomb.md").write_text("---\n" + "\n".join(levels) + "\ntitle: Boom\n---\n\nBody.\n")
    (corpus / "anchors.md").write_text(
        "---\nbase: &who Jane Doe\nauthor: *who\ntitle: Fine\n---\n\nA body.\n"
    )
    started = time.monotonic()
    result = load_corpus(corpus)
    assert time.monotonic() - started < 10
    assert problems_of(result)["bomb.md"].startswith("malformed YAML front matter")
    assert "aliases" in problems_of(result)["bomb.md"]
    assert "anchors.md" in {a.path for a in result.articles}, "a few aliases are fine"


def test_previews_are_cut_at_a_sentence_or_a_word() -> None:
    """Related passages were cut mid-word ("gaining t...")."""
    from qa.text import excerpt

    text = "The index rose sharply on Monday. Traders said gains were broad, gaining ten points."
    assert excerpt(text, 200) == text
    assert excerpt(text, 60) == "The index rose sharply on Monday. …"
    words_only = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda"
    cut = excerpt(words_only, 30)
    assert cut.endswith("…") and cut[:-1] in words_only and words_only[len(cut) - 1] == " "
    assert len(cut) <= 31


def test_a_linked_folder_in_the_corpus_is_reported(corpus: Path, tmp_path: Path) -> None:
    """Symlinked folders were neither followed nor reported."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(corpus / "seed.txt", outside / "story.txt")
    (corpus / "linked").symlink_to(outside, target_is_directory=True)
    result = load_corpus(corpus)
    assert problems_of(result)["linked/"].startswith("symbolic link to a folder: not followed")
    assert not any(a.path.startswith("linked/") for a in result.articles)
    report = sync_index(corpus, tmp_path / "index", Factory(), full=True)
    assert any(item["path"] == "linked/" for item in report.skipped)


def test_a_huge_csv_cell_is_one_line(tmp_path: Path) -> None:
    """A 208 KB cell in a CSV question file was a _csv.Error traceback."""
    from qa.batch import read_questions
    from qa.errors import InputError

    questions = tmp_path / "q.csv"
    questions.write_text("id,question\nq1,Who?\nq2," + "x" * 208_000 + "\n")
    with pytest.raises(InputError, match=r"q.csv:3: not a usable CSV row \(field larger"):
        read_questions(questions)


def test_a_squad_answer_outside_its_context_is_named(tmp_path: Path) -> None:
    """`qa eval` with an answer_start past the context was an IndexError."""
    import json

    from qa.datasets import load_squad
    from qa.errors import InputError

    data = {"version": "v1.1", "data": [{"title": "T", "paragraphs": [{
        "context": "Short context.",
        "qas": [{"id": "x1", "question": "What?", "answers": [{"text": "context",
                                                               "answer_start": 500}]}],
    }]}]}  # fmt: skip
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="question x1: answer_start 500 lies outside its context"):
        load_squad(path)


def test_qa_add_refuses_pipes_and_devices_and_never_hangs_on_them(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Adding a FIFO or /dev/zero said "0 added" with exit 0; adding a file whose name the
    corpus holds as a FIFO hung for good (and onto a link to /dev/zero read without end)."""
    index = tmp_path / "index"
    where = ("--corpus", str(corpus), "--index", str(index))
    pipe = tmp_path / "pipe.txt"
    os.mkfifo(pipe)
    code, _, err = run_qa(capsys, "add", str(pipe), *where)
    assert code == 1 and "pipe.txt: named pipe, not an article file" in err
    code, _, err = run_qa(capsys, "add", "/dev/zero", *where)
    assert code == 1 and "/dev/zero: device, not an article file" in err

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    shutil.copy(corpus / "seed.txt", incoming / "same.txt")
    shutil.copy(corpus / "seed.txt", incoming / "zero.txt")
    os.mkfifo(corpus / "same.txt")
    (corpus / "zero.txt").symlink_to("/dev/zero")
    for name in ("same.txt", "zero.txt"):
        code, _, err = in_time(
            lambda name=name: run_qa(capsys, "add", str(incoming / name), *where)
        )  # type: ignore[misc]
        assert code == 1 and "exists and cannot be compared" in err, name


def test_control_characters_in_paths_stay_inert_in_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file name reached the terminal raw in `qa: error:` lines (a newline forged a line,
    an escape sequence acted)."""
    evil = tmp_path / "q\x1b]52;c;cHduZWQ=\x07\nqa: all good.jsonl"
    evil.write_text('{"question": "Who?", "answers": ["A"]}\n')
    code, _, err = run_qa(capsys, "eval", str(evil), "--index", str(tmp_path / "ix"))
    assert code == 1 and "qa: error:" in err and "needs --index DIR" in err
    assert "\x1b" not in err and "\x07" not in err
    assert not any(line.startswith("qa: all good") for line in err.splitlines())


def _full_disk(*_: object, **__: object) -> None:
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_28_a_full_disk_is_named_and_not_called_damage(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import qa.index.build
    from qa.errors import StorageError

    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    (corpus / "new.txt").write_text("A new story\n\nThe harbour reopened on Tuesday.\n")

    def full_store(*_: object, **__: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    # before the commit: nothing changes, and it is not "damaged ... rebuild it"
    with monkeypatch.context() as patch:
        patch.setattr(qa.index.build, "_write", full_store)
        with pytest.raises(StorageError, match="the disk is full; nothing was changed") as info:
            sync_index(corpus, index, Factory())
        assert "damaged" not in str(info.value) and "qa index build" not in str(info.value)
    with IndexReader(index) as reader:
        assert reader.check() == "ok" and reader.status()["articles"] == 7
    # after the commit: the vector file cannot be written; said so, no partial file left
    with monkeypatch.context() as patch:
        patch.setattr("qa.index.schema.os.fsync", _full_disk)
        with pytest.raises(StorageError, match=r"the update was committed .* disk is full"):
            sync_index(corpus, index, Factory())
    assert not list(index.glob(".*.tmp"))
    assert sync_index(corpus, index, Factory()).article_count == 8  # the vectors catch up


def test_28_a_read_only_index_answers_and_refuses_writes_in_one_line(
    capsys: pytest.CaptureFixture[str],
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno

    from tests.conftest import run_qa

    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    opened = Path.open

    def read_only(path: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        if path.parent == index and any(flag in mode for flag in "wax+"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return opened(path, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", read_only)
    code, _, err = run_qa(capsys, "index", "update", "--index", str(index), "--corpus", str(corpus))
    assert code == 1 and err.count("\n") == 1
    assert "the file system is read-only" in err and "Questions still work" in err
    monkeypatch.undo()


def test_28_a_full_disk_in_batch_and_add_is_one_line_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str],
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import qa.batch
    from tests.conftest import run_qa

    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    questions = tmp_path / "q.txt"
    questions.write_text("Who led the purge?\nWhat did Time Warner earn?\n")
    out = tmp_path / "out.jsonl"
    write = qa.batch.Writer.write
    calls = []

    def fill_up(self: object, record: dict) -> None:
        calls.append(record)
        if len(calls) > 1:
            _full_disk()
        write(self, record)  # type: ignore[arg-type]

    monkeypatch.setattr(qa.batch.Writer, "write", fill_up)
    engine = SimpleNamespace(ask=lambda q, **_: _not_found(q), close=lambda: None)
    monkeypatch.setattr("qa.engine.Engine.open", lambda *_, **__: engine)
    code, _, err = run_qa(
        capsys, "batch", str(questions), "--index", str(index), "-o", str(out), "-q"
    )
    assert code == 1 and err.strip().count("\n") == 0, err
    assert f"{out}: cannot write: the disk is full; 1 record(s) are in it" in err
    assert "--resume" in err and not list(tmp_path.glob(".*.tmp"))
    monkeypatch.undo()
    story = tmp_path / "story.txt"
    story.write_text("Harbour reopens\n\nThe harbour reopened on Tuesday.\n")
    monkeypatch.setattr("qa.adding.shutil.copyfile", _full_disk)
    code, _, err = run_qa(
        capsys, "add", str(story), "--corpus", str(corpus), "--index", str(index), "-q"
    )
    assert code == 1 and "cannot write: the disk is full" in err and "Traceback" not in err
    assert not list(corpus.glob(".*.tmp")) and not (corpus / "story.txt").exists()


def _not_found(question: str) -> object:
    from qa.answers import Result

    return Result(question=question, query=question, not_found=True, answers=())


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("dimension", "-5", "dimension '-5' is not a vector size"),
        ("chunks", "abc", "chunks 'abc' is not a count"),
        ("chunking", "{not json", "chunking '{not json' is not chunk settings"),
        ("chunking", '{"max_tokens": "big"}', "is not chunk settings"),
    ],
)
def test_28_every_stored_setting_is_checked_when_an_index_opens(
    corpus: Path, tmp_path: Path, key: str, value: str, named: str
) -> None:
    from qa.errors import IndexCorruptError

    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    with sqlite3.connect(index / STORE_FILE) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
    with pytest.raises(IndexCorruptError, match="run qa index build") as info:
        IndexReader(index)
    assert named in str(info.value)
    with pytest.raises(IndexCorruptError, match=named.split(" '")[0]):
        sync_index(corpus, index, Factory())  # an update needs the settings
    report = sync_index(corpus, index, Factory(), full=True)  # a build starts afresh
    assert report.article_count == 7
    with IndexReader(index) as reader:
        assert reader.status()["chunks"] > 0


def test_28_a_folder_in_place_of_the_store_is_named_and_kept(corpus: Path, tmp_path: Path) -> None:
    from qa.errors import IndexCorruptError

    index = tmp_path / "index"
    (index / STORE_FILE).mkdir(parents=True)
    (index / STORE_FILE / "notes.txt").write_text("mine")
    for attempt in (
        lambda: IndexReader(index),
        lambda: sync_index(corpus, index, Factory(), full=True),
    ):
        with pytest.raises(IndexCorruptError, match="is a folder, not the index's store"):
            attempt()
    assert (index / STORE_FILE / "notes.txt").read_text() == "mine"


def test_28_csv_citations_keep_every_quote_exact_for_verify(tmp_path: Path) -> None:
    """Escape on display, not in the data: ESC, NEL, U+2028 and a tab in a quote come back
    from the CSV's citations cell exactly, and nothing raw reaches a spreadsheet."""
    import copy
    import json

    from qa.verify import read_citations

    quote = "red \x1b[31malert\x1b[0m\x85 next\u2028line\ttab"
    record: dict[str, Any] = copy.deepcopy(RECORD)
    record["answers"][0]["citations"][0]["quote"] = quote
    handle = io.StringIO()
    Writer(handle, "csv", header=True).write(record)
    path = tmp_path / "answers.csv"
    path.write_text(handle.getvalue(), encoding="utf-8")
    (cited,) = read_citations(path)
    assert cited.quote == quote
    cell = next(csv.DictReader(io.StringIO(handle.getvalue())))["citations"]
    assert cell.isascii() and "\x1b" not in cell and "\t" not in cell
    assert json.loads(cell)[0]["quote"] == quote
    broken = tmp_path / "broken.csv"
    broken.write_text('id,citations\nq1,"[{not json"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.csv:2: the citations cell is not JSON"):
        read_citations(broken)


@pytest.mark.parametrize("where", ["header", "id map"])
def test_28_a_damaged_vector_file_is_seen_and_rebuilt_from_the_store(
    corpus: Path, tmp_path: Path, where: str
) -> None:
    import numpy as np

    from qa.index import FAISS_FILE

    index = tmp_path / "index"
    sync_index(corpus, index, Factory(), full=True)
    with IndexReader(index) as reader:
        query = np.linspace(-1, 1, reader.faiss.d, dtype=np.float32).reshape(1, -1)
        before = reader.faiss.search(query, 3)[1].tolist()
        assert not reader.faiss_rebuilt and reader.check() == "ok"
    path = index / FAISS_FILE
    data = bytearray(path.read_bytes())
    at = 40 if where == "header" else len(data) - 12  # the id map is at the end
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with IndexReader(index) as reader:
        assert "is not the file written" in reader.check()  # qa index status says so
        after = reader.faiss.search(query, 3)[1].tolist()
        assert reader.faiss_rebuilt  # not loaded as it is: rebuilt from the stored vectors
    assert after == before
    with IndexReader(index) as reader:  # the repair was saved
        assert reader.check() == "ok"
        assert reader.faiss.ntotal > 0 and not reader.faiss_rebuilt
