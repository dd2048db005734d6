"""One running monitor per store: a second ``replywatch run`` refuses to start.

SQLite stores are guarded by an exclusive ``flock`` on a file beside the database, PostgreSQL
stores by a session advisory lock. Both vanish with the process, so a crashed monitor never
leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, text

__all__ = ["InstanceLock", "InstanceLockError"]

# Any constant works; this one spells "rwatch" so it is recognisable in pg_locks.
_ADVISORY_KEY = 0x727761746368


class InstanceLockError(Exception):
    """Another monitor already runs on this store."""


class InstanceLock:
    """Held for as long as this process monitors the store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._file: IO[str] | None = None
        self._connection: Connection | None = None

    def acquire(self) -> None:
        """Take the lock or raise InstanceLockError naming the store."""
        if self.engine.dialect.name == "sqlite":
            self._lock_file()
        else:
            self._lock_advisory()

    def _lock_file(self) -> None:
        database = self.engine.url.database or ""
        if not database or database == ":memory:":
            return
        path = Path(database + ".lock")
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise InstanceLockError(
                f"another replywatch ({owner}) is already running on {database}; "
                "stop it first, or point this one at another --database"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._file = handle

    def _lock_advisory(self) -> None:
        connection = self.engine.connect()
        got: Any = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": _ADVISORY_KEY}
        ).scalar_one()
        connection.commit()
        if not got:
            connection.close()
            raise InstanceLockError(
                "another replywatch is already running on this PostgreSQL database; "
                "stop it first, or point this one at another --database"
            )
        self._connection = connection

    def release(self) -> None:
        """Give the lock back (also happens when the process dies)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
