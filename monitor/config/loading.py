"""The TOML config: accounts, profiles, business hours, secrets by reference.

Every mistake is reported as ``FILE: account 'NAME': field 'PATH': what is wrong``, all of them
at once, never as a traceback. Secret values are never echoed, not even when misplaced.

Example::

    [defaults]
    profile = "strict"
    timezone = "Europe/Berlin"

    [profiles.fast]
    extends = "strict"
    version = 2
    response_target = "10m"

    [[accounts]]
    name = "acme-facebook"
    platform = "facebook"
    ids = { page_id = "1234567890" }
    channels = ["dm", "comment"]
    profile = "fast"
    secrets = { access_token = "env:ACME_FB_TOKEN" }

    [accounts.business_hours]
    monday = ["09:00-12:30", "13:30-18:00"]
    holidays_country = "DE"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from connectors.base import CHANNELS, Channel
from connectors.registry import PLATFORMS, launch_days, webhook_routes
from monitor.config.schema import (
    AccountModel,
    AlertsModel,
    BusinessHoursModel,
    ConfigModel,
    MetricsModel,
    ProfileModel,
    SummaryModel,
)
from monitor.config.secrets import LiveSecrets, SecretError, resolve_secret
from monitor.core.hours import DAY_NAMES, BusinessCalendar, ScheduleError
from monitor.core.intake_bounds import DEFAULT_MAX_AHEAD, IntakeBounds
from monitor.core.profiles import BUILTIN_PROFILES, DEFAULT_PROFILE, Profile, WaitRule

__all__ = [
    "AccountConfig",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "WebhookConfig",
    "intake_bounds",
    "load_config",
]


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One mistake in the config, located as precisely as possible."""

    file: str
    account: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"account {self.account!r}: " if self.account else ""
        return f"{self.file}: {where}field {self.field!r}: {self.message}"


class ConfigError(Exception):
    """The config cannot be used; ``problems`` lists every mistake found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class AccountConfig:
    """A resolved account: its profile objects built, its calendar parsed."""

    name: str
    platform: str
    ids: Mapping[str, str]
    channels: tuple[Channel, ...]
    profile: Profile
    channel_profiles: Mapping[str, Profile]
    timezone: str
    calendar: BusinessCalendar | None
    secret_refs: Mapping[str, str] = field(repr=False)
    source: str
    poll_interval: timedelta
    base_url: str | None
    options: Mapping[str, str]
    group: str | None

    def profile_for(self, channel: str) -> Profile:
        """The profile that judges waits on this channel."""
        return self.channel_profiles.get(channel, self.profile)

    def profiles(self) -> Iterator[Profile]:
        """Every distinct profile used by this account."""
        yield self.profile
        yield from (p for p in self.channel_profiles.values() if p != self.profile)


@dataclass(frozen=True)
class WebhookConfig:
    """One platform's webhook settings (secrets still as references)."""

    secret_refs: Mapping[str, str] = field(repr=False)
    max_body_bytes: int = 1_048_576
    # /hooks/events only: (secret reference, accounts it may write or None for every push one)
    tokens: tuple[tuple[str, tuple[str, ...] | None], ...] = field(default=(), repr=False)


def intake_bounds(
    earliest: date | None = None, max_ahead: timedelta = DEFAULT_MAX_AHEAD
) -> IntakeBounds:
    """The plausibility window, with each known platform's launch day from its record."""
    return IntakeBounds(earliest, max_ahead, launch_days())


