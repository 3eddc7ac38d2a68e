"""Mail: rendering and queueing, delivery to a real SMTP server on loopback (aiosmtpd), the
outbox without MAIL_URL, retries with backoff, concurrent senders, send_soon, send-mail."""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from click.testing import Result
from flask import Flask, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons import cli, create_app, mail
from patrons.core import clock
from patrons.core.config import ConfigError, Settings
from patrons.models import OutboundEmail
from tests.conftest import empty_tables, make_settings

LINK = "http://patrons.test/verify?token=abc.def&x=1"
FROM = '"The Steppe Courier" <news@patrons.test>'


# --- a real SMTP server on loopback ------------------------------------------------------


class Collector:
    """aiosmtpd handler keeping every accepted envelope; refuses recipients named refused@."""

    def __init__(self, delay: float = 0.0) -> None:
        self.envelopes: list = []  # type: ignore[type-arg]
        self.delay = delay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address.startswith("refused@"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.delay:
            await asyncio.sleep(self.delay)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(e.content, policy=email.policy.default)  # type: ignore[misc]
            for e in self.envelopes
        ]


class LoopbackController(Controller):
    """Controller on port 0: the kernel picks a free port, read back once it is bound."""

    def _trigger_server(self) -> None:
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        super()._trigger_server()


