"""Mailing the weekly summary (and a chat digest), once per week and recipient.

After the configured day and hour (in the summary's time zone) the last complete week is due.
Each recipient gets one HTML mail with the chart inline (Content-ID) and the PDF attached,
over SMTP with STARTTLS and login from the config. A send is recorded in ``summary_sends``
only once the server accepted it; a failure is recorded with its reason and retried at the
next round, so a summary is neither lost nor sent twice for the same week and recipient.
One recipient's failure, whatever it raised, never keeps the others from their summary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import aiohttp
import aiosmtplib
from sqlalchemy import Engine, select, update

from monitor.config.loading import Config
from monitor.config.schema import RecipientModel
from monitor.core.escaping import one_line
from monitor.notify.receivers import AlertReceiver, DeliveryError, SlackReceiver, TelegramReceiver
from monitor.store.accounts import AccountDirectory
from monitor.store.dialect_insert import insert_for
from monitor.store.tables import SENDS
from monitor.summary.command import select_accounts
from monitor.summary.compose import IsoWeek, WeekSummary
from monitor.summary.data import summarise_week
from monitor.summary.locale import Locale, get_locale
from monitor.summary.page import advice_text

__all__ = ["SENDS", "SendReport", "SummaryMailer", "digest_text", "due_week"]

log = logging.getLogger("monitor.summary")
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def due_week(now: datetime, zone: str, day: str, hour: int) -> IsoWeek | None:
    """The last complete week, once this week's send moment has passed; else the one before."""
    local = now.astimezone(ZoneInfo(zone))
    monday = local.date() - timedelta(days=local.weekday())
    moment = datetime.combine(
        monday + timedelta(days=_DAYS.index(day)), datetime.min.time(), ZoneInfo(zone)
    ) + timedelta(hours=hour)
    # Before this week's moment, last week's summary is not due yet: the one before is.
    weeks_back = 1 if local >= moment else 2
    year, week, _ = (monday - timedelta(days=7 * weeks_back)).isocalendar()
    return IsoWeek(year, week, zone)


@dataclass(frozen=True)
class SendReport:
    """What one round did."""

    week: str
    sent: int
    failed: int
    already: int


