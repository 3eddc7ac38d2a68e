"""Where a message goes: SMTP when MAIL_URL is smtp:// or smtps://; a folder when it is
file:///folder (chosen on purpose: nothing is sent); unset (development only, production
refuses it), the log and instance/outbox/."""

from __future__ import annotations

import ipaddress
import logging
import os
import smtplib
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from patrons.core.config import ConfigError, Settings

log = logging.getLogger("patrons.mail")  # one logger for the whole mail package

SMTP_TIMEOUT = 10.0


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
    if settings.mail_url and urlsplit(settings.mail_url).scheme == "file":
        return OutboxTransport(settings, Path(unquote(urlsplit(settings.mail_url).path)))
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
    """No MAIL_URL: each message goes to the log and to instance/outbox/ as an .eml file;
    MAIL_URL=file:///folder: to that folder (the operator's choice, logged without the body)."""

    unreachable = False

    def __init__(self, settings: Settings, folder: Path | None = None) -> None:
        self.folder = folder or Path(settings.instance_path) / "outbox"
        self.folder_chosen = folder is not None
        self.production = settings.is_production or self.folder_chosen

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
            log.log(logging.INFO if self.folder_chosen else logging.WARNING,
                    "email %s to %s only written to %s (MAIL_URL=%s)", message.id, message.to,
                    path, "file://…" if self.folder_chosen else "unset")  # fmt: skip
        else:
            log.info("email %s to %s: %s\n\n%s\n(written to %s)", message.id,
                     message.to, message.subject, message.text_body, path)  # fmt: skip

    def close(self) -> None:
        pass
