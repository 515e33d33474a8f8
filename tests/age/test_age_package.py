"""The age package: public API, docstrings, doctests, and purity (no other qinglang packages)."""

from __future__ import annotations

import ast
import doctest
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import qinglang.age
from qinglang.age import ages, bands, regions, ric, sources

MODULES = [ric, regions, ages, bands, sources]
PACKAGE_DIR = Path(qinglang.age.__file__).parent


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_doctests_pass(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


def test_public_api_is_exported_and_documented() -> None:
    for name in qinglang.age.__all__:
        obj = getattr(qinglang.age, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name
        if inspect.isfunction(obj):
            hints = obj.__annotations__
            assert "return" in hints, name


def test_only_imports_itself_stdlib_and_stdnum() -> None:
    for path in PACKAGE_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top == "qinglang":
                    assert name.startswith("qinglang.age"), (path.name, name)
                else:
                    assert top in sys.stdlib_module_names or top == "stdnum", (path.name, name)


def test_importing_pulls_in_no_io_frameworks() -> None:
    src = PACKAGE_DIR.parents[1]
    code = (
        f"import sys; sys.path.insert(0, {str(src)!r}); import qinglang.age; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy', 'fastapi', 'httpx', 'requests', 'psycopg', 'pydantic'} "
        "or (m.startswith('qinglang.') and not m.startswith('qinglang.age'))); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
