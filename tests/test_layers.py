"""monitor/'s layers import downwards only: the import-linter contracts hold, and they bite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def linter() -> Path:
    if not LINT_IMPORTS.exists():
        pytest.skip("lint-imports is not installed: pip install -e '.[dev]'")
    return LINT_IMPORTS


def test_the_layer_contracts_hold(linter: Path) -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def _copy_tree(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    for package in ("monitor", "connectors"):
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return copy


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        # A pure rule reaching for the database.
        ("monitor/core/_leak.py", "from monitor.store import engine\n", "monitor.core"),
        # The store depending on polling policy (what ingest.py once did).
        ("monitor/store/_leak.py", "from monitor.polling import coordinator\n", "monitor.store"),
        # Siblings on one floor stay apart.
        ("monitor/polling/_leak.py", "from monitor.notify import outbox\n", "monitor.polling"),
        # The pure core importing an HTTP client.
        ("monitor/core/_http.py", "import aiohttp\n", "aiohttp"),
        # A connector reaching into monitor/.
        ("connectors/_leak.py", "from monitor.core import waits\n", "monitor"),
    ],
)
def test_an_upward_import_breaks_a_contract(
    linter: Path, tmp_path: Path, module: str, source: str, broken: str
) -> None:
    copy = _copy_tree(tmp_path)
    (copy / module).write_text(f'"""A deliberate violation."""\n\n{source}')
    result = _lint(copy)
    assert result.returncode != 0, result.stdout
    assert " BROKEN" in result.stdout
    assert broken in result.stdout.split("Broken contracts", 1)[1]
