"""The built wheel is what a user installs: it must hold the trained reader, the fitted
weights and the model card, and answer a question on its own (not from this checkout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import BUNDLED_SEED, REPO

ASK = """
import json, sys
from pathlib import Path
import qa
from qa.index import sync_index
from qa.encoders import encoder_factory
installed = Path(qa.__file__).resolve().parent
assert installed.is_relative_to(Path(sys.argv[1]).resolve()), installed
sync_index(Path(sys.argv[2]), Path(sys.argv[3]), encoder_factory(None), full=True)
with qa.open(Path(sys.argv[3])) as index:
    result = index.ask("How many military officers were purged?", abstain=False)
print(json.dumps({"quote": result.answers[0].text, "path": result.answers[0].citations[0].path}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # from a copy of what a clean clone holds: setuptools keeps a build/ folder in the source
    # tree, whose stale files would land in the wheel
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    tracked = subprocess.run(
        ["git", "ls-files", "qa"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(out), str(source)],
        check=True,
    )  # fmt: skip
    (built,) = out.glob("qa-*.whl")
    return built


def test_the_wheel_holds_the_reader_and_the_weights(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "qa/weights.json",
        "qa/models/reader/reader-int8.onnx",
        "qa/models/reader/reader.json",
        "qa/models/reader/MODEL_CARD.md",
        "qa/models/verifier/verifier-int8.onnx",
        "qa/models/verifier/verifier.json",
        "qa/models/verifier/MODEL_CARD.md",
        "qa/page/index.html",
        "qa/page/app.js",
        "qa/page/style.css",
        "qa/index/__init__.py",
        "qa/cli/__init__.py",
    ):
        assert name in names, f"{name} is not in {wheel.name}"
    assert not any(name.startswith(("tests/", "scripts/", "corpus/")) for name in names)


@pytest.mark.model
def test_the_installed_wheel_answers_a_question(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target",
         str(target), str(wheel)],
        check=True,
    )  # fmt: skip
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed.txt").write_bytes(BUNDLED_SEED.read_bytes())
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", ASK, str(target), str(corpus), str(tmp_path / "index")],
        cwd=tmp_path,  # not the checkout: qa must come from the wheel
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    answer = out.stdout.strip().splitlines()[-1]
    assert '"path": "seed.txt"' in answer
    assert "officers" in answer
