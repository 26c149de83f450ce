"""Shared fixtures: paths to the real data beside the checkout, and small corpora."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# A cache of our own: the ONNX backends export the model into it once per test session (the
# export itself is under test) and nothing lands in the user's ~/.cache.
CACHE = tempfile.mkdtemp(prefix="qa-test-cache-")
os.environ["XDG_CACHE_HOME"] = CACHE


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(CACHE, ignore_errors=True)  # the exported models: about 115 MB


REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
SEED = SHARED_DATA / "seed" / "000_f07d20ca1d68e923.txt"
BBC = SHARED_DATA / "bbc"
SQUAD_V1 = SHARED_DATA / "squad" / "dev-v1.1.json.zip"
SQUAD_V2 = SHARED_DATA / "squad" / "dev-v2.0.json.zip"
BUNDLED_SEED = REPO / "corpus" / "chosun" / "2016-11-01-nk-purges-military-officers.txt"


@pytest.fixture(autouse=True)
def _private_history(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Conversations that `qa ask` and the chat keep go to the test run's folder, never to
    the user's own history (a test that needs its own sets QA_DATA_DIR itself)."""
    monkeypatch.setenv("QA_DATA_DIR", str(tmp_path_factory.getbasetemp() / "qa-data"))


@pytest.fixture(scope="session")
def bbc() -> Path:
    if not BBC.is_dir():
        pytest.fail(f"{BBC} is missing: tests need ../shared/data beside the checkout")
    return BBC


@pytest.fixture
def seed_corpus(tmp_path: Path) -> Path:
    """A corpus folder holding only the seed article."""
    root = tmp_path / "corpus"
    (root / "chosun").mkdir(parents=True)
    (root / "chosun" / "seed.txt").write_bytes(BUNDLED_SEED.read_bytes())
    return root


def run_qa(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the `qa` command line in process: (exit code, stdout, stderr)."""
    from qa.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err
