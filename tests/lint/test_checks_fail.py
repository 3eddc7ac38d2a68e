"""The checks of `make lint` catch what they are there for: an import against the layers
(import-linter, docs/architecture.md) and untyped or mistyped code (mypy --strict).

Each check runs on a copy of the package with one deliberate fault, and on the same copy
without it, so the test fails both if the check stops catching the fault and if the
unchanged tree stops passing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed: run `make install` (it is a dev dependency)")
    return str(path)


def _copy_tree(tmp_path: Path) -> Path:
    """patrons/ and pyproject.toml, nothing else: the checks read only these."""
    shutil.copytree(
        ROOT / "patrons", tmp_path / "patrons",
        ignore=shutil.ignore_patterns("__pycache__", "static", "translations"),
    )  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_layer_check_refuses_an_import_that_points_up(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    lint_imports = [_tool("lint-imports"), "--no-cache"]
    clean = _run(lint_imports, tree)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    clock = tree / "patrons" / "core" / "clock.py"  # the core may import no feature
    clock.write_text(clock.read_text() + "\nfrom patrons.voting import service  # noqa\n")
    broken = _run(lint_imports, tree)
    assert broken.returncode != 0
    assert "patrons.core.clock -> patrons.voting.service" in broken.stdout


def test_mypy_strict_refuses_an_untyped_function_and_a_wrong_type(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    probe = tree / "patrons" / "core" / "probe.py"
    mypy = [_tool("mypy"), "--no-incremental", "--config-file", "pyproject.toml", str(probe)]
    probe.write_text('def label(count: int) -> str:\n    return f"{count} patrons"\n')
    clean = _run(mypy, tree)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    probe.write_text('def label(count):\n    return count\n\n\ntotal: int = "three"\n')
    broken = _run(mypy, tree)
    assert broken.returncode != 0
    assert "[no-untyped-def]" in broken.stdout  # strict: every function is typed
    assert "[assignment]" in broken.stdout