def start_server(handler: Collector, port: int = 0, **kwargs: object) -> LoopbackController:
    controller = LoopbackController(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def smtp() -> Iterator[tuple[Collector, int]]:
    handler = Collector()
    controller = start_server(handler)
    yield handler, controller.port
    controller.stop()


def closed_port() -> int:
    """A loopback port nobody listens on (bound for a moment to learn a free one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word: a hung mail server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


# --- apps, clock, helpers -----------------------------------------------------------------


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Apps with their own settings (MAIL_URL...); waits for their mail threads, then cleans up."""
    apps: list[Flask] = []

    def factory(mail_url: str | None = None, **overrides: object) -> Flask:
        instance = tmp_path / f"instance{len(apps)}"
        settings = make_settings(
            database_url, instance, mail_url=mail_url, mail_from=FROM, **overrides
        )
        app = create_app(settings)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        assert mail.wait_for_background_sends(app, timeout=30)
        empty_tables(app)
        app.extensions["db.engine"].dispose()


@pytest.fixture
def sessions(make_app: Callable[..., Flask]) -> Iterator[Callable[[Flask], Session]]:
    opened: list[Session] = []

    def open_session(app: Flask) -> Session:
        opened.append(app.extensions["db.sessionmaker"]())
        return opened[-1]

    yield open_session
    for session in opened:
        session.close()


class FakeClock:
    """clock.now() moved ahead at will; it still runs, so rows keep a realistic order."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake.now)
    return fake


def queue(app: Flask, db: Session, to: str = "reader@example.org", commit: bool = True):  # type: ignore[no-untyped-def]
    with app.app_context():
        message = mail.queue_message(
            db, to, "verify_email", "Confirm your email address", link=LINK, hours=48
        )
    if commit:
        db.commit()
    return message


def rows(db: Session) -> list[OutboundEmail]:
    db.rollback()  # end the snapshot, and read afresh what other sessions committed
    query = select(OutboundEmail).order_by(OutboundEmail.id)
    return list(db.scalars(query, execution_options={"populate_existing": True}))


def settings_of(app: Flask) -> Settings:
    return app.config["SETTINGS"]


def send(app: Flask, db: Session, **kwargs: object) -> mail.SendReport:
    return mail.send_pending(db, settings_of(app), **kwargs)  # type: ignore[arg-type]


def run(app: Flask, *args: str) -> Result:
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


def add_queueing_route(app: Flask) -> None:
    """A view shaped like sign-up: queue, commit once, then send_soon()."""
    from patrons.core.db import session as db

    @app.get("/_test/queue")
    def queue_view():  # type: ignore[no-untyped-def]
        mail.queue_message(
            db, request.args["to"], "verify_email", "Confirm your email address",
            link=LINK, hours=48,
        )  # fmt: skip
        if request.args.get("rollback"):
            db.rollback()
        else:
            db.commit()
        mail.send_soon()
        return "queued"


# --- rendering and queueing ---------------------------------------------------------------


def test_queue_message_renders_both_templates_and_leaves_the_commit_to_the_view(app, db):
    message = queue(app, db, commit=False)
    assert (message.status, message.attempts, message.kind) == ("queued", 0, "verify_email")
    assert message.to_address == "reader@example.org"
    assert message.subject == "Confirm your email address"
    assert LINK in message.text_body and "expires in 48 hours" in message.text_body
    assert "did not sign up" in message.text_body and "The Steppe Courier" in message.text_body
    assert "&amp;x=1" in message.html_body and "&x=1" not in message.html_body  # escaped
    assert "<h1>Confirm your email address</h1>" in message.html_body
    assert "http://patrons.test" in message.html_body and "expires in 48 hours" in message.html_body
    assert 'style="' not in message.html_body  # the layout's CSS is one <style> block
    db.rollback()
    assert rows(db) == []  # nothing was committed by queue_message


@pytest.mark.parametrize("bad", ["no-at-sign", "a@b\r\nBcc: x@y", "a b@example.org", ""])
def test_queue_message_refuses_an_address_that_could_break_the_headers(app, db, bad):
    with pytest.raises(ValueError):
        queue(app, db, to=bad, commit=False)


def test_a_subject_is_always_one_line(app, db):
    with app.app_context():
        message = mail.queue_message(
            db, "r@example.org", "verify_email", "Two\r\nBcc: lines", link=LINK, hours=1
        )
    assert message.subject == "Two Bcc: lines"


# --- SMTP ---------------------------------------------------------------------------------


def test_a_queued_message_is_delivered_over_smtp_with_both_parts(make_app, sessions, smtp):
    handler, port = smtp
    app = make_app(f"smtp://127.0.0.1:{port}")
    db = sessions(app)
    queue(app, db)

    report = send(app, db)

    assert (report.sent, report.deferred, report.failed) == (1, 0, 0)
    [envelope] = handler.envelopes
    assert envelope.mail_from == "news@patrons.test"
    assert envelope.rcpt_tos == ["reader@example.org"]
    [message] = handler.messages()
    assert message["To"] == "reader@example.org"
    assert str(message["From"]) == "The Steppe Courier <news@patrons.test>"  # FROM, parsed
    assert message["Subject"] == "Confirm your email address"
    assert message["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<patrons\.\d+\.\d+@patrons\.test>", message["Message-ID"])
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert LINK in text and "expires in 48 hours" in text
    assert "Confirm your email address</h1>" in html and LINK.replace("&", "&amp;") in html
    [row] = rows(db)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.sent_at is not None and row.sent_at.tzinfo is not None

    assert send(app, db).total == 0  # sent is sent: nothing goes twice
    assert len(handler.envelopes) == 1


def test_smtp_login_from_the_url(make_app, sessions):
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        logins.append((auth_data.login, auth_data.password))
        ok = auth_data.password == b"p@ss word"
        return AuthResult(success=ok, handled=ok)  # handled=False: the server answers 535

    handler = Collector()
    controller = start_server(handler, authenticator=authenticator, auth_require_tls=False)
    try:
        good = make_app(f"smtp://mailer:p%40ss%20word@127.0.0.1:{controller.port}")
        db = sessions(good)
        queue(good, db)
        assert send(good, db).sent == 1
        assert logins == [(b"mailer", b"p@ss word")] and len(handler.envelopes) == 1

        bad = make_app(f"smtp://mailer:wrong-secret@127.0.0.1:{controller.port}")
        queue(bad, db, to="second@example.org")
        assert send(bad, db).deferred == 1
        error = rows(db)[-1].last_error
        assert error is not None and error.startswith("SMTPAuthenticationError")
        assert "wrong-secret" not in error
    finally:
        controller.stop()


def test_a_refused_recipient_does_not_hold_up_the_next_message(make_app, sessions, smtp):
    handler, port = smtp
    app = make_app(f"smtp://127.0.0.1:{port}")
    db = sessions(app)
    queue(app, db, to="refused@example.org")
    queue(app, db, to="reader@example.org")

    report = send(app, db)

    assert (report.sent, report.deferred) == (1, 1)
    refused, delivered = rows(db)
    assert refused.status == "queued" and refused.attempts == 1
    assert refused.last_error is not None and refused.last_error.startswith("SMTPRecipientsRefused")
    assert delivered.status == "sent"
    assert [e.rcpt_tos for e in handler.envelopes] == [["reader@example.org"]]


def test_server_down_keeps_the_message_queued_and_a_later_run_sends_it_once(
    make_app, sessions, fake_clock
):
    port = closed_port()
    app = make_app(f"smtp://127.0.0.1:{port}")
    db = sessions(app)
    queue(app, db)
    queue(app, db, to="second@example.org")

    before = clock.now()
    report = send(app, db)

    # the first failure to connect ends the run: the second message was not even tried
    assert (report.sent, report.deferred, report.failed) == (0, 1, 0)
    first, second = rows(db)
    assert (first.status, first.attempts) == ("queued", 1)
    assert first.last_error is not None and first.last_error.startswith("ConnectionRefusedError")
    assert first.next_attempt_at > clock.now()
    assert abs(first.next_attempt_at - before - mail.BACKOFF[0]) < timedelta(seconds=30)
    assert (second.status, second.attempts) == ("queued", 0)

    handler = Collector()
    controller = start_server(handler, port=port)
    try:
        assert send(app, db).sent == 1  # only the untried one is due yet
        fake_clock.advance(timedelta(minutes=2))
        assert send(app, db).sent == 1
        assert send(app, db).total == 0
    finally:
        controller.stop()
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == [
        "reader@example.org",
        "second@example.org",
    ]
    first, second = rows(db)
    assert (first.status, first.attempts, first.last_error) == ("sent", 2, None)
    assert (second.status, second.attempts) == ("sent", 1)


def test_after_eight_failures_the_message_is_failed_and_left_alone(make_app, sessions, fake_clock):
    app = make_app(f"smtp://127.0.0.1:{closed_port()}")
    db = sessions(app)
    queue(app, db)
    waits = []
    for attempt in range(1, mail.MAX_ATTEMPTS + 1):
        before = clock.now()
        report = send(app, db)
        [row] = rows(db)
        assert row.attempts == attempt
        if attempt < mail.MAX_ATTEMPTS:
            assert (report.deferred, row.status) == (1, "queued")
            waits.append(row.next_attempt_at - before)
            assert send(app, db).total == 0  # not due before its time
            fake_clock.advance(waits[-1] + timedelta(seconds=1))
    assert (report.failed, row.status) == (1, "failed")
    assert row.last_error is not None and row.sent_at is None
    expected = [timedelta(minutes=m) for m in (1, 5, 30, 120, 360)]
    assert all(abs(w - e) < timedelta(seconds=30) for w, e in zip(waits, expected, strict=False))
    assert waits == sorted(waits)

    fake_clock.advance(timedelta(days=30))
    assert send(app, db).total == 0
    assert rows(db)[0].attempts == mail.MAX_ATTEMPTS


def test_two_senders_at_once_never_send_a_message_twice(make_app, sessions):
    handler = Collector(delay=0.05)  # slow enough that the two runs overlap
    controller = start_server(handler)
    try:
        app = make_app(f"smtp://127.0.0.1:{controller.port}")
        db = sessions(app)
        count = 12
        for i in range(count):
            queue(app, db, to=f"reader{i}@example.org", commit=False)
        db.commit()
        start = threading.Barrier(2)
        reports: list[mail.SendReport] = []
        errors: list[BaseException] = []

        def sender() -> None:
            session = sessions(app)
            start.wait()
            try:
                reports.append(send(app, session))
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=sender) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        controller.stop()

    assert errors == []
    assert sorted(r.sent for r in reports) != [0, count]  # both really sent some
    assert sum(r.sent for r in reports) == count
    recipients = [e.rcpt_tos[0] for e in handler.envelopes]
    assert sorted(recipients) == sorted(f"reader{i}@example.org" for i in range(count))
    assert {(r.status, r.attempts) for r in rows(db)} == {("sent", 1)}


# --- no MAIL_URL: console and outbox ------------------------------------------------------


def test_without_mail_url_messages_land_in_the_outbox_and_the_log(app, db, caplog, fake_clock):
    caplog.set_level(logging.INFO, logger="patrons.mail")
    first = queue(app, db)
    fake_clock.advance(timedelta(seconds=1))
    second = queue(app, db, to="second@example.org")

    report = send(app, db)

    assert report.sent == 2
    outbox = settings_of(app).instance_path / "outbox"
    files = sorted(outbox.iterdir())
    assert [p.name for p in files] == sorted(p.name for p in files)
    assert all(re.fullmatch(r"\d{8}T\d{12}Z-\d{10}\.eml", p.name) for p in files)
    assert [int(p.stem.rsplit("-", 1)[1]) for p in files] == [first.id, second.id]
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "reader@example.org"
    assert parsed["Subject"] == "Confirm your email address"
    assert parsed.get_content_type() == "multipart/alternative"
    assert LINK in parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "</h1>" in parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert files[0].stat().st_mode & 0o077 == 0  # sign-in links: readable by the owner only
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "patrons.mail")
    assert "reader@example.org" in logged and LINK in logged
    assert {r.status for r in rows(db)} == {"sent"}


def test_in_production_the_console_gets_no_body(make_app, sessions, caplog, tmp_path):
    app = make_app(None, env="production")
    db = sessions(app)
    caplog.set_level(logging.INFO, logger="patrons.mail")
    queue(app, db)
    assert send(app, db).sent == 1
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "patrons.mail")
    assert "reader@example.org" in logged and "token=" not in logged


# --- send_soon ----------------------------------------------------------------------------


def test_send_soon_after_a_request_never_raises_when_smtp_is_down(make_app, sessions):
    app = make_app(f"smtp://127.0.0.1:{closed_port()}")
    add_queueing_route(app)

    response = app.test_client().get("/_test/queue?to=reader@example.org")

    assert response.status_code == 200
    [row] = rows(sessions(app))
    assert (row.status, row.attempts) == ("queued", 1)
    assert row.last_error is not None and row.next_attempt_at > clock.now()


def test_send_soon_delivers_this_requests_mail_in_the_background(make_app, sessions, smtp):
    handler, port = smtp
    app = make_app(f"smtp://127.0.0.1:{port}")
    app.config["MAIL_SEND_INLINE"] = False
    add_queueing_route(app)
    db = sessions(app)
    older = queue(app, db, to="older@example.org")  # queued elsewhere: the worker's job

    response = app.test_client().get("/_test/queue?to=reader@example.org")

    assert response.status_code == 200
    assert mail.wait_for_background_sends(app, timeout=30)
    assert [e.rcpt_tos for e in handler.envelopes] == [["reader@example.org"]]
    status = {r.to_address: r.status for r in rows(db)}
    assert status == {older.to_address: "queued", "reader@example.org": "sent"}


def test_send_soon_in_the_background_does_not_wait_for_a_hung_server(
    make_app, sessions, silent_port, monkeypatch
):
    monkeypatch.setattr(mail.soon, "SOON_SMTP_TIMEOUT", 1.0)
    app = make_app(f"smtp://127.0.0.1:{silent_port}")
    app.config["MAIL_SEND_INLINE"] = False
    add_queueing_route(app)
    client = app.test_client()

    started = time.monotonic()
    response = client.get("/_test/queue?to=reader@example.org")
    elapsed = time.monotonic() - started

    assert response.status_code == 200 and elapsed < 1.0
    assert mail.wait_for_background_sends(app, timeout=30)
    [row] = rows(sessions(app))
    assert (row.status, row.attempts) == ("queued", 1)
    assert row.last_error is not None and "timed out" in row.last_error


def test_send_soon_sends_nothing_for_a_rolled_back_request(make_app, sessions, smtp):
    handler, port = smtp
    app = make_app(f"smtp://127.0.0.1:{port}")
    add_queueing_route(app)
    response = app.test_client().get("/_test/queue?to=reader@example.org&rollback=1")
    assert response.status_code == 200
    assert rows(sessions(app)) == [] and handler.envelopes == []


def test_send_soon_outside_a_request_logs_instead_of_raising(caplog):
    mail.send_soon()  # no app context at all
    assert "stay queued" in caplog.text


# --- the send-mail command ----------------------------------------------------------------


def test_send_mail_command_sends_the_queue_and_prints_counts(make_app, sessions, smtp):
    handler, port = smtp
    app = make_app(f"smtp://127.0.0.1:{port}")
    db = sessions(app)
    queue(app, db)
    queue(app, db, to="refused@example.org")

    result = run(app, "send-mail")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Sent 1, will retry 1, gave up on 0."
    assert len(handler.envelopes) == 1
    assert run(app, "send-mail").output.strip() == "Sent 0, will retry 0, gave up on 0."


def test_send_mail_loop_keeps_sending_until_stopped(make_app, sessions, smtp, monkeypatch):
    handler, port = smtp
    app = make_app(f"smtp://127.0.0.1:{port}")
    db = sessions(app)
    queue(app, db)
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:
            queue(app, db, to="second@example.org")
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli.time, "sleep", sleep)
    result = run(app, "send-mail", "--loop", "5")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Sent 1, will retry 0, gave up on 0.",
        "Sent 1, will retry 0, gave up on 0.",
        "Stopped.",
    ]
    assert naps == [5.0, 5.0] and len(handler.envelopes) == 2


def test_send_mail_refuses_a_malformed_mail_url(make_app, sessions):
    app = make_app("http://127.0.0.1:25")
    db = sessions(app)
    queue(app, db)
    result = run(app, "send-mail")
    assert result.exit_code == 1 and "MAIL_URL" in result.output
    assert rows(db)[0].attempts == 0  # nothing claimed


# --- settings -----------------------------------------------------------------------------


def test_parse_mail_url():
    assert mail.parse_mail_url("smtp://mail.example.org") == mail.SmtpTarget("mail.example.org", 25)
    assert mail.parse_mail_url("smtp://u:p%40ss@mail.example.org:587?starttls=1") == (
        mail.SmtpTarget("mail.example.org", 587, "u", "p@ss", starttls=True)
    )
    assert mail.parse_mail_url("smtps://u:p@mail.example.org") == (
        mail.SmtpTarget("mail.example.org", 465, "u", "p", implicit_tls=True)
    )
    for bad in (
        "http://mail.example.org",
        "smtp://",
        "smtps://mail.example.org?starttls=1",
        "smtp://mail.example.org?tls=1",
        "smtp://mail.example.org:99999",
        "smtp://mail.example.org/path",
    ):
        with pytest.raises(ConfigError):
            mail.parse_mail_url(bad)


def test_the_smtp_password_never_reaches_last_error(tmp_path):
    settings = make_settings("sqlite://", tmp_path, mail_url="smtp://u:p%40ss-word@host")
    error = OSError("login as u with p@ss-word and p%40ss-word failed\r\n" + "x" * 500)
    text = mail.describe_error(error, settings)
    assert text.startswith("OSError: login as u with *** and *** failed x")
    assert "ss-word" not in text and "\n" not in text and len(text) <= mail.ERROR_LENGTH


def test_mail_from_setting(tmp_path):
    env = {"PATRONS_ENV": "testing", "SECRET_KEY": "x" * 40, "PATRONS_INSTANCE": str(tmp_path)}
    assert Settings.from_env(env).mail_from == '"The Steppe Courier" <newsroom@localhost>'
    named = Settings.from_env({**env, "SITE_NAME": 'The "Kyiv" Post, Daily'})
    assert email.utils.getaddresses([named.mail_from]) == [
        ('The "Kyiv" Post, Daily', "newsroom@localhost")
    ]
    given = Settings.from_env({**env, "MAIL_FROM": "Newsroom <news@example.org>"})
    assert given.mail_from == "Newsroom <news@example.org>"
    for bad in ("not an address", "a@example.org, b@example.org", "x <a@b>\r\nBcc: c@d"):
        with pytest.raises(ConfigError):
            Settings.from_env({**env, "MAIL_FROM": bad})
