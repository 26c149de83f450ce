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
    assert report["articles"] == 5023
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
