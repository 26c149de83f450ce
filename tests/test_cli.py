"""The command-line skeleton: help, `qa corpus check`, one-line errors, a light import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_qa


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_qa(capsys, "--help")
    assert code == 0
    assert "corpus" in out and "--index" in out and "--corpus" in out


def test_corpus_check_bbc_json(capsys: pytest.CaptureFixture[str], bbc: Path) -> None:
    code, out, _ = run_qa(capsys, "corpus", "check", "--corpus", str(bbc), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["files"] == 2225
    assert report["articles"] == 2225
    assert report["unique"] == 2127
    assert report["duplicates"] == 98
    assert [p["path"] for p in report["problems"]] == ["sport/199.txt"]
    assert "invalid UTF-8" in report["problems"][0]["reason"]


def test_corpus_option_from_environment(
    capsys: pytest.CaptureFixture[str], seed_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_CORPUS", str(seed_corpus))
    code, out, _ = run_qa(capsys, "corpus", "check", "--json")
    assert code == 0
    assert json.loads(out)["articles"] == 1


def test_corpus_option_on_the_root_command(
    capsys: pytest.CaptureFixture[str], seed_corpus: Path
) -> None:
    code, out, _ = run_qa(capsys, "--corpus", str(seed_corpus), "corpus", "check")
    assert code == 0
    assert "articles    1" in out


def test_missing_corpus_is_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_qa(capsys, "corpus", "check", "--corpus", str(tmp_path / "nope"))
    assert code == 1
    assert out == ""
    assert err.strip().count("\n") == 0
    assert err.startswith("qa: error: ") and "no such corpus folder" in err


def test_bundled_corpus_loads_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_qa(capsys, "corpus", "check", "--corpus", str(REPO / "corpus"), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["articles"] == 4785
    assert report["problems"] == []


def test_import_qa_loads_no_heavy_library() -> None:
    code = (
        "import sys, qa, qa.cli, qa.articles, qa.errors\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'faiss', 'textual', 'transformers')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=dict(os.environ))


def test_console_script_help_is_fast_and_light() -> None:
    code = (
        "import sys\n"
        "from qa.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'faiss' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)


def test_python_m_qa_cli_is_the_qa_command() -> None:
    """The benchmark scripts run `python -m qa.cli ...` with their own interpreter."""
    from qa import __version__

    out = subprocess.run(
        [sys.executable, "-m", "qa.cli", "--version"], check=True, capture_output=True, text=True
    )
    assert __version__ in out.stdout


def test_version_short_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from qa import __version__

    code, out, _ = run_qa(capsys, "-V")
    assert code == 0 and __version__ in out


def test_add_says_web_addresses_are_not_fetched(
    capsys: pytest.CaptureFixture[str], seed_corpus: Path, tmp_path: Path
) -> None:
    code, _, err = run_qa(capsys, "add", "https://example.com/story.html", "--corpus",
                          str(seed_corpus), "--index", str(tmp_path / "index"), "-q")  # fmt: skip
    assert code == 1 and "web addresses are not fetched" in err
    assert "no such file" not in err


def test_text_output_wraps_at_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from qa.cli.asking import _wrap

    monkeypatch.setattr("shutil.get_terminal_size", lambda *_: os.terminal_size((41, 24)))
    text = "1. " + " ".join(["extraordinarily"] * 12) + " [1]"
    wrapped = _wrap(text).split("\n")
    assert len(wrapped) > 1 and all(len(line) <= 40 for line in wrapped)
    assert all(word == "extraordinarily" for line in wrapped for word in line.split()[1:-1])
    assert all(line.startswith("   ") for line in wrapped[1:])  # under the answer, not the number


def test_a_moved_project_keeps_its_own_corpus(tmp_path: Path, bbc: Path) -> None:
    import shutil

    from qa.cli.options import _stored_corpus
    from qa.index import sync_index
    from tests.fakes import Factory

    project = tmp_path / "project"
    (project / "corpus").mkdir(parents=True)
    shutil.copy(bbc / "tech" / "001.txt", project / "corpus" / "a.txt")
    sync_index(project / "corpus", project / "index", Factory(), full=True)
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    # the copy's index points at the copy's corpus, not at the original's
    assert _stored_corpus(copy / "index") == (copy / "corpus").resolve()
    # an index kept apart from its corpus records the absolute path
    elsewhere = tmp_path / "a" / "b" / "index"
    sync_index(project / "corpus", elsewhere, Factory(), full=True)
    assert _stored_corpus(elsewhere) == (project / "corpus").resolve()


def test_corpus_show_prints_what_was_extracted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    story = tmp_path / "story.md"
    story.write_text("---\ntitle: Port strike ends\ndate: 2021-03-04\n---\nFirst.\n\n- Second\n")
    code, out, _ = run_qa(capsys, "corpus", "show", str(story))
    assert code == 0
    assert "title       Port strike ends" in out and "date        2021-03-04" in out
    assert "[1] First." in out and "[2] Second" in out


def test_add_quiet_prints_nothing_but_failures(
    capsys: pytest.CaptureFixture[str],
    seed_corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.fakes import Factory

    monkeypatch.setattr("qa.encoders.encoder_factory", lambda *_: Factory())
    story = tmp_path / "story.txt"
    story.write_text("A headline\n\nA body of the new story.\n")
    code, out, err = run_qa(capsys, "add", str(story), "--corpus", str(seed_corpus),
                            "--index", str(tmp_path / "index"), "-q")  # fmt: skip
    assert code == 0 and out == "" and err == ""
    assert (seed_corpus / "story.txt").exists()


def test_verify_with_a_missing_corpus_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """It said "43 citation(s): 0 verified, 0 changed, 43 missing": a reader concludes the
    answers were invented."""
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"id": "q1", "answers": []}\n')
    code, out, err = run_qa(capsys, "verify", str(answers), "--corpus", str(tmp_path / "gone"))
    assert code == 1 and out == ""
    assert f"{tmp_path / 'gone'}: no such corpus folder" in err


def test_a_missing_index_names_its_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said "no index in index" for the default folder."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_qa(capsys, "ask", "Who?", "--index", "index")
    assert code == 1 and "index/: no index in this folder yet" in err
    assert "qa index build --corpus DIR --index index" in err
