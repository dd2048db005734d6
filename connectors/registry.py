"""The one list of platforms: found in the package, built from the platforms' own records.

Every public module of ``connectors`` that is not infrastructure (``base``, ``errors``,
``platform``, ``registry``) or a webhook parser (``*_webhook``) is a platform module. It defines
a connector class carrying its record (``record: ClassVar[PlatformSpec]``), or, for a platform
that is only pushed or imported, a module-level ``RECORD``. :func:`refresh` walks
``connectors.__path__`` and fills :data:`CONNECTORS`, :data:`PLATFORMS` and
:data:`PLATFORM_ALIASES` in place, so whoever imported them sees the same objects; it runs when
``connectors`` is first imported. Fakes are found the same way: ``connectors/fakes/<module>.py``
as the record's ``fake_module`` says.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from datetime import date
from types import ModuleType

from connectors.base import Connector
from connectors.platform import PlatformSpec, WebhookRoute

__all__ = [
    "CONNECTORS",
    "NOT_PLATFORM_MODULES",
    "PLATFORMS",
    "PLATFORM_ALIASES",
    "RegistryError",
    "canonical_platform",
    "fake_module",
    "launch_days",
    "platform_modules",
    "refresh",
    "webhook_routes",
]

# Modules of the package that hold no platform.
NOT_PLATFORM_MODULES = frozenset({"base", "errors", "platform", "registry"})
WEBHOOK_PARSER_SUFFIX = "_webhook"

# platform name -> connector class (platforms that are polled).
CONNECTORS: dict[str, type[Connector]] = {}
# platform name -> record (every platform, polled or not).
PLATFORMS: dict[str, PlatformSpec] = {}
# another name a config or a file may use -> platform name.
PLATFORM_ALIASES: dict[str, str] = {}


class RegistryError(RuntimeError):
    """Two platforms claim one name, or a class's record names another platform."""


def platform_modules(path: Iterable[str] | None = None) -> list[str]:
    """The names of the platform modules in ``path`` (default: the ``connectors`` package)."""
    if path is None:
        import connectors

        path = connectors.__path__
    return sorted(
        {
            module.name
            for module in pkgutil.iter_modules(list(path))
            if not module.ispkg
            and not module.name.startswith("_")
            and module.name not in NOT_PLATFORM_MODULES
            and not module.name.endswith(WEBHOOK_PARSER_SUFFIX)
        }
    )


def _records_of(module: ModuleType) -> list[tuple[PlatformSpec, type[Connector] | None]]:
    found: list[tuple[PlatformSpec, type[Connector] | None]] = []
    for value in vars(module).values():
        # Classes imported from elsewhere (a shared base) belong to their own module.
        if isinstance(value, type) and value.__module__ == module.__name__:
            record = getattr(value, "record", None)
            if isinstance(record, PlatformSpec):
                if getattr(value, "platform", None) != record.name:
                    raise RegistryError(
                        f"{module.__name__}.{value.__name__}: platform is not record.name "
                        f"({record.name!r})"
                    )
                found.append((record, value))
    record = getattr(module, "RECORD", None)
    if isinstance(record, PlatformSpec):
        found.append((record, None))
    return found


def refresh() -> None:
    """Find every platform module again and rebuild the registry (in place)."""
    connectors: dict[str, type[Connector]] = {}
    platforms: dict[str, PlatformSpec] = {}
    aliases: dict[str, str] = {}
    for name in platform_modules():
        module = importlib.import_module(f"connectors.{name}")
        for record, cls in _records_of(module):
            if record.name in platforms:
                raise RegistryError(f"two records for platform {record.name!r}")
            platforms[record.name] = record
            if cls is not None:
                connectors[record.name] = cls
            for alias in record.aliases:
                aliases[alias] = record.name
    CONNECTORS.clear()
    CONNECTORS.update(connectors)
    PLATFORMS.clear()
    PLATFORMS.update(platforms)
    PLATFORM_ALIASES.clear()
    PLATFORM_ALIASES.update(aliases)


def canonical_platform(name: str) -> str:
    """Lower-case a platform name and resolve aliases (``twitter`` is ``x``)."""
    key = name.strip().lower()
    return PLATFORM_ALIASES.get(key, key)


def fake_module(platform: str) -> ModuleType:
    """The module of the platform's fake server (``connectors.fakes.<fake_module>``)."""
    return importlib.import_module(f"connectors.fakes.{PLATFORMS[platform].fake_module}")


def launch_days() -> dict[str, date]:
    """Each platform's launch day: no message on it can be older."""
    return {name: spec.launched for name, spec in PLATFORMS.items()}


def webhook_routes() -> dict[str, WebhookRoute]:
    """The webhooks platforms push through, by name (one may serve several platforms)."""
    return {spec.webhook.name: spec.webhook for spec in PLATFORMS.values() if spec.webhook}


# Built when the registry is first imported: importing connectors.base alone (a pure
# module monitor.core reads) loads no HTTP client.
refresh()
