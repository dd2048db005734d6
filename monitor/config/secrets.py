"""Secret references: the config holds ``env:NAME`` or ``file:PATH``, never a secret itself."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["LiveSecrets", "SecretError", "is_reference", "resolve_secret"]

_PREFIXES = ("env:", "file:")


class SecretError(ValueError):
    """A reference that cannot be resolved; the message never contains the secret."""


def is_reference(value: str) -> bool:
    """Whether the value is an ``env:NAME`` or ``file:PATH`` reference."""
    return value.startswith(_PREFIXES) and len(value.split(":", 1)[1].strip()) > 0


def resolve_secret(reference: str, base_dir: Path | None = None) -> str:
    """Read the secret a reference points at (relative file paths are from ``base_dir``)."""
    kind, _, target = reference.partition(":")
    target = target.strip()
    if kind == "env":
        value = os.environ.get(target)
        if value is None or not value.strip():
            raise SecretError(f"environment variable {target} is not set")
        return value.strip()
    if kind == "file":
        path = Path(target).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise SecretError(f"cannot read secret file {path}: {err.strerror}") from None
        if not value:
            raise SecretError(f"secret file {path} is empty")
        return value
    raise SecretError("a secret must be written as env:NAME or file:PATH")


class LiveSecrets(Mapping[str, str]):
    """An account's secrets, read again whenever used, so a refreshed token file takes effect.

    Google access tokens live an hour; a token helper rewrites the ``file:`` the config
    points at, and the next request uses the new one. Files are re-read only when they
    change (mtime); a reference that stops resolving keeps its last good value, so a token
    helper caught mid-write never breaks a poll.
    """

    def __init__(self, references: Mapping[str, str], base_dir: Path | None = None) -> None:
        self._references = dict(references)
        self._base_dir = base_dir
        self._values: dict[str, str] = {}
        self._stamps: dict[str, int] = {}
        for key in self._references:
            self._values[key] = resolve_secret(self._references[key], base_dir)

    def __getitem__(self, key: str) -> str:
        reference = self._references[key]
        kind, _, target = reference.partition(":")
        try:
            if kind == "file":
                path = Path(target.strip()).expanduser()
                if not path.is_absolute() and self._base_dir is not None:
                    path = self._base_dir / path
                stamp = path.stat().st_mtime_ns
                if self._stamps.get(key) != stamp:
                    self._values[key] = resolve_secret(reference, self._base_dir)
                    self._stamps[key] = stamp
            else:
                self._values[key] = resolve_secret(reference, self._base_dir)
        except (SecretError, OSError):
            pass  # keep the last good value
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._references)

    def __len__(self) -> int:
        return len(self._references)

    def fingerprint(self) -> str:
        """A digest of the current values (never the values): tells when a token changed."""
        digest = hashlib.sha256()
        for key in sorted(self._references):
            digest.update(key.encode() + b"\0" + self[key].encode() + b"\0")
        return digest.hexdigest()

    def __repr__(self) -> str:
        return f"LiveSecrets({sorted(self._references)})"
