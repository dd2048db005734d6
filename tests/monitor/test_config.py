"""The TOML config: a good file loads; every mistake names file, account and field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config.loading import ConfigError, load_config
from tests.conftest import RunCli

GOOD = """
[defaults]
profile = "strict"
timezone = "Europe/Berlin"

[profiles.fast]
extends = "strict"
version = 3
response_target = "10m"
mean_of_fastest = 0.9
[profiles.fast.tiers.negative]
reply_deadline = "2h"

[[accounts]]
name = "acme-facebook"
platform = "facebook"
ids = { page_id = "1234567890" }
channels = ["dm", "comment"]
profile = "fast"
channel_profiles = { comment = "meta-badge" }
secrets = { access_token = "env:ACME_FB_TOKEN" }
targets = { rate_target = 0.95 }

[accounts.business_hours]
monday = ["09:00-12:30", "13:30-18:00"]
friday = ["09:00-15:00"]
holidays_country = "DE"
holidays = ["2026-12-24"]

[[accounts]]
name = "acme-reviews"
platform = "trustpilot"
ids = { business_unit_id = "bu-1" }
profile = "reviews"
secrets = { api_key = "file:secrets/tp-key", access_token = "env:TP_TOKEN" }

[[accounts]]
name = "whatsapp-helpdesk"
platform = "whatsapp"
source = "push"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "replywatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return [str(p) for p in caught.value.problems]


def test_good_config_resolves_profiles_hours_and_overrides(tmp_path: Path) -> None:
    """A complete config loads with profiles, overrides and a calendar built."""
    config = load_config(write(tmp_path, GOOD))
    account = config.accounts["acme-facebook"]
    assert account.profile.name == "fast"
    assert account.profile.version == 3
    assert account.profile.targets.response_target == timedelta(minutes=10)
    assert account.profile.mean_of_fastest == 0.9
    assert account.profile.targets.rate_target == 0.95
    assert account.profile.targets_for("negative").reply_deadline == timedelta(hours=2)
    assert account.profile_for("comment").name == "meta-badge"
    assert account.calendar is not None
    assert account.timezone == "Europe/Berlin"
    assert config.accounts["acme-reviews"].profile.channels == ("review",)
    assert config.accounts["whatsapp-helpdesk"].source == "push"
    assert account.poll_interval == timedelta(seconds=60)


@pytest.mark.parametrize(
    ("snippet", "account", "field", "words"),
    [
        ('platform = "facebok"', "acme-facebook", "platform", "unknown platform"),
        ('profile = "fastest"', "acme-facebook", "profile", "unknown profile"),
        ('timezone = "Mars/Olympus"', "acme-facebook", "timezone", "unknown time zone"),
        ('channels = ["dm", "review"]', "acme-facebook", "channels", "no 'review' channel"),
        ('channels = ["sms"]', "acme-facebook", "channels.0", "dm"),
        ('poll_interval = "soon"', "acme-facebook", "poll_interval", "not a duration"),
        (
            'targets = { response_target = "15x" }',
            "acme-facebook",
            "targets.response_target",
            "not a duration",
        ),
        ("targets = { rate_target = 1.5 }", "acme-facebook", "targets.rate_target", "1"),
        ('colour = "red"', "acme-facebook", "colour", "unknown field"),
    ],
)
def test_each_mistake_names_file_account_and_field(
    tmp_path: Path, snippet: str, account: str, field: str, words: str
) -> None:
    """A wrong value is reported with the file, the account and the field."""
    key = snippet.split(" = ")[0]
    lines = GOOD.splitlines()
    first = lines.index('name = "acme-facebook"')
    end = lines.index("[accounts.business_hours]")
    body = [ln for ln in lines[first:end] if not ln.startswith(f"{key} = ")]
    text = "\n".join([*lines[:first], *body[:1], snippet, *body[1:], *lines[end:]])
    problems = problems_of(tmp_path, text)
    path = str(tmp_path / "replywatch.toml")
    assert any(
        p.startswith(f"{path}: account '{account}': field '{field}':") and words in p
        for p in problems
    ), problems


def test_missing_ids_and_secrets_are_named(tmp_path: Path) -> None:
    """A polled platform needs its ids and secrets."""
    problems = problems_of(tmp_path, '[[accounts]]\nname = "x1"\nplatform = "x"\n')
    assert any("field 'ids.user_id'" in p for p in problems)
    assert any("field 'secrets.bearer_token'" in p for p in problems)


def test_literal_secret_is_rejected_without_echoing_it(tmp_path: Path) -> None:
    """A token pasted into the config is refused, and the message does not repeat it."""
    token = "EAAB-REPLYWATCH-TEST-SECRET-9f8e7d"
    text = GOOD.replace('"env:ACME_FB_TOKEN"', f'"{token}"')
    problems = problems_of(tmp_path, text)
    assert any("secrets" in p and "env:NAME or file:PATH" in p for p in problems)
    assert all(token not in p for p in problems)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    """Two broken accounts give two problems, not just the first."""
    text = GOOD.replace('platform = "facebook"', 'platform = "facebok"').replace(
        'profile = "reviews"', 'profile = "nope"'
    )
    problems = problems_of(tmp_path, text)
    assert any("'acme-facebook'" in p for p in problems)
    assert any("'acme-reviews'" in p for p in problems)


