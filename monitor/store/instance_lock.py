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
from sqlalchemy.exc import DBAPIError

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
        self._advisory = False

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
        self._advisory = True

    def verify(self) -> None:
        """Take the lock again if PostgreSQL lost the session holding it (a restart).

        Raises InstanceLockError when another monitor took it meanwhile, and the database's
        own error while the server is still away (try again later).
        """
        if not self._advisory:
            return
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                self._connection.commit()
                return
            except DBAPIError:
                # The session is gone, and the lock with it.
                self._connection.invalidate()
                self._connection.close()
                self._connection = None
        self._lock_advisory()

    def release(self) -> None:
        """Give the lock back (also happens when the process dies)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._advisory = False
