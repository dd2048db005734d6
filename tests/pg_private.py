"""A private PostgreSQL server for tests that stop, crash and restart it.

The machine's shared PostgreSQL (127.0.0.1:5432) serves the other tests and CI, so a test that
takes a server down gets its own: a fresh cluster in a temporary folder, on a free port of
the loopback interface. initdb refuses to run as root, so as root the server runs as the
``postgres`` OS user. ``fsync`` is off for speed: a stopped or killed server loses nothing
with it (commits still reach the operating system), only a crash of the machine would.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.stack import free_port

__all__ = ["PrivatePostgres", "private_postgres"]

_HINT = "apt-get install postgresql"


def _binaries() -> Path | None:
    """The newest installed server's bin folder (initdb, pg_ctl, postgres)."""
    found = [
        path.parent
        for path in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")
        if (path.parent / "initdb").exists()
    ]
    return max(found, key=lambda path: int(path.parent.name), default=None)


class PrivatePostgres:
    """One throw-away cluster: start, stop (in any shutdown mode), start again, remove."""

    def __init__(self, bin_folder: Path, folder: Path, as_user: list[str]) -> None:
        self.bin = bin_folder
        self.folder = folder
        self.data = folder / "data"
        self.sockets = folder / "sockets"
        self.log = folder / "server.log"
        self.port = free_port()
        self._as_user = as_user

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self._as_user, *command], capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command[:2])} failed ({done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}\n{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def init(self) -> None:
        """Create the cluster (trust authentication: loopback and a private socket only)."""
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "-U",
            "postgres",
            "--no-sync",
            "--no-instructions",
        )

    def start(self) -> None:
        """Start the server and return once it accepts connections (``pg_ctl -w`` waits)."""
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.sockets} -c fsync=off"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "start",
            "-w",
            "-t",
            "30",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` rolls back and disconnects, ``immediate`` is a crash."""
        pg_ctl = str(self.bin / "pg_ctl")
        self._run(pg_ctl, "stop", "-w", "-t", "30", "-D", str(self.data), "-m", mode)

    def running(self) -> bool:
        """Whether the server's postmaster is up."""
        done = subprocess.run(
            [*self._as_user, str(self.bin / "pg_ctl"), "status", "-D", str(self.data)],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) for a database of this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


def _as_postgres_user(folder: Path) -> list[str]:
    """The command prefix that runs the server's tools as a user initdb accepts."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip(f"no postgres OS user to run a private PostgreSQL as: {_HINT}")
    if runuser is None:
        pytest.skip("runuser is missing: cannot run a private PostgreSQL as the postgres user")
    for path in (folder, folder / "sockets"):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return [runuser, "-u", "postgres", "--"]


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running private PostgreSQL server, stopped and deleted afterwards (or a skip)."""
    bin_folder = _binaries()
    if bin_folder is None:
        pytest.skip(f"PostgreSQL server binaries missing in /usr/lib/postgresql: {_HINT}")
    # Not under pytest's tmp_path: its parents are private to root, the server user must
    # reach its folder.
    folder = Path(tempfile.mkdtemp(prefix="replywatch-pg-"))
    try:
        (folder / "sockets").mkdir()
        server = PrivatePostgres(bin_folder, folder, _as_postgres_user(folder))
        server.init()
        server.start()
        try:
            yield server
        finally:
            if server.running():
                server.stop("immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