class SummaryMailer:
    """Sends due summaries to the configured recipients and digest receivers."""

    def __init__(
        self,
        engine: Engine,
        accounts: AccountDirectory,
        config: Config,
        chat: Sequence[AlertReceiver] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.accounts = accounts
        self.config = config
        self.settings = config.summary
        self.zone = self.settings.timezone or config.default_timezone
        names = set(self.settings.digest_receivers)
        self.chat = [r for r in chat if r.name in names]
        self.clock = clock

    async def send_due(self, session: aiohttp.ClientSession) -> SendReport | None:
        """Send last week's summary to everyone who has not had it; retry earlier failures."""
        week = due_week(self.clock(), self.zone, self.settings.day, self.settings.hour)
        if week is None or not (self.settings.recipients or self.chat):
            return None
        sent = failed = already = 0
        for key, recipient in self._recipients():
            if self._was_sent(str(week), key):
                already += 1
                continue
            try:
                summary = self._summary(week, recipient)
                await self._mail(summary, recipient)
            except Exception as err:
                # Broad on purpose: besides an unreachable server, a summary that cannot be
                # built or written (odd text in the week's data) fails this recipient only;
                # raising would leave every later recipient and the digests without theirs.
                failed += 1
                self._record(str(week), key, error=_failure(err))
                log.warning(
                    "summary %s for %s not sent (retried later): %s",
                    week,
                    key,
                    type(err).__name__,
                    extra={
                        "event": "summary_failed",
                        "week": str(week),
                        "recipient": key,
                        "error": type(err).__name__,
                    },
                )
                continue
            sent += 1
            self._record(str(week), key)
            log.info(
                "summary %s sent to %s",
                week,
                key,
                extra={"event": "summary_sent", "week": str(week), "recipient": key},
            )
        for receiver in self.chat:
            key = f"digest:{receiver.name}"
            if self._was_sent(str(week), key):
                already += 1
                continue
            try:
                await self._digest(session, receiver, self._summary(week, None))
            except Exception as err:
                # Broad on purpose, as for the mails above: one digest, not the round.
                failed += 1
                self._record(str(week), key, error=_failure(err))
                # A refused delivery is the receiver's to report; anything else is ours.
                if not isinstance(err, DeliveryError):
                    log.warning(
                        "digest %s for %s not written: %s",
                        week,
                        key,
                        type(err).__name__,
                        extra={
                            "event": "digest_failed",
                            "week": str(week),
                            "recipient": key,
                            "error": type(err).__name__,
                        },
                    )
                continue
            sent += 1
            self._record(str(week), key)
        return SendReport(str(week), sent, failed, already)

    def _recipients(self) -> list[tuple[str, RecipientModel]]:
        out = []
        for recipient in self.settings.recipients:
            selection = recipient.group or ",".join(recipient.accounts) or "*"
            out.append((f"{','.join(sorted(recipient.to))}|{selection}"[:300], recipient))
        return out

    def _summary(self, week: IsoWeek, recipient: RecipientModel | None) -> WeekSummary:
        names = (
            []
            if recipient is None
            else select_accounts(self.config, recipient.accounts, recipient.group)
        )
        with self.engine.connect() as connection:
            return summarise_week(connection, self.accounts, week, self.clock(), names)

    async def _mail(self, summary: WeekSummary, recipient: RecipientModel) -> None:
        from monitor.summary.render import render_html, render_pdf  # heavy: lazily

        settings = self.settings
        locale = get_locale(recipient.locale or settings.locale)
        rendered = render_html(summary, locale, images="cid")
        message = EmailMessage()
        message["From"] = settings.from_address or ""
        message["To"] = ", ".join(recipient.to)
        message["Subject"] = f"{locale.text('title')}: {summary.week}"
        message.set_content(advice_text(summary, locale))
        message.add_alternative(rendered.html, subtype="html")
        html_part = message.get_body(preferencelist=("html",))
        assert isinstance(html_part, EmailMessage)
        for cid, image in rendered.images.items():
            html_part.add_related(image, maintype="image", subtype="png", cid=f"<{cid}>")
        message.add_attachment(
            render_pdf(summary, locale),
            maintype="application",
            subtype="pdf",
            filename=f"replywatch-{summary.week}.pdf",
        )
        secrets = self.config.resolve_receiver_secrets("summary") if settings.secrets else {}
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            start_tls=settings.starttls,
            username=secrets.get("username"),
            password=secrets.get("password"),
            timeout=60,
        )

    async def _digest(
        self, session: aiohttp.ClientSession, receiver: AlertReceiver, summary: WeekSummary
    ) -> None:
        if isinstance(receiver, SlackReceiver | TelegramReceiver):
            # Plain text: each receiver escapes it for its medium.
            await receiver.send_text(
                session, digest_text(summary, get_locale(self.settings.locale))
            )

    def _was_sent(self, week: str, key: str) -> bool:
        with self.engine.connect() as connection:
            sent = connection.execute(
                select(SENDS.c.sent_at).where(SENDS.c.week == week, SENDS.c.recipient == key)
            ).scalar_one_or_none()
        return sent is not None

    def _record(self, week: str, key: str, error: str | None = None) -> None:
        now = self.clock()
        with self.engine.begin() as connection:
            connection.execute(
                insert_for(connection, SENDS).on_conflict_do_nothing(),
                [{"week": week, "recipient": key, "attempts": 0}],
            )
            values: dict[str, object] = {"attempts": SENDS.c.attempts + 1}
            if error is None:
                values["sent_at"] = now
                values["last_error"] = None
            else:
                values["last_error"] = error[:500]
            connection.execute(
                update(SENDS).where(SENDS.c.week == week, SENDS.c.recipient == key).values(**values)
            )


def digest_text(summary: WeekSummary, locale: Locale) -> str:
    """The chat digest as plain text: title, one line per account, the advice."""
    lines = [f"{locale.text('title')}: {summary.week}"]
    for account in summary.accounts:
        figures = account.this_week
        # Account names come from platforms: one line each, so none can fake a digest line.
        lines.append(
            f"{one_line(account.account)}: {locale.percent(figures.response_rate)}, "
            f"{locale.duration(figures.mean_response_seconds)}"
        )
    lines.append(one_line(advice_text(summary, locale)))
    return "\n".join(lines)


def _failure(err: Exception) -> str:
    # What is recorded for a failed send. Only the type for an unexpected error: its message
    # may quote the text that could not be written.
    if isinstance(err, DeliveryError):
        return str(err)  # safe by contract: no URL, no secret
    if isinstance(err, aiosmtplib.SMTPException | OSError):
        return f"{type(err).__name__}: {err}"
    return f"not written: {type(err).__name__}"
