"""Where per-conversation alerts are delivered: Alertmanager, a webhook, Slack, Telegram, e-mail.

Each receiver turns one :class:`AlertChange` into one request and raises
:class:`DeliveryError` (whose message never holds a URL or credential) when it did not land,
and only that. Every text a platform or customer controls is escaped for the receiver's
medium (:mod:`monitor.core.escaping`) and each Alertmanager alert is made valid for its
API, so an odd account name or thread link can neither inject markup nor get a batch refused.
"""

from __future__ import annotations

import asyncio
import email.errors
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

import aiohttp
import aiosmtplib

from monitor.config.loading import Config
from monitor.config.schema import ReceiverModel
from monitor.core import escaping as escape
from monitor.notify.conversation_alerts import RESOLVED, AlertChange

__all__ = [
    "AlertReceiver",
    "AlertmanagerReceiver",
    "DeliveryError",
    "EmailReceiver",
    "PushReport",
    "SlackReceiver",
    "TelegramReceiver",
    "WebhookReceiver",
    "build_receivers",
    "describe",
    "neutral",
]

ALERTNAME = "ReplywatchConversationWaiting"
# Alertmanager severities per level: escalation pages a second receiver (see the example
# routing in alerts/alertmanager.example.yml).
SEVERITY = {"warning": "warning", "breach": "critical", "escalated": "page"}
ALL_LEVELS = ("warning", "breach", "escalated", "resolved")
# Alertmanager's answers to a batch whose content it refuses: 422 (the API schema, e.g. a
# generatorURL that is no URI: nothing in the batch is kept), 400 (an alert's labels or
# times: the valid ones are kept). A proxy's 413 is also cured by smaller batches.
_CONTENT_REFUSED = frozenset({400, 413, 422})
# The most alerts remembered as already logged: each is logged once, not every resend.
_REMEMBERED_REFUSALS = 10_000

log = logging.getLogger("monitor.alerts")

# Alerts per keep-alive request: each body stays small enough to serialise in a blink.
_KEEP_ALIVE_BATCH = 500


class DeliveryError(Exception):
    """A notification did not reach its receiver; safe to log (no URL, no secret)."""


class AlertReceiver(Protocol):
    """Something that can be told about one alert change."""

    name: str
    levels: Sequence[str]

    async def send(self, session: aiohttp.ClientSession, change: AlertChange) -> None:
        """Deliver one change or raise DeliveryError."""
        ...


def neutral(change: AlertChange) -> AlertChange:
    """The change with its platform-given text on one line and its link a clean http(s) URL.

    What every receiver works from: names keep their characters but show controls as
    escapes, and a link that is not a usable http(s) URL is left out (None).
    """
    return replace(
        change,
        key=escape.one_line(change.key),
        platform=escape.one_line(change.platform),
        account=escape.one_line(change.account),
        channel=escape.one_line(change.channel),
        conversation=escape.one_line(change.conversation),
        link=escape.http_url(change.link),
    )


def describe(change: AlertChange, with_link: bool = True) -> str:
    """One plain line about the change (unescaped for any medium), for chat and mail."""
    change = neutral(change)
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
    return f"{text} {change.link}" if change.link and with_link else text


async def _post(
    session: aiohttp.ClientSession, url: str, body: Any, what: str, headers: dict[str, str]
) -> None:
    status, _reason = await _post_status(session, url, body, what, headers)
    if status >= 300:
        raise DeliveryError(f"{what} answered HTTP {status}")


async def _post_status(
    session: aiohttp.ClientSession, url: str, body: Any, what: str, headers: dict[str, str]
) -> tuple[int, str]:
    """The HTTP status and the start of the answer; DeliveryError when there is no answer."""
    try:
        async with session.post(url, json=body, headers=headers) as response:
            if response.status < 300:
                return response.status, ""
            start = await response.content.read(300)
            return response.status, start.decode("utf-8", errors="replace")
    except aiohttp.ClientError as err:
        # aiohttp's messages can carry the URL (a Slack URL or bot token is a secret).
        raise DeliveryError(f"{what} unreachable: {type(err).__name__}") from None
    except TimeoutError:
        raise DeliveryError(f"{what} timed out") from None
    except ValueError as err:
        # aiohttp refuses a header with a line break (a token file holding two lines); its
        # message quotes the header, so only the type is kept.
        raise DeliveryError(f"{what} request not sent: {type(err).__name__}") from None


