"""The connector registry is complete: every platform module registered, faked and fixtured."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import connectors
from connectors import CONNECTORS
from connectors.base import Connector

FIXTURES = Path(__file__).parent.parent / "fixtures"
NOT_PLATFORMS = {"base", "errors", "meta_webhook", "telegram_webhook"}
# Platforms that share one fake server.
FAKE_MODULE = {"facebook": "meta", "instagram": "meta"}


def platform_modules() -> list[str]:
    return [
        m.name
        for m in pkgutil.iter_modules(connectors.__path__)
        if not m.name.startswith("_") and not m.ispkg and m.name not in NOT_PLATFORMS
    ]


def test_every_connector_module_is_registered_faked_and_fixtured() -> None:
    """Like hassfest: a module without registry entry, fake or fixtures fails the build."""
    modules = platform_modules()
    assert modules, "no connector modules found"
    for name in modules:
        assert name in CONNECTORS, f"connectors/{name}.py is not in CONNECTORS"
        fake = FAKE_MODULE.get(name, name)
        importlib.import_module(f"connectors.fakes.{fake}")
        assert (FIXTURES / name).is_dir(), f"tests/fixtures/{name}/ is missing"
        assert any((FIXTURES / name).glob("*.json")), f"tests/fixtures/{name}/ is empty"


def test_registered_classes_follow_the_protocol() -> None:
    """Each registered class names its platform and implements the Connector protocol."""
    for platform, cls in CONNECTORS.items():
        assert cls.platform == platform
        for member in ("fetch_since", "aclose"):
            assert callable(getattr(cls, member, None)), (platform, member)
        assert isinstance(cls.__new__(cls), Connector)