@dataclass(frozen=True)
class Config:
    """The resolved config: profiles by name and accounts by name."""

    path: Path | None
    profiles: Mapping[str, Profile]
    accounts: Mapping[str, AccountConfig]
    default_profile: str
    default_timezone: str
    database: str | None = None
    store_excerpts: bool = False
    backfill: timedelta = timedelta(days=7)
    listen: str = "127.0.0.1:9874"
    refresh_interval: timedelta = timedelta(seconds=15)
    intake: IntakeBounds = field(default_factory=intake_bounds)
    webhooks: Mapping[str, WebhookConfig] = field(default_factory=dict)
    alerts: AlertsModel = field(default_factory=AlertsModel)
    summary: SummaryModel = field(default_factory=SummaryModel)
    metrics: MetricsModel = field(default_factory=MetricsModel)

    @classmethod
    def empty(cls) -> Config:
        """The config used when no file is given: built-in profiles, no accounts."""
        return cls(None, dict(BUILTIN_PROFILES), {}, DEFAULT_PROFILE, "UTC")

    def profile(self, name: str) -> Profile:
        """Look up a profile by name, with a clear error for unknown names."""
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise KeyError(f"unknown profile {name!r} (known: {known})") from None

    def live_secrets(self, account: str) -> LiveSecrets:
        """One account's secrets, re-read on use (raises SecretError when one is missing now)."""
        base = self.path.parent if self.path else None
        return LiveSecrets(self.accounts[account].secret_refs, base)

    def resolve_secrets(self, account: str) -> dict[str, str]:
        """Read one account's secrets from the environment or files."""
        base = self.path.parent if self.path else None
        return {k: resolve_secret(v, base) for k, v in self.accounts[account].secret_refs.items()}

    def resolve_webhook_secrets(self, platform: str) -> dict[str, str]:
        """Read one webhook's secrets (empty when the webhook is not configured)."""
        hook = self.webhooks.get(platform)
        if hook is None:
            return {}
        base = self.path.parent if self.path else None
        return {k: resolve_secret(v, base) for k, v in hook.secret_refs.items()}

    def resolve_event_tokens(self) -> list[tuple[str, tuple[str, ...] | None]]:
        """The ``[[webhooks.events.tokens]]``: each secret read, with the accounts it may write."""
        hook = self.webhooks.get("events")
        if hook is None:
            return []
        base = self.path.parent if self.path else None
        return [(resolve_secret(ref, base), accounts) for ref, accounts in hook.tokens]

    def resolve_receiver_secrets(self, receiver: str) -> dict[str, str]:
        """Read one alert receiver's secrets ("alertmanager" for the Alertmanager)."""
        base = self.path.parent if self.path else None
        return {k: resolve_secret(v, base) for k, v in self._receiver_refs()[receiver].items()}

    def _receiver_refs(self) -> dict[str, Mapping[str, str]]:
        refs: dict[str, Mapping[str, str]] = {r.name: r.secrets for r in self.alerts.receivers}
        if self.summary.secrets:
            refs["summary"] = self.summary.secrets
        if self.alerts.alertmanager is not None:
            refs["alertmanager"] = self.alerts.alertmanager.secrets
        return refs

    def secret_problems(self) -> list[ConfigProblem]:
        """Every secret reference that does not resolve right now."""
        base = self.path.parent if self.path else None
        places: list[tuple[str | None, str, str]] = [
            (account.name, f"secrets.{key}", ref)
            for account in self.accounts.values()
            for key, ref in account.secret_refs.items()
        ]
        places += [
            (None, f"webhooks.{platform}.secrets.{key}", ref)
            for platform, hook in self.webhooks.items()
            for key, ref in hook.secret_refs.items()
        ]
        places += [
            (None, f"webhooks.{platform}.tokens[{index}].secret", ref)
            for platform, hook in self.webhooks.items()
            for index, (ref, _accounts) in enumerate(hook.tokens)
        ]
        places += [
            (None, f"alerts.{receiver}.secrets.{key}", ref)
            for receiver, refs in self._receiver_refs().items()
            for key, ref in refs.items()
        ]
        problems = []
        for account, where, reference in places:
            try:
                resolve_secret(reference, base)
            except SecretError as err:
                problems.append(ConfigProblem(self._file(), account, where, str(err)))
        return problems

    def _file(self) -> str:
        return str(self.path) if self.path else "<config>"