@dataclass(frozen=True)
class PushReport:
    """What one push to Alertmanager did: alerts accepted, alerts refused for their content."""

    pushed: int = 0
    refused: int = 0

    def __add__(self, other: PushReport) -> PushReport:
        return PushReport(self.pushed + other.pushed, self.refused + other.refused)


@dataclass
class AlertmanagerReceiver:
    """Pushes alerts to Alertmanager's API v2 and keeps firing ones alive.

    Every alert is made valid for the API first; should Alertmanager still refuse a batch for
    its content, the batch is split in halves until the refused alerts are alone, so one bad
    alert never keeps the others from being (re)sent. Each refused alert is logged once.
    """

    url: str
    resend_interval: timedelta = timedelta(minutes=1)
    token: str | None = field(default=None, repr=False)
    name: str = "alertmanager"
    levels: Sequence[str] = ALL_LEVELS
    _logged: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    async def send(self, session: aiohttp.ClientSession, change: AlertChange) -> None:
        """Fire the new level and end the previous one (a new severity is a new alert)."""
        alerts = []
        if change.firing:
            alerts.append(self._alert(change, change.level, ends=None))
        if change.previous_level is not None:
            alerts.append(self._alert(change, change.previous_level, ends=change.changed_at))
        report = await self.push(session, alerts)
        if report.refused:
            raise DeliveryError(
                f"Alertmanager refused {report.refused} of {len(alerts)} alerts (content)"
            )

    async def refresh(
        self, session: aiohttp.ClientSession, firing: Iterable[AlertChange], now: datetime
    ) -> PushReport:
        """Re-send every firing alert so Alertmanager does not time it out.

        Raises DeliveryError only when Alertmanager cannot be reached or fails as a whole;
        alerts it refuses for their content are counted in the report (and logged once).
        """
        changes = list(firing)

        def build() -> list[dict[str, Any]]:
            return [self._alert(c, c.level, ends=None, now=now) for c in changes]

        # Thousands of firing alerts take a quarter of a second to build and clean: off the
        # event loop, and pushed in batches, so polls keep their schedule meanwhile.
        alerts = await asyncio.to_thread(build)
        report = PushReport()
        for start in range(0, len(alerts), _KEEP_ALIVE_BATCH):
            report += await self.push(session, alerts[start : start + _KEEP_ALIVE_BATCH])
        return report

    async def push(
        self, session: aiohttp.ClientSession, alerts: list[dict[str, Any]]
    ) -> PushReport:
        """POST alerts; a batch refused for its content is split until the refused are alone."""
        # Splitting costs about 2 requests per refused alert and halving; the budget caps the
        # worst case (everything refused) near one request per alert, plus a few.
        budget = [32 + len(alerts)]
        return await self._push_split(session, alerts, budget)

    async def _push_split(
        self, session: aiohttp.ClientSession, alerts: list[dict[str, Any]], budget: list[int]
    ) -> PushReport:
        if not alerts:
            return PushReport()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        budget[0] -= 1
        status, reason = await _post_status(
            session, f"{self.url.rstrip('/')}/api/v2/alerts", alerts, "Alertmanager", headers
        )
        if status < 300:
            return PushReport(pushed=len(alerts))
        if status not in _CONTENT_REFUSED:
            raise DeliveryError(f"Alertmanager answered HTTP {status}")
        if len(alerts) == 1 or budget[0] <= 0:
            for alert in alerts:
                self._log_refused(alert, status, reason)
            return PushReport(refused=len(alerts))
        half = len(alerts) // 2
        first = await self._push_split(session, alerts[:half], budget)
        return first + await self._push_split(session, alerts[half:], budget)

    def _log_refused(self, alert: dict[str, Any], status: int, reason: str) -> None:
        labels = alert["labels"]
        fingerprint = json.dumps(labels, sort_keys=True)
        if fingerprint in self._logged:
            return
        if len(self._logged) >= _REMEMBERED_REFUSALS:
            self._logged.clear()
        self._logged.add(fingerprint)
        # Label values are already on one line; Alertmanager's reason echoes the input.
        log.warning(
            "Alertmanager refused the alert for %s/%s conversation %s (HTTP %d): %s",
            labels.get("platform", "?"),
            labels.get("account", "?"),
            labels.get("conversation", "?"),
            status,
            escape.one_line(reason, 200),
            extra={
                "event": "alert_refused",
                "receiver": self.name,
                "platform": labels.get("platform"),
                "account": labels.get("account"),
                "status": status,
            },
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
        return escape.alertmanager_alert(labels, annotations, change.opened_at, end, change.link)


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
            **neutral(change).to_json(),
            "text": describe(change),
        }
        await _post(session, self.url, body, f"webhook {self.name}", headers)


