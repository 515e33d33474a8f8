"""The codebase stays ruff- and mypy-clean: part of the test suite, so CI checks it too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: install the test extras (pip install -e '.[test]')")
    return found


def test_ruff_lint_and_format() -> None:
    ruff = _tool("ruff")
    for args in (
        ["check", "src", "tests", "bench"],
        ["format", "--check", "src", "tests", "bench"],
    ):
        r = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict() -> None:
    r = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
