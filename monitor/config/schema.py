"""The config file's schema: what may be written where, validated by pydantic.

``monitor.config.loading`` turns a validated file into profiles, accounts and calendars; this module
only says which keys exist, their types, and which values are refused (with messages that never
repeat a secret).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from connectors.base import Channel
from connectors.registry import canonical_platform
from monitor.config.secrets import is_reference
from monitor.core.durations import parse_duration
from monitor.core.intake_bounds import DEFAULT_MAX_AHEAD
from monitor.core.profiles import DEFAULT_PROFILE, Targets

__all__ = [
    "AccountModel",
    "AlertsModel",
    "BusinessHoursModel",
    "ConfigModel",
    "EventTokenModel",
    "MetricsModel",
    "ProfileModel",
    "ReceiverModel",
    "RecipientModel",
    "SummaryModel",
    "TargetsModel",
]


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str | int | float):
        raise ValueError("expected a duration like 15m, 24h or 7d")
    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _references_only(value: dict[str, str]) -> dict[str, str]:
    for key, reference in value.items():
        if not is_reference(reference):
            # Never echo the value: it may be the secret itself.
            raise ValueError(
                f"secrets.{key} must be a reference, env:NAME or file:PATH, not the secret"
            )
    return value


SecretRefs = Annotated[dict[str, str], AfterValidator(_references_only)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetsModel(_Strict):
    """Targets that a profile, a tier or an account may set."""

    response_target: Duration | None = None
    reply_deadline: Duration | None = None
    rate_target: float | None = Field(default=None, gt=0, le=1)
    warn_after: Duration | None = None
    escalate_after: Duration | None = None

    def apply(self, base: Targets) -> Targets:
        """Targets with the fields set here replacing those of ``base``."""
        names = Targets.__dataclass_fields__
        changes = {k: getattr(self, k) for k in names if getattr(self, k) is not None}
        return Targets(**{**_targets_dict(base), **changes})


def _targets_dict(targets: Targets) -> dict[str, Any]:
    return {name: getattr(targets, name) for name in Targets.__dataclass_fields__}


class ProfileModel(TargetsModel):
    """A user profile: a built-in one with some definitions changed."""

    extends: str = DEFAULT_PROFILE
    version: int = Field(default=1, ge=1)
    window: Duration | None = None
    counting: Literal["every_turn", "first_after_silence"] | None = None
    silence: Duration | None = None
    automated_closes_wait: bool | None = None
    min_waits: int | None = Field(default=None, ge=0)
    mean_of_fastest: float | None = Field(default=None, gt=0, le=1)
    channels: tuple[Channel, ...] | None = None
    tiers: dict[str, TargetsModel] = Field(default_factory=dict)


class BusinessHoursModel(_Strict):
    """A weekly schedule with optional holidays."""

    timezone: str | None = None
    monday: list[str] = Field(default_factory=list)
    tuesday: list[str] = Field(default_factory=list)
    wednesday: list[str] = Field(default_factory=list)
    thursday: list[str] = Field(default_factory=list)
    friday: list[str] = Field(default_factory=list)
    saturday: list[str] = Field(default_factory=list)
    sunday: list[str] = Field(default_factory=list)
    holidays_country: str | None = None
    holidays_subdivision: str | None = None
    holidays: list[date] = Field(default_factory=list)


class AccountModel(_Strict):
    """One monitored account as written in the config."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    platform: str
    ids: dict[str, str] = Field(default_factory=dict)
    channels: tuple[Channel, ...] | None = None
    profile: str | None = None
    channel_profiles: dict[Channel, str] = Field(default_factory=dict)
    targets: TargetsModel = TargetsModel()
    timezone: str | None = None
    business_hours: BusinessHoursModel | None = None
    secrets: SecretRefs = Field(default_factory=dict)
    source: Literal["poll", "push"] | None = None
    poll_interval: Duration | None = None
    base_url: str | None = None
    options: dict[str, str] = Field(default_factory=dict)
    group: str | None = None

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str) -> str:
        return canonical_platform(value)


class DefaultsModel(_Strict):
    """Values every account inherits unless it sets its own."""

    profile: str = DEFAULT_PROFILE
    timezone: str = "UTC"
    poll_interval: Duration | None = None


class SettingsModel(_Strict):
    """Process-wide settings."""

    database: str | None = None
    store_excerpts: bool = False
    backfill: Duration = timedelta(days=7)
    listen: str = "127.0.0.1:9874"
    # How often window figures, SLI outcomes and conversation alerts are brought up to date.
    refresh_interval: Duration = timedelta(seconds=15)
    # The plausibility window of event times (intake refuses items outside it): no earlier
    # than this day (default: each platform's launch) and no further ahead of the clock.
    earliest_event: date | None = None
    max_clock_skew: Duration = Field(default=DEFAULT_MAX_AHEAD, ge=timedelta(0))


class MetricsModel(_Strict):
    """What ``/metrics`` exports beyond the default budget (README, "Metrics budget")."""

    # Per-channel and per-tier window figures (and open waits per channel), each in
    # families of their own: replywatch_channel_*, replywatch_tier_*.
    breakdowns: tuple[Literal["channel", "tier"], ...] = ()
    # replywatch_response_time_seconds, with a bucket at each of the profile's targets.
    response_time_histogram: bool = False
    # Each account's last successful poll, last poll duration, poll interval, and its
    # warn_after, reply-deadline and escalation targets.
    account_details: bool = False

    @field_validator("breakdowns")
    @classmethod
    def _once_each(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"breakdowns lists a value twice: {list(value)}")
        return value


