"""The linter sees every module of the package (a pattern like "index" in ruff's
extend-exclude once hid all of qa/index/)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO


def test_ruff_checks_every_module_of_the_package() -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    listed = subprocess.run(
        [ruff, "check", "--show-files", "qa"], cwd=REPO, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    seen = {line.strip() for line in listed.splitlines()}
    modules = {str(path) for path in (REPO / "qa").rglob("*.py")}
    missed = sorted(path for path in modules if path not in seen)
    assert not missed, f"ruff skips {missed[:5]}"
