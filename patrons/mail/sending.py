"""Sending what is due, one claimed row at a time, each outcome committed on its own
(the claim, the lease and the backoff are described in patrons/mail/__init__.py)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import unquote, urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.core.config import Settings
from patrons.mail.transports import SMTP_TIMEOUT, Outgoing, Transport, make_transport
from patrons.models import OutboundEmail

log = logging.getLogger("patrons.mail")  # one logger for the whole mail package

MAX_ATTEMPTS = 8
# wait after the 1st, 2nd, ... failed attempt; the 8th failure gives up
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
)
LEASE = timedelta(minutes=10)  # a claimed message is due again if its sender never reports
ERROR_LENGTH = 300


@dataclass(frozen=True)
class SendReport:
    """What one `send_pending` run did."""

    sent: int = 0
    deferred: int = 0  # failed this time, queued again for a later try
    failed: int = 0  # failed for the last time (MAX_ATTEMPTS)

    @property
    def total(self) -> int:
        return self.sent + self.deferred + self.failed

    def summary(self) -> str:
        return f"Sent {self.sent}, will retry {self.deferred}, gave up on {self.failed}."


def send_pending(
    db: Session,
    settings: Settings,
    limit: int = 100,
    *,
    ids: Collection[int] | None = None,
    timeout: float = SMTP_TIMEOUT,
) -> SendReport:
    """Send up to `limit` due messages (of `ids`, if given), committing each on its own.

    Unlike a service it commits, so give it a session with nothing else pending.
    """
    transport = make_transport(settings, timeout)  # a bad MAIL_URL fails before any claim
    outcomes: Counter[str] = Counter()
    try:
        while outcomes.total() < limit:
            message = _claim(db, ids)
            if message is None:
                break
            outcomes[_deliver(db, message, settings, transport)] += 1
            if transport.unreachable:
                break  # the rest would only wait for the same timeout; they stay due
    finally:
        transport.close()
    return SendReport(**outcomes)


def _claim(db: Session, ids: Collection[int] | None) -> OutboundEmail | None:
    now = clock.now()
    due = (
        select(OutboundEmail.id)
        .where(OutboundEmail.status == "queued", OutboundEmail.next_attempt_at <= now)
        .order_by(OutboundEmail.next_attempt_at, OutboundEmail.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has no such clause (or need)
    )
    if ids is not None:
        due = due.where(OutboundEmail.id.in_(list(ids)))
    claim = (
        update(OutboundEmail)
        .where(OutboundEmail.id == due.scalar_subquery())
        .values(attempts=OutboundEmail.attempts + 1, next_attempt_at=now + LEASE)
        .returning(OutboundEmail)
    )
    options = {"synchronize_session": False, "populate_existing": True}
    message = db.scalars(claim, execution_options=options).one_or_none()
    if message is None:
        db.commit()
    return message


def _deliver(db: Session, message: OutboundEmail, settings: Settings, transport: Transport) -> str:
    """Send a claimed message; record and commit the outcome: "sent", "deferred" or "failed"."""
    ident, to, kind, attempt = message.id, message.to_address, message.kind, message.attempts
    outgoing: Outgoing | None = None
    error: Exception | None = None
    try:
        email = build_message(message, settings)
        outgoing = Outgoing(
            ident, to, kind, message.subject, message.text_body, message.created_at, email
        )
    except Exception as exc:  # e.g. an address the email package refuses
        error = exc
    db.commit()  # the claim: no transaction stays open while the server talks
    if outgoing is not None:
        try:
            transport.send(outgoing)
        except Exception as exc:
            error = exc
        else:
            message.status, message.sent_at, message.last_error = "sent", clock.now(), None
            db.commit()
            return "sent"
    assert error is not None
    last_error = describe_error(error, settings)
    gave_up = attempt >= MAX_ATTEMPTS
    message.last_error = last_error
    if gave_up:
        message.status = "failed"
    else:
        message.next_attempt_at = clock.now() + backoff(attempt)
    db.commit()
    log.warning("email %s (%s) to %s not sent, attempt %d%s: %s", ident, kind, to,
                attempt, " (the last)" if gave_up else "", last_error)  # fmt: skip
    return "failed" if gave_up else "deferred"


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed try."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


def describe_error(exc: BaseException, settings: Settings) -> str:
    """Exception class and a short message, with the SMTP password (if any) blanked out."""
    text = f"{type(exc).__name__}: {exc}"
    password = urlsplit(settings.mail_url or "").password
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(secret, "***")  # type: ignore[arg-type]  # None removed by the set difference
    return " ".join(text.split())[:ERROR_LENGTH]


def build_message(message: OutboundEmail, settings: Settings) -> EmailMessage:
    """The message as sent: text and HTML alternatives, a Message-ID stable across retries."""
    email = EmailMessage()
    email["From"] = settings.mail_from
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Date"] = format_datetime(message.created_at)
    stamp = int(message.created_at.timestamp())
    email["Message-ID"] = f"<patrons.{message.id}.{stamp}@{_sender_domain(settings)}>"
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: autoresponders stay quiet
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    return email


def _sender_domain(settings: Settings) -> str:
    return parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"