def default_config_path() -> Path | None:
    """The config named by REPLYWATCH_CONFIG, if any."""
    value = os.environ.get("REPLYWATCH_CONFIG")
    return Path(value) if value else None


def load_config(path: Path | str | None) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem."""
    if path is None:
        return Config.empty()
    path = Path(path)
    file = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(file, None, "-", "file not found")]) from None
    except OSError as err:
        raise ConfigError([ConfigProblem(file, None, "-", err.strerror or str(err))]) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([ConfigProblem(file, None, "-", f"not valid TOML: {err}")]) from None
    try:
        model = ConfigModel.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_problems_from(err, raw, file)) from None
    return _resolve(model, path)


def _problems_from(err: ValidationError, raw: dict[str, Any], file: str) -> list[ConfigProblem]:
    problems = []
    listed = raw.get("accounts")
    accounts: list[Any] = listed if isinstance(listed, list) else []
    for item in err.errors(include_input=False, include_url=False):
        loc = list(item["loc"])
        account = None
        if len(loc) >= 2 and loc[0] == "accounts" and isinstance(loc[1], int):
            entry = accounts[loc[1]] if loc[1] < len(accounts) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            account = str(name) if name else f"#{loc[1] + 1}"
            loc = loc[2:]
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling)"
        path = ".".join(str(part) for part in loc) or "-"
        problems.append(ConfigProblem(file, account, path, message))
    return problems


def _resolve(model: ConfigModel, path: Path) -> Config:
    file = str(path)
    problems: list[ConfigProblem] = []
    profiles = dict(BUILTIN_PROFILES)
    for name, spec in _ordered_profiles(model.profiles, problems, file):
        base = profiles[spec.extends]
        profiles[name] = _build_profile(name, spec, base)
    _check_zone(model.defaults.timezone, None, "defaults.timezone", file, problems)
    _check_summary(model, file, problems)
    _check_webhooks(model, file, problems)
    if model.defaults.profile not in profiles:
        problems.append(
            ConfigProblem(
                file, None, "defaults.profile", f"unknown profile {model.defaults.profile!r}"
            )
        )
    accounts = {}
    for account in model.accounts:
        resolved = _resolve_account(account, model, profiles, file, problems)
        if resolved is not None:
            accounts[account.name] = resolved
    if problems:
        raise ConfigError(problems)
    settings = model.replywatch
    return Config(
        path=path,
        profiles=profiles,
        accounts=accounts,
        default_profile=model.defaults.profile,
        default_timezone=model.defaults.timezone,
        database=settings.database,
        store_excerpts=settings.store_excerpts,
        backfill=settings.backfill,
        listen=settings.listen,
        refresh_interval=settings.refresh_interval,
        intake=intake_bounds(settings.earliest_event, settings.max_clock_skew),
        webhooks={
            platform: WebhookConfig(
                dict(hook.secrets),
                hook.max_body_bytes,
                tuple((token.secret, token.accounts) for token in hook.tokens),
            )
            for platform, hook in model.webhooks.items()
        },
        alerts=model.alerts,
        summary=model.summary,
        metrics=model.metrics,
    )


def _ordered_profiles(
    specs: Mapping[str, ProfileModel], problems: list[ConfigProblem], file: str
) -> list[tuple[str, ProfileModel]]:
    # Resolve `extends` chains in dependency order; report unknown bases and cycles.
    ordered: list[tuple[str, ProfileModel]] = []
    known = set(BUILTIN_PROFILES)
    pending = dict(specs)
    while pending:
        ready = [n for n, s in pending.items() if s.extends in known and n not in BUILTIN_PROFILES]
        for name in [n for n in pending if n in BUILTIN_PROFILES]:
            problems.append(
                ConfigProblem(
                    file,
                    None,
                    f"profiles.{name}",
                    "redefines a built-in profile; pick another name",
                )
            )
            del pending[name]
        if not ready:
            for name, spec in pending.items():
                problems.append(
                    ConfigProblem(
                        file,
                        None,
                        f"profiles.{name}.extends",
                        f"unknown or circular profile {spec.extends!r}",
                    )
                )
            break
        for name in ready:
            ordered.append((name, pending.pop(name)))
            known.add(name)
    return ordered


def _build_profile(name: str, spec: ProfileModel, base: Profile) -> Profile:
    rule = WaitRule(
        counting=spec.counting or base.rule.counting,
        silence=spec.silence or base.rule.silence,
        automated_closes_wait=(
            base.rule.automated_closes_wait
            if spec.automated_closes_wait is None
            else spec.automated_closes_wait
        ),
    )
    tiers = dict(base.tiers)
    for tier, targets in spec.tiers.items():
        tiers[tier] = targets.apply(base.targets_for(tier))
    return Profile(
        name=name,
        version=spec.version,
        window=spec.window or base.window,
        rule=rule,
        targets=spec.apply(base.targets),
        tiers=tiers,
        channels=spec.channels if spec.channels is not None else base.channels,
        min_waits=base.min_waits if spec.min_waits is None else spec.min_waits,
        mean_of_fastest=spec.mean_of_fastest or base.mean_of_fastest,
    )


# The generic push route, for channels no platform record covers (README: /hooks/events).
_EVENTS_WEBHOOK_SECRETS = ("token",)


def _webhook_secrets() -> dict[str, tuple[str, ...]]:
    """The secrets each webhook needs, and which webhooks exist (from the platform records)."""
    needed = {name: route.secrets for name, route in webhook_routes().items()}
    needed["events"] = _EVENTS_WEBHOOK_SECRETS
    return needed


def _check_webhooks(model: ConfigModel, file: str, problems: list[ConfigProblem]) -> None:
    names = {account.name for account in model.accounts}
    webhook_secrets = _webhook_secrets()
    for name, hook in model.webhooks.items():
        needed = webhook_secrets.get(name)
        if needed is None:
            known = ", ".join(sorted(webhook_secrets))
            problems.append(
                ConfigProblem(file, None, f"webhooks.{name}", f"unknown webhook (known: {known})")
            )
            continue
        if hook.tokens and name != "events":
            problems.append(
                ConfigProblem(
                    file, None, f"webhooks.{name}.tokens", "only [webhooks.events] takes tokens"
                )
            )
        for index, token in enumerate(hook.tokens):
            for account in token.accounts or ():
                if account not in names:
                    where = f"webhooks.{name}.tokens[{index}].accounts"
                    problems.append(
                        ConfigProblem(file, None, where, f"unknown account {account!r}")
                    )
        if name == "events" and hook.tokens:
            continue  # scoped tokens instead of (or beside) the one for every push account
        for key in needed:
            if key not in hook.secrets:
                problems.append(
                    ConfigProblem(
                        file, None, f"webhooks.{name}.secrets.{key}", f'needed: {key} = "env:NAME"'
                    )
                )


def _check_summary(model: ConfigModel, file: str, problems: list[ConfigProblem]) -> None:
    summary = model.summary
    if summary.timezone is not None:
        _check_zone(summary.timezone, None, "summary.timezone", file, problems)
    chat = {r.name for r in model.alerts.receivers if r.kind in ("slack", "telegram")}
    for name in summary.digest_receivers:
        if name not in chat:
            known = ", ".join(sorted(chat)) or "none"
            problems.append(
                ConfigProblem(
                    file,
                    None,
                    "summary.digest_receivers",
                    f"{name!r} is not a slack or telegram receiver in "
                    f"[[alerts.receivers]] (known: {known})",
                )
            )
    names = {a.name for a in model.accounts}
    groups = {a.group for a in model.accounts if a.group}
    for index, recipient in enumerate(summary.recipients):
        where = f"summary.recipients[{index}]"
        for name in recipient.accounts:
            if name not in names:
                problems.append(ConfigProblem(file, None, where, f"unknown account {name!r}"))
        if recipient.group and recipient.group not in groups:
            problems.append(ConfigProblem(file, None, where, f"unknown group {recipient.group!r}"))


def _check_zone(
    zone: str, account: str | None, where: str, file: str, problems: list[ConfigProblem]
) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(ConfigProblem(file, account, where, f"unknown time zone {zone!r}"))
        return False
    return True


def _resolve_account(
    account: AccountModel,
    model: ConfigModel,
    profiles: Mapping[str, Profile],
    file: str,
    problems: list[ConfigProblem],
) -> AccountConfig | None:
    before = len(problems)

    def problem(where: str, message: str) -> None:
        problems.append(ConfigProblem(file, account.name, where, message))

    spec = PLATFORMS.get(account.platform)
    # A misspelt platform must not silently become a push-only account.
    source = account.source or "poll"
    if spec is None and source == "poll":
        problem(
            "platform",
            f"unknown platform {account.platform!r} (known: "
            f'{", ".join(sorted(PLATFORMS))}; use source = "push" for others)',
        )
    if spec is not None and source == "poll":
        for key in spec.ids:
            if key not in account.ids:
                problem(f"ids.{key}", f"{account.platform} accounts need ids.{key}")
        for key in spec.secrets:
            if key not in account.secrets:
                problem(
                    f"secrets.{key}", f'{account.platform} accounts need secrets.{key} = "env:NAME"'
                )
    channels = account.channels or (spec.unconfigured_channels if spec else CHANNELS)
    if spec is not None:
        for channel in channels:
            if channel not in spec.channels:
                problem(
                    "channels",
                    f"{account.platform} has no {channel!r} channel "
                    f"(it has {', '.join(spec.channels)})",
                )
    profile_name = account.profile or model.defaults.profile
    profile = profiles.get(profile_name)
    if profile is None:
        problem("profile", f"unknown profile {profile_name!r}")
    channel_profiles: dict[str, Profile] = {}
    for channel, name in account.channel_profiles.items():
        if name not in profiles:
            problem(f"channel_profiles.{channel}", f"unknown profile {name!r}")
        else:
            channel_profiles[channel] = profiles[name]
    zone = account.timezone or model.defaults.timezone
    zone_ok = _check_zone(zone, account.name, "timezone", file, problems)
    calendar = None
    if account.business_hours is not None and zone_ok:
        calendar = _calendar(account.business_hours, zone, problem)
    interval = account.poll_interval or model.defaults.poll_interval
    if interval is None:
        interval = timedelta(seconds=spec.poll_interval_seconds if spec else 60.0)
    if len(problems) > before or profile is None:
        return None
    overrides = account.targets.model_dump(exclude_none=True)
    if overrides:
        profile = profile.with_targets(**overrides)
    return AccountConfig(
        name=account.name,
        platform=account.platform,
        ids=dict(account.ids),
        channels=tuple(channels),
        profile=profile,
        channel_profiles=dict(channel_profiles),
        timezone=zone,
        calendar=calendar,
        secret_refs=dict(account.secrets),
        source=source,
        poll_interval=interval,
        base_url=account.base_url,
        options=dict(account.options),
        group=account.group,
    )


def _calendar(hours: BusinessHoursModel, zone: str, problem: Any) -> BusinessCalendar | None:
    periods = {day: getattr(hours, day) for day in DAY_NAMES if getattr(hours, day)}
    try:
        return BusinessCalendar.build(
            hours.timezone or zone,
            periods,
            holiday_country=hours.holidays_country,
            holiday_subdivision=hours.holidays_subdivision,
            extra_holidays=hours.holidays,
        )
    except ScheduleError as err:
        problem("business_hours", str(err))
        return None
