"""The command line as a shell user meets it: `--version`, and a reader that goes away."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from connectors.base import Event
from monitor.config.loading import Config
from monitor.store.accounts import AccountDirectory
from monitor.store.engine import open_engine
from monitor.store.ingest import Ingestor

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def replywatch(*args: str) -> list[str]:
    """The command line as installed, run by this interpreter."""
    return [sys.executable, "-m", "monitor.cli", *args]


def test_version() -> None:
    """`replywatch --version` prints the installed version and exits 0."""
    done = subprocess.run(replywatch("--version"), capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.startswith("replywatch ") and done.stdout.split()[1][0].isdigit()


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`replywatch stats | head -c 10`: the reader leaves early; no traceback, exit 141."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_engine(url)
    Ingestor(engine, AccountDirectory(Config.empty())).ingest(
        [Event("facebook", f"page-{n}", "dm", "t", f"m{n}", "customer", AT) for n in range(50)],
        seen_at=AT,
    )
    engine.dispose()
    command = replywatch("--database", url, "stats", "--as-of", AT.isoformat(), "--format", "json")
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stderr is not None
        # The reader is gone before the command has started: its first write meets a closed pipe.
        child.stdout.close()
        errors = child.stderr.read().decode()
        code = child.wait()
    assert errors == ""
    assert code == 141
