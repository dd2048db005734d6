"""Where per-conversation alerts are delivered: Alertmanager, a webhook, Slack, Telegram, e-mail.

Each receiver turns one :class:`AlertChange` into one request and raises
:class:`DeliveryError` (whose message never holds a URL or credential) when it did not land.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

import aiohttp
import aiosmtplib

from monitor.config import Config
from monitor.config_schema import ReceiverModel
from monitor.conversation_alerts import RESOLVED, AlertChange

__all__ = [
    "AlertReceiver",
    "AlertmanagerReceiver",
    "DeliveryError",
    "EmailReceiver",
    "SlackReceiver",
    "TelegramReceiver",
    "WebhookReceiver",
    "build_receivers",
    "describe",
]

ALERTNAME = "ReplywatchConversationWaiting"
# Alertmanager severities per level: escalation pages a second receiver (see the example
# routing in alerts/alertmanager.example.yml).
SEVERITY = {"warning": "warning", "breach": "critical", "escalated": "page"}
ALL_LEVELS = ("warning", "breach", "escalated", "resolved")


class DeliveryError(Exception):
    """A notification did not reach its receiver; safe to log (no URL, no secret)."""


class AlertReceiver(Protocol):
    """Something that can be told about one alert change."""

    name: str
    levels: Sequence[str]

    async def send(self, session: aiohttp.ClientSession, change: AlertChange) -> None:
        """Deliver one change or raise DeliveryError."""
        ...


def describe(change: AlertChange) -> str:
    """One human line about the change, for chat and mail receivers."""
    waited = _duration(change.waited_seconds)
    where = f"{change.platform} account {change.account} ({change.channel})"
    if change.level == RESOLVED:
        text = f"Answered: the customer on {where} waited {waited}."
    elif change.level == "warning":
        text = f"Customer waiting {waited} on {where}; answer before the target is breached."
    elif change.level == "breach":
        text = f"Target breached: a customer has waited {waited} on {where}."
    else:
        text = f"ESCALATED: a customer has waited {waited} on {where} and nobody answered."
    return f"{text} {change.link}" if change.link else text


async def _post(
    session: aiohttp.ClientSession, url: str, body: Any, what: str, headers: dict[str, str]
) -> None:
    try:
        async with session.post(url, json=body, headers=headers) as response:
            if response.status >= 300:
                raise DeliveryError(f"{what} answered HTTP {response.status}")
    except aiohttp.ClientError as err:
        # aiohttp's messages can carry the URL (a Slack URL or bot token is a secret).
        raise DeliveryError(f"{what} unreachable: {type(err).__name__}") from None
    except TimeoutError:
        raise DeliveryError(f"{what} timed out") from None


@dataclass
class AlertmanagerReceiver:
    """Pushes alerts to Alertmanager's API v2 and keeps firing ones alive."""

    url: str
    resend_interval: timedelta = timedelta(minutes=1)
    token: str | None = None
    name: str = "alertmanager"
    levels: Sequence[str] = ALL_LEVELS

    async def send(self, session: aiohttp.ClientSession, change: AlertChange) -> None:
        """Fire the new level and end the previous one (a new severity is a new alert)."""
        alerts = []
        if change.firing:
            alerts.append(self._alert(change, change.level, ends=None))
        if change.previous_level is not None:
            alerts.append(self._alert(change, change.previous_level, ends=change.changed_at))
        await self._push(session, alerts)

    async def refresh(
        self, session: aiohttp.ClientSession, firing: Iterable[AlertChange], now: datetime
    ) -> None:
        """Re-send every firing alert so Alertmanager does not time it out."""
        alerts = [self._alert(c, c.level, ends=None, now=now) for c in firing]
        if alerts:
            await self._push(session, alerts)

    async def _push(self, session: aiohttp.ClientSession, alerts: list[dict[str, Any]]) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        await _post(
            session, f"{self.url.rstrip('/')}/api/v2/alerts", alerts, "Alertmanager", headers
        )

    def _alert(
        self,
        change: AlertChange,
        level: str,
        ends: datetime | None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        # Firing alerts end a few resend intervals ahead: if replywatch stops re-sending,
        # Alertmanager resolves them by itself (and ReplywatchDown says why).
        end = ends or (now or change.changed_at) + 4 * self.resend_interval
        labels = {
            "alertname": ALERTNAME,
            "severity": SEVERITY[level],
            "platform": change.platform,
            "account": change.account,
            "channel": change.channel,
            # Alertmanager needs one label set per customer; this is not a Prometheus series.
            "conversation": change.conversation,
        }
        if level == "escalated":
            labels["escalated"] = "true"
        annotations = {
            "summary": "A customer is waiting for an answer.",
            "description": describe(change),
            "runbook_url": "alerts/runbook.md#replywatchconversationwaiting",
            "opened_at": change.opened_at.isoformat(),
        }
        alert: dict[str, Any] = {
            "labels": labels,
            "annotations": annotations,
            "startsAt": change.opened_at.isoformat(),
            "endsAt": end.isoformat(),
        }
        if change.link:
            alert["generatorURL"] = change.link
            annotations["link"] = change.link
        return alert


@dataclass
class WebhookReceiver:
    """POSTs the change as JSON to any URL (optionally with a bearer token)."""

    name: str
    url: str
    token: str | None = None
    levels: Sequence[str] = ALL_LEVELS

    async def send(self, session: aiohttp.ClientSession, change: AlertChange) -> None:
        """POST one change."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        body = {
            "version": "1",
            "alertname": ALERTNAME,
            **change.to_json(),
            "text": describe(change),
        }
        await _post(session, self.url, body, f"webhook {self.name}", headers)


@dataclass
class SlackReceiver:
    """Posts one message per change to a Slack incoming webhook."""

    name: str
    url: str = field(repr=False)
    levels: Sequence[str] = ALL_LEVELS

    async def send(self, session: aiohttp.ClientSession, change: AlertChange) -> None:
        """Post one message."""
        icon = {
            "warning": ":hourglass:",
            "breach": ":rotating_light:",
            "escalated": ":sos:",
            RESOLVED: ":white_check_mark:",
        }[change.level]
        await self.send_text(session, f"{icon} {describe(change)}")

    async def send_text(self, session: aiohttp.ClientSession, text: str) -> None:
        """Post any text (the weekly digest uses this too)."""
        await _post(session, self.url, {"text": text}, f"Slack {self.name}", {})


@dataclass
class TelegramReceiver:
    """Sends one message per change to a Telegram chat through a bot."""

    name: str
    chat_id: str
    token: str = field(repr=False)
    api_url: str = "https://api.telegram.org"
    levels: Sequence[str] = ALL_LEVELS

    async def send(self, session: aiohttp.ClientSession, change: AlertChange) -> None:
        """Call sendMessage."""
        await self.send_text(session, describe(change))

    async def send_text(self, session: aiohttp.ClientSession, text: str) -> None:
        """Send any text to the chat (the weekly digest uses this too)."""
        url = f"{self.api_url.rstrip('/')}/bot{self.token}/sendMessage"
        body = {"chat_id": self.chat_id, "text": text, "disable_web_page_preview": True}
        await _post(session, url, body, f"Telegram {self.name}", {})


@dataclass
class EmailReceiver:
    """Mails one message per change over SMTP (STARTTLS and login when configured)."""

    name: str
    host: str
    port: int
    from_address: str
    to: Sequence[str]
    starttls: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    levels: Sequence[str] = ALL_LEVELS
    timeout: float = 30.0

    async def send(self, session: aiohttp.ClientSession, change: AlertChange) -> None:
        """Send one mail."""
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = ", ".join(self.to)
        state = "answered" if change.level == RESOLVED else change.level
        message["Subject"] = f"[replywatch] {state}: {change.platform}/{change.account}"
        message.set_content(describe(change) + "\n\n" + json.dumps(change.to_json(), indent=2))
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                start_tls=self.starttls,
                username=self.username,
                password=self.password,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as err:
            raise DeliveryError(f"mail {self.name} not sent: {type(err).__name__}") from None


def build_receivers(config: Config) -> list[AlertReceiver]:
    """The receivers the config names, with their secrets read."""
    alerts = config.alerts
    receivers: list[AlertReceiver] = []
    if alerts.alertmanager is not None:
        token = config.resolve_receiver_secrets("alertmanager").get("token")
        receivers.append(
            AlertmanagerReceiver(alerts.alertmanager.url, alerts.resend_interval, token)
        )
    receivers += [
        _receiver(model, config.resolve_receiver_secrets(model.name)) for model in alerts.receivers
    ]
    return receivers


def _receiver(model: ReceiverModel, secrets: dict[str, str]) -> AlertReceiver:
    levels = model.levels
    if model.kind == "webhook":
        assert model.url is not None
        return WebhookReceiver(model.name, model.url, secrets.get("token"), levels)
    if model.kind == "slack":
        return SlackReceiver(model.name, secrets["url"], levels)
    if model.kind == "telegram":
        assert model.chat_id is not None
        return TelegramReceiver(
            model.name, model.chat_id, secrets["bot_token"], model.api_url, levels
        )
    assert model.smtp_host is not None and model.from_address is not None
    return EmailReceiver(
        model.name,
        model.smtp_host,
        model.smtp_port,
        model.from_address,
        model.to,
        model.starttls,
        secrets.get("username"),
        secrets.get("password"),
        levels,
    )


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
