"""The connector registry is complete: every platform module registered, faked and fixtured."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from connectors import CONNECTORS, PLATFORM_ALIASES, PLATFORMS, canonical_platform
from connectors.base import Connector
from connectors.platform import PlatformSpec
from connectors.registry import fake_module, platform_modules

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_every_connector_module_is_registered_faked_and_fixtured() -> None:
    """Like hassfest: a module without a record, fake or fixtures fails the build."""
    modules = platform_modules()
    assert modules, "no connector modules found"
    registered = {cls.__module__ for cls in CONNECTORS.values()}
    for name in modules:
        assert f"connectors.{name}" in registered, f"connectors/{name}.py carries no record"
    for platform in CONNECTORS:
        fake_module(platform)  # raises when connectors/fakes/<fake>.py is missing
        assert (FIXTURES / platform).is_dir(), f"tests/fixtures/{platform}/ is missing"
        assert any((FIXTURES / platform).glob("*.json")), f"tests/fixtures/{platform}/ is empty"


def test_infrastructure_and_webhook_parsers_are_not_platforms() -> None:
    """base, errors, the record and registry modules and webhook parsers are skipped."""
    modules = set(platform_modules())
    assert not modules & {"base", "errors", "platform", "registry"}
    assert not modules & {"meta_webhook", "telegram_webhook"}
    assert {"facebook", "x", "telegram"} <= modules


def test_registered_classes_follow_the_protocol() -> None:
    """Each registered class names its platform and implements the Connector protocol."""
    for platform, cls in CONNECTORS.items():
        assert cls.platform == platform
        for member in ("fetch_since", "aclose"):
            assert callable(getattr(cls, member, None)), (platform, member)
        assert isinstance(cls.__new__(cls), Connector)


def test_every_class_carries_its_record() -> None:
    """PLATFORMS is made of the classes' own records, one per platform."""
    assert set(PLATFORMS) == set(CONNECTORS)
    for platform, cls in CONNECTORS.items():
        record = cls.record  # type: ignore[attr-defined]
        assert isinstance(record, PlatformSpec)
        assert PLATFORMS[platform] is record
        assert record.default_channel in record.channels
        assert set(record.unconfigured_channels) <= set(record.channels)


@pytest.mark.parametrize(
    ("written", "platform"),
    [("Twitter", "x"), ("fb", "facebook"), (" IG ", "instagram"), ("whatsapp", "whatsapp")],
)
def test_aliases_come_from_the_records(written: str, platform: str) -> None:
    """A record's aliases resolve to it; unknown names stay as written (lower-cased)."""
    assert canonical_platform(written) == platform
    assert PLATFORM_ALIASES == {"twitter": "x", "fb": "facebook", "ig": "instagram"}


def test_meta_and_telegram_records_name_their_webhooks() -> None:
    """The route a platform is pushed through, and the id a delivery names its account by."""
    facebook, instagram = PLATFORMS["facebook"].webhook, PLATFORMS["instagram"].webhook
    telegram = PLATFORMS["telegram"].webhook
    assert facebook is not None and instagram is not None and telegram is not None
    assert (facebook.name, facebook.path, facebook.account_id) == ("meta", "/hooks/meta", "page_id")
    assert (instagram.name, instagram.account_id) == ("meta", "ig_user_id")
    assert telegram.path == "/hooks/telegram/<account>" and telegram.account_id is None
    assert PLATFORMS["x"].webhook is None


def test_the_record_module_stays_pure() -> None:
    """connectors.platform imports no HTTP library: monitor.core and the config read records."""
    source = Path(importlib.import_module("connectors.platform").__file__ or "").read_text()
    assert "aiohttp" not in source