@dataclass
class SlackReceiver:
    """Posts one message per change to a Slack incoming webhook."""

    name: str
    url: str = field(repr=False)
    levels: Sequence[str] = ALL_LEVELS

    def message(self, change: AlertChange) -> str:
        """The mrkdwn text for one change."""
        icon = {
            "warning": ":hourglass:",
            "breach": ":rotating_light:",
            "escalated": ":sos:",
            RESOLVED: ":white_check_mark:",
        }[change.level]
        text = escape.slack_text(describe(change, with_link=False))
        # The only markup in the message: a link built here from a validated http(s) URL.
        link = escape.slack_link(change.link)
        return f"{icon} {text} {link}".rstrip()

    async def send(self, session: aiohttp.ClientSession, change: AlertChange) -> None:
        """Post one message."""
        await self._post_mrkdwn(session, self.message(change))

    async def send_text(self, session: aiohttp.ClientSession, text: str) -> None:
        """Post plain text, escaped so none of it is markup (the weekly digest uses this)."""
        await self._post_mrkdwn(session, escape.slack_text(text))

    async def _post_mrkdwn(self, session: aiohttp.ClientSession, mrkdwn: str) -> None:
        await _post(session, self.url, {"text": mrkdwn}, f"Slack {self.name}", {})


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

    def body(self, text: str) -> dict[str, Any]:
        """The sendMessage request for plain ``text``."""
        # No parse_mode: Telegram then reads no markup at all, so nothing needs escaping
        # but controls (and the length, which it would refuse every time).
        return {
            "chat_id": self.chat_id,
            "text": escape.telegram_text(text),
            "disable_web_page_preview": True,
        }

    async def send_text(self, session: aiohttp.ClientSession, text: str) -> None:
        """Send plain text to the chat (the weekly digest uses this too)."""
        url = f"{self.api_url.rstrip('/')}/bot{self.token}/sendMessage"
        await _post(session, url, self.body(text), f"Telegram {self.name}", {})


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

    def message(self, change: AlertChange) -> EmailMessage:
        """The mail for one change; headers on one line, the body free of controls."""
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = ", ".join(self.to)
        state = "answered" if change.level == RESOLVED else change.level
        subject = f"[replywatch] {state}: {change.platform}/{change.account}"
        # The email package folds and encodes the value (RFC 2047); line breaks it refuses.
        message["Subject"] = escape.mail_header(subject)
        details = json.dumps(neutral(change).to_json(), indent=2)
        message.set_content(escape.lines(describe(change) + "\n\n" + details))
        return message

    async def send(self, session: aiohttp.ClientSession, change: AlertChange) -> None:
        """Send one mail."""
        try:
            message = self.message(change)
        except (ValueError, email.errors.MessageError) as err:
            # Not expected after escaping; a mail that cannot be written is this mail's failure.
            raise DeliveryError(f"mail {self.name} not written: {type(err).__name__}") from None
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
        except (aiosmtplib.SMTPException, OSError, ValueError) as err:
            # ValueError: aiosmtplib refuses options or messages it cannot use (a config slip).
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
