"""Outgoing email: rendered and queued in the view's transaction, sent after the commit.

A message is a row (`OutboundEmail`) added to the same transaction as what it is about, so a
sign-up that rolls back mails nothing and one that commits always has its mail.

Sending (`send_pending`) takes one due row at a time. A single statement claims it,
`UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING ...`, counting
the attempt and pushing `next_attempt_at` ahead by a lease, and is committed at once: no
transaction stays open while the mail server is talking. Two senders never claim the same
row: PostgreSQL skips rows another sender holds, and SQLite runs one writer at a time, so
the statement alone is atomic there and senders simply take turns. Each outcome (sent, or
the error and the next try after a growing backoff) is committed on its own, so one failure
never loses another message. A sender that dies mid-send leaves its row to be tried again
when the lease runs out: delivery is at least once, never silently lost.

Backends: SMTP when MAIL_URL is set; otherwise the console log and `instance/outbox/*.eml`.

Immediate delivery: views call `send_soon()` after `db.commit()`. It hands the ids of the
messages this session queued to one background thread per process (started when needed,
gone when idle) that sends them with a short SMTP timeout, in an app context and a session
of its own. The request neither waits for the mail server nor sees its errors; anything that
could not go stays queued for the worker (`flask --app patrons send-mail --loop 60`), which
also does every retry. Only this request's messages, not the whole queue, so the work a
request triggers stays small and retries keep their backoff. In tests (`app.testing`) the
same work runs inline, so a test sees the outcome at once and no thread outlives its test;
`app.config["MAIL_SEND_INLINE"]` overrides that choice.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import smtplib
import ssl
import threading
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from flask import Flask, current_app, g, render_template
from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.core.config import ConfigError, Settings
from patrons.models import OutboundEmail

log = logging.getLogger(__name__)

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
SMTP_TIMEOUT = 10.0
SOON_SMTP_TIMEOUT = 5.0  # send_soon: a slow server leaves the message to the worker sooner
ERROR_LENGTH = 300
_QUEUED = "patrons.mail.queued"  # session.info key: messages queued on that session
_SENDER = "patrons.mail.sender"  # app.extensions key: the background sender


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


def queue_message(
    db: Session, to: str, template: str, subject: str, **context: object
) -> OutboundEmail:
    """Render emails/<template>.txt and .html and add the message to `db`; the view commits."""
    to = to.strip()
    if "@" not in to or any(c.isspace() or not c.isprintable() for c in to):
        raise ValueError(f"not an email address: {to!r}")  # a header value must stay one line
    subject = " ".join(subject.split())[:255]
    settings: Settings = current_app.config["SETTINGS"]
    values = {
        "site_name": settings.site_name,
        "site_url": settings.site_url,
        "subject": subject,
        **context,
    }
    now = clock.now()
    message = OutboundEmail(
        to_address=to,
        subject=subject,
        text_body=render_template(f"emails/{template}.txt", **values),
        html_body=render_template(f"emails/{template}.html", **values),
        kind=template,
        status="queued",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    db.add(message)
    db.info.setdefault(_QUEUED, []).append(message)
    return message


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


@dataclass(frozen=True)
class Outgoing:
    """A claimed message as plain values: sending reads no row (and opens no transaction)."""

    id: int
    to: str
    kind: str
    subject: str
    text_body: str
    created_at: datetime
    email: EmailMessage


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
        text = text.replace(secret, "***")  # type: ignore[arg-type]
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


# --- transports -------------------------------------------------------------------------


class Transport(Protocol):
    unreachable: bool  # True once connecting failed: stop this run, the rest stays due

    def send(self, message: Outgoing) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False
    starttls: bool = False


def parse_mail_url(url: str) -> SmtpTarget:
    """MAIL_URL: smtp://[user:pass@]host[:port][?starttls=1] or smtps://... (implicit TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError("MAIL_URL must look like smtp://host:port or smtps://user:pass@host")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(query) - {"starttls"}
    if unknown or parts.path not in ("", "/"):
        raise ConfigError(f"MAIL_URL: only ?starttls=1 may follow the host, not {unknown or ''}")
    starttls = query.get("starttls", "").lower() in {"1", "true", "yes", "on"}
    implicit = parts.scheme == "smtps"
    if implicit and starttls:
        raise ConfigError("MAIL_URL: smtps:// already encrypts; drop ?starttls=1")
    try:
        port = parts.port or (465 if implicit else 25)
    except ValueError:
        raise ConfigError("MAIL_URL has a malformed port") from None
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit,
        starttls=starttls,
    )


def make_transport(settings: Settings, timeout: float = SMTP_TIMEOUT) -> Transport:
    if settings.mail_url:
        return SmtpTransport(settings, parse_mail_url(settings.mail_url), timeout)
    return OutboxTransport(settings)