class EventTokenModel(_Strict):
    """A bearer token of ``/hooks/events`` and the accounts it may write."""

    secret: str
    # None: every account with source = "push"; a list may name polled accounts too.
    accounts: tuple[str, ...] | None = Field(default=None, min_length=1)

    @field_validator("secret")
    @classmethod
    def _reference(cls, value: str) -> str:
        if not is_reference(value):
            # Never echo the value: it may be the secret itself.
            raise ValueError("secret must be a reference, env:NAME or file:PATH, not the secret")
        return value


class WebhookModel(_Strict):
    """A platform's webhook: its secrets by reference and the largest body accepted."""

    secrets: SecretRefs = Field(default_factory=dict)
    max_body_bytes: int = Field(default=1_048_576, gt=0, le=64 * 1_048_576)
    # Only [webhooks.events]: further tokens, each limited to some accounts.
    tokens: list[EventTokenModel] = Field(default_factory=list)


AlertLevel = Literal["warning", "breach", "escalated", "resolved"]
ALERT_LEVELS: tuple[AlertLevel, ...] = ("warning", "breach", "escalated", "resolved")


class ReceiverModel(_Strict):
    """Where per-conversation alerts go when no Alertmanager routes them (or as well)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Literal["webhook", "slack", "telegram", "email"]
    # Which changes this receiver hears about; an escalation-only receiver lists "escalated".
    levels: tuple[AlertLevel, ...] = ALERT_LEVELS
    url: str | None = None
    chat_id: str | None = None
    api_url: str = "https://api.telegram.org"
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, gt=0, le=65535)
    starttls: bool = True
    from_address: str | None = None
    to: tuple[str, ...] = ()
    secrets: SecretRefs = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> ReceiverModel:
        requirements: dict[str, list[tuple[str, object]]] = {
            "webhook": [("url", self.url)],
            # The Slack URL is itself the credential: it must come from secrets.url.
            "slack": [("secrets.url", self.secrets.get("url"))],
            "telegram": [("chat_id", self.chat_id), ("secrets.bot_token",
                         self.secrets.get("bot_token"))],
            "email": [("smtp_host", self.smtp_host), ("from_address", self.from_address),
                      ("to", self.to)],
        }  # fmt: skip
        needed = requirements[self.kind]
        missing = [name for name, value in needed if not value]
        if missing:
            raise ValueError(f"{self.kind} receiver {self.name!r} needs {', '.join(missing)}")
        return self


class AlertmanagerModel(_Strict):
    """An Alertmanager to push per-conversation alerts to (API v2)."""

    url: str
    secrets: SecretRefs = Field(default_factory=dict)


class AlertsModel(_Strict):
    """Per-conversation alerts (metrics.md section 7) and where they are delivered."""

    enabled: bool = True
    # Older open waits never raise an alert: importing history must not page anyone.
    max_age: Duration = timedelta(days=3)
    # How often firing alerts are re-sent to Alertmanager so it keeps them alive.
    resend_interval: Duration = timedelta(minutes=1)
    # Longest pause between retries of a failed delivery.
    retry_max: Duration = timedelta(minutes=15)
    alertmanager: AlertmanagerModel | None = None
    receivers: list[ReceiverModel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_receivers(self) -> AlertsModel:
        names = [receiver.name for receiver in self.receivers]
        if len(set(names)) != len(names) or "alertmanager" in names:
            raise ValueError("receiver names must be unique and not 'alertmanager'")
        return self


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class RecipientModel(_Strict):
    """Who gets the weekly summary, for which accounts, in which language."""

    to: tuple[str, ...] = Field(min_length=1)
    accounts: tuple[str, ...] = ()
    group: str | None = None
    locale: str | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> RecipientModel:
        if self.accounts and self.group:
            raise ValueError("a recipient takes accounts or group, not both")
        return self


class SummaryModel(_Strict):
    """The weekly summary: when it is sent, to whom, and how."""

    enabled: bool = True
    timezone: str | None = None
    locale: str = "en"
    day: Weekday = "monday"
    hour: int = Field(default=8, ge=0, le=23)
    from_address: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, gt=0, le=65535)
    starttls: bool = True
    secrets: SecretRefs = Field(default_factory=dict)
    recipients: list[RecipientModel] = Field(default_factory=list)
    # Names of [[alerts.receivers]] (slack or telegram) that get a short digest too.
    digest_receivers: tuple[str, ...] = ()

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in ("en", "fa"):
            raise ValueError(f"unknown locale {value!r} (known: en, fa)")
        return value

    @model_validator(mode="after")
    def _mail_settings(self) -> SummaryModel:
        if self.recipients and not (self.smtp_host and self.from_address):
            raise ValueError("summary recipients need smtp_host and from_address")
        return self


class ConfigModel(_Strict):
    """The whole file."""

    replywatch: SettingsModel = SettingsModel()
    alerts: AlertsModel = AlertsModel()
    summary: SummaryModel = SummaryModel()
    metrics: MetricsModel = MetricsModel()
    webhooks: dict[str, WebhookModel] = Field(default_factory=dict)
    defaults: DefaultsModel = DefaultsModel()
    profiles: dict[str, ProfileModel] = Field(default_factory=dict)
    accounts: list[AccountModel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ConfigModel:
        seen: set[str] = set()
        for account in self.accounts:
            if account.name in seen:
                raise ValueError(f"account name {account.name!r} is used twice")
            seen.add(account.name)
        return self
