"""Secret references: the config holds ``env:NAME`` or ``file:PATH``, never a secret itself."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SecretError", "is_reference", "resolve_secret"]

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