def test_duplicate_names_bad_toml_and_missing_file(tmp_path: Path) -> None:
    """Whole-file problems are reported without a traceback."""
    dup = GOOD + '\n[[accounts]]\nname = "acme-reviews"\nplatform = "x"\nsource = "push"\n'
    assert any("used twice" in p for p in problems_of(tmp_path, dup))
    assert any("not valid TOML" in p for p in problems_of(tmp_path, "[accounts\n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")


def test_profile_cycles_and_bad_business_hours(tmp_path: Path) -> None:
    """Circular profiles and unusable schedules are named."""
    cyclic = '[profiles.a]\nextends = "b"\n[profiles.b]\nextends = "a"\n'
    assert any("circular" in p for p in problems_of(tmp_path, cyclic))
    bad_hours = GOOD.replace('monday = ["09:00-12:30", "13:30-18:00"]', 'monday = ["9-5"]')
    problems = problems_of(tmp_path, bad_hours)
    assert any("field 'business_hours'" in p and "9-5" in p for p in problems)


def test_check_config_command(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check-config exits 0 on a good file and 2 with one line per problem otherwise."""
    path = write(tmp_path, GOOD)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "tp-key").write_text("key-material\n")
    monkeypatch.setenv("ACME_FB_TOKEN", "token-value")
    monkeypatch.delenv("TP_TOKEN", raising=False)
    result = run_cli("--config", str(path), "check-config")
    assert result.code == 2
    assert "field 'secrets.access_token': environment variable TP_TOKEN is not set" in result.err
    assert "token-value" not in result.err + result.out
    monkeypatch.setenv("TP_TOKEN", "other")
    result = run_cli("--config", str(path), "check-config")
    assert result.code == 0, result.err
    assert "3 account(s)" in result.out
    broken = write(tmp_path, GOOD.replace('"fast"', '"fastest"', 1))
    result = run_cli("--config", str(broken), "check-config")
    assert result.code == 2
    assert "Traceback" not in result.err
    assert "account 'acme-facebook': field 'profile'" in result.err


ALERTS = """
[alerts]
max_age = "2d"
alertmanager = { url = "http://127.0.0.1:9093" }

[[alerts.receivers]]
name = "oncall-slack"
kind = "slack"
levels = ["breach", "escalated", "resolved"]
secrets = { url = "env:SLACK_WEBHOOK_URL" }

[[alerts.receivers]]
name = "managers"
kind = "email"
smtp_host = "mail.example.org"
from_address = "replywatch@example.org"
to = ["lead@example.org"]
levels = ["escalated"]
"""


def test_alert_receivers_resolve_and_are_checked(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receivers load with their levels; an unresolved receiver secret fails check-config."""
    config = load_config(write(tmp_path, ALERTS))
    assert config.alerts.alertmanager is not None
    assert [r.name for r in config.alerts.receivers] == ["oncall-slack", "managers"]
    assert config.alerts.receivers[1].levels == ("escalated",)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    result = run_cli("--config", str(tmp_path / "replywatch.toml"), "check-config")
    assert result.code == 2
    assert "alerts.oncall-slack.secrets.url" in result.err
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.example/T/B/secret-part")
    result = run_cli("--config", str(tmp_path / "replywatch.toml"), "check-config")
    assert result.code == 0, result.err
    assert "secret-part" not in result.out + result.err


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ('kind = "slack"\n', "slack receiver 'oncall-slack' needs secrets.url"),
        ('levels = ["breach", "escalated", "resolved"]', "levels"),
        ('smtp_host = "mail.example.org"\n', "email receiver 'managers' needs smtp_host"),
        ('name = "managers"', "unique"),
    ],
)
def test_receiver_mistakes_are_named(tmp_path: Path, change: str, words: str) -> None:
    """A receiver without what its kind needs, a bad level or a duplicate name is refused."""
    replacements = {
        'kind = "slack"\n': ('secrets = { url = "env:SLACK_WEBHOOK_URL" }', ""),
        'levels = ["breach", "escalated", "resolved"]': (change, 'levels = ["paged"]'),
        'smtp_host = "mail.example.org"\n': (change, ""),
        'name = "managers"': (change, 'name = "oncall-slack"'),
    }
    old, new = replacements[change]
    problems = problems_of(tmp_path, ALERTS.replace(old, new))
    assert any(words in p and "alerts" in p for p in problems), problems


def test_the_plausibility_window_comes_from_the_config(tmp_path: Path) -> None:
    """earliest_event and max_clock_skew bound intake; without them, each platform's launch."""
    from datetime import UTC, datetime

    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    default = load_config(_write(tmp_path / "default.toml", "")).intake
    assert default.earliest_for("facebook") == datetime(2004, 2, 4, tzinfo=UTC)
    assert default.earliest_for("whatsapp") == datetime(2000, 1, 1, tzinfo=UTC)
    default.check_time("facebook", now + timedelta(minutes=4), now)
    text = '[replywatch]\nearliest_event = 2020-01-01\nmax_clock_skew = "1m"\n'
    bounds = load_config(_write(tmp_path / "set.toml", text)).intake
    bounds.check_time("facebook", datetime(2020, 1, 1, tzinfo=UTC), now)
    with pytest.raises(ValueError, match="before 2020-01-01"):
        bounds.check_time("facebook", datetime(2019, 12, 31, 23, 59, tzinfo=UTC), now)
    with pytest.raises(ValueError, match="1 min ahead"):
        bounds.check_time("facebook", now + timedelta(minutes=2), now)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
