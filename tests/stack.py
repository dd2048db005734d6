"""Helpers for tests that run the real stack: replywatch, Prometheus, Alertmanager processes."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus missing: apt-get install prometheus (scripts/services)"
)
needs_alertmanager = pytest.mark.skipif(
    ALERTMANAGER is None,
    reason="alertmanager missing: apt-get install prometheus-alertmanager (scripts/services)",
)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def shortened_rules(target: Path) -> list[str]:
    """The shipped rule files with every ``for:`` cut to 1s (evaluation runs every second)."""
    paths = []
    for source in sorted((ROOT / "alerts" / "rules").glob("*.yaml")):
        text = re.sub(r"^(\s+for:) .+$", r"\1 1s", source.read_text(), flags=re.MULTILINE)
        path = target / source.name
        path.write_text(text)
        paths.append(str(path))
    return paths


async def start(*command: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """Start a process whose stderr is kept for the end of the test."""
    return await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env
    )


async def stop(process: asyncio.subprocess.Process) -> bytes:
    """SIGTERM (SIGKILL after 30 s) and return what it wrote to stderr."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        _out, err = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        _out, err = await process.communicate()
    return err or b""
