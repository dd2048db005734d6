"""Every TOML example in the README loads as a config (so the docs cannot drift from the code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.config.loading import load_config

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_readme_has_config_examples() -> None:
    """The examples exist (a renamed fence would silently skip the test below)."""
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.split("\n", 1)[0][:40])
def test_each_example_loads(tmp_path: Path, block: str) -> None:
    """The example is a valid config on its own."""
    path = tmp_path / "replywatch.toml"
    path.write_text(block, encoding="utf-8")
    config = load_config(path)
    assert config.path == path


def test_the_example_config_has_every_platform_and_loads() -> None:
    """examples/replywatch.toml configures one account of every platform replywatch knows."""
    from connectors import PLATFORMS

    example = Path(__file__).resolve().parents[1] / "examples" / "replywatch.toml"
    config = load_config(example)
    platforms = {account.platform for account in config.accounts.values()}
    assert set(PLATFORMS) <= platforms, set(PLATFORMS) - platforms


def test_every_connector_has_a_user_guide() -> None:
    """Each polled platform says which token it needs and how to get it."""
    from connectors import CONNECTORS

    docs = Path(__file__).resolve().parents[1] / "connectors" / "docs"
    readme = README.read_text(encoding="utf-8")
    for platform in CONNECTORS:
        if platform in ("facebook", "instagram"):
            assert "pages_messaging" in readme  # the Meta section of the README
            continue
        guide = docs / f"{platform}.md"
        assert guide.is_file(), f"connectors/docs/{platform}.md is missing"
        assert "secrets" in guide.read_text(encoding="utf-8")