class SmtpTransport:
    """One connection per run, opened on the first message and reopened after an error."""

    def __init__(self, settings: Settings, target: SmtpTarget, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self.envelope_from = parseaddr(settings.mail_from)[1]
        self.helo_name = _helo_name(settings)
        self.conn: smtplib.SMTP | None = None
        self.unreachable = False

    def send(self, message: Outgoing) -> None:
        if self.conn is None:
            try:
                self.conn = self._connect()
            except Exception:
                self.unreachable = True
                raise
        try:
            self.conn.send_message(message.email, self.envelope_from, [message.to])
        except Exception:
            self.close()  # the connection's state is unknown: start afresh for the next one
            raise

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        context = ssl.create_default_context()
        conn: smtplib.SMTP
        if t.implicit_tls:
            conn = smtplib.SMTP_SSL(
                t.host, t.port, self.helo_name, timeout=self.timeout, context=context
            )
        else:
            conn = smtplib.SMTP(t.host, t.port, self.helo_name, timeout=self.timeout)
        try:
            if t.starttls:
                conn.starttls(context=context)
            if t.username:
                conn.login(t.username, t.password or "")
        except Exception:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.quit()
            except Exception:
                conn.close()


def _helo_name(settings: Settings) -> str:
    """The site's host name for EHLO (smtplib's default, getfqdn(), can stall on DNS)."""
    host = urlsplit(settings.site_url).hostname or ""
    try:
        ipaddress.ip_address(host)
        return "localhost"
    except ValueError:
        return host if "." in host else "localhost"


class OutboxTransport:
    """No MAIL_URL: each message goes to the log and to instance/outbox/ as an .eml file."""

    unreachable = False

    def __init__(self, settings: Settings) -> None:
        self.folder = Path(settings.instance_path) / "outbox"
        self.production = settings.is_production

    def send(self, message: Outgoing) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # queue time, then id: `ls` lists the outbox in order, and a re-send overwrites
        name = f"{message.created_at:%Y%m%dT%H%M%S%fZ}-{message.id:010d}.eml"
        path = self.folder / name
        partial = self.folder / f".{name}.{os.getpid()}.{threading.get_ident()}.part"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # links inside
        with os.fdopen(fd, "wb") as fh:
            fh.write(message.email.as_bytes())
        os.replace(partial, path)
        if self.production:  # the body holds sign-in links: keep it out of production logs
            log.warning("MAIL_URL is not set: email %s to %s only written to %s",
                        message.id, message.to, path)  # fmt: skip
        else:
            log.info("email %s to %s: %s\n\n%s\n(written to %s)", message.id,
                     message.to, message.subject, message.text_body, path)  # fmt: skip

    def close(self) -> None:
        pass


# --- right after the request ------------------------------------------------------------


def send_soon(db: Session | None = None) -> None:
    """After the view's commit: send what `db` (the request's session) queued, off the request.

    Never raises and never waits for the mail server (except inline, in tests).
    """
    try:
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        session = db if db is not None else g.get("db_session")
        queued = session.info.pop(_QUEUED, []) if session is not None else []
        states = (inspect(message) for message in queued)
        ids = [state.identity[0] for state in states if state.persistent and state.identity]
        if not ids:
            return
        if app.config.get("MAIL_SEND_INLINE", app.testing):
            _send_ids(app, ids)
        else:
            _background_sender(app).submit(ids)
    except Exception:
        log.exception("sending right away failed; the messages stay queued for send-mail")


def _send_ids(app: Flask, ids: list[int]) -> None:
    with app.app_context():
        session = app.extensions["db.sessionmaker"]()
        try:
            settings = app.config["SETTINGS"]
            send_pending(session, settings, len(ids), ids=ids, timeout=SOON_SMTP_TIMEOUT)
        finally:
            session.close()


class _BackgroundSender:
    """One thread per app and process, started when there is work and gone when there is none."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.pending: list[int] = []
        self.thread: threading.Thread | None = None

    def submit(self, ids: list[int]) -> None:
        with self.lock:
            self.pending.extend(ids)
            if self.thread is None:
                # not a daemon: a worker shutting down finishes the message in hand (bounded
                # by the SMTP timeout) instead of leaving it for the lease to run out
                self.thread = threading.Thread(target=self._run, name="patrons-mail")
                self.thread.start()

    def _run(self) -> None:
        while True:
            with self.lock:
                ids, self.pending = self.pending, []
                if not ids:
                    self.thread = None
                    return
            try:
                _send_ids(self.app, ids)
            except Exception:
                log.exception("sending right away failed; the messages stay queued for send-mail")

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.lock:
                thread = self.thread
            if thread is None:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            thread.join(left)  # a submit meanwhile may have started another: look again


_senders_lock = threading.Lock()


def _background_sender(app: Flask) -> _BackgroundSender:
    with _senders_lock:
        sender = app.extensions.get(_SENDER)
        if sender is None or sender.pid != os.getpid():  # a forked worker starts its own
            sender = app.extensions[_SENDER] = _BackgroundSender(app)
        return sender


def wait_for_background_sends(app: Flask, timeout: float | None = None) -> bool:
    """Wait for `send_soon`'s thread to finish (tests, shutdown); False if it is still busy."""
    sender = app.extensions.get(_SENDER)
    return sender.wait(timeout) if sender is not None else True
