"""Fault tests against real processes (issue 14): `flask --app patrons worker` started as
processes of their own, a real SMTP server on loopback (aiosmtpd), localstripe, the suite's
database.

- the mail server down, then up again, under a running worker: nothing lost, nothing twice;
- two workers sending at once, one SIGKILLed in the middle of a message: the one message it
  was sending is the only one that may go twice (delivery is at least once), every other
  message goes exactly once, and the killed worker's claim is taken over when its lease ends;
- stored Stripe events applied by two workers, one SIGKILLed in the middle of its batch:
  every event applied exactly once.

tests/test_worker.py and tests/test_mail.py test the same logic in-process (threads,
monkeypatched failures); here the processes, their connections and their deaths are real.
The moment of each kill is chosen by the server the victim talks to (it holds the victim's
message, or its call to Stripe, until the kill), so no test depends on timing. Nothing waits
for a fixed time: each step waits for a condition, with generous deadlines.

The app has no way to shift the clock of another process (patrons/core/clock.py reads the
system clock), so "time passes" (a retry's backoff, a claim's lease) is simulated in the
database: `next_attempt_at` (mail) or `claimed_until` (Stripe events) moved back to now,
which is all the claim looks at.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patrons import mail
from patrons.core import clock
from patrons.models import OutboundEmail, Payment, StripeEvent, WorkerHeartbeat
from tests.conftest import TEST_SECRET
from tests.helpers import extra_app
from tests.pledges.conftest import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    StripeWorld,
    deliver,
    stripe_settings,
)
from tests.pledges.conftest import localstripe as localstripe  # noqa: PLC0414  (the fixture)
from tests.pledges.conftest import localstripe_url as localstripe_url  # noqa: PLC0414
from tests.test_mail import Collector, closed_port, start_server

pytestmark = pytest.mark.slow  # seconds each: worker processes start, and mail is slow on purpose

DEADLINE = 60.0  # seconds for any one condition: a busy machine is slow, not broken
MESSAGE_ID = re.compile(r"<patrons\.(\d+)\.\d+@")


# -- processes -----------------------------------------------------------------------------


class Spawned:
    """A worker process, its output in a file (a pipe nobody reads could fill and stall it)."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, name: str) -> None:
        self.proc, self.log, self.name = proc, log, name

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def assert_alive(self) -> None:
        assert self.proc.poll() is None, f"worker {self.name} exited:\n{self.output()}"


@pytest.fixture
def spawn(app: Flask, database_url: str, tmp_path: Path) -> Iterator[Callable[..., Spawned]]:
    """Start `flask --app patrons worker --only JOB` processes; all killed afterwards, before
    `app`'s teardown empties the tables (a live worker would write to them again).

    `site` sets SITE_URL, whose host the worker sends as its EHLO name: the SMTP server
    tells the workers apart by it. `env`: more settings (MAIL_URL, STRIPE_...)."""
    started: list[Spawned] = []

    def start(
        name: str, only: str = "send-mail", site: str = "patrons.test", **env: str
    ) -> Spawned:
        environ = {**os.environ, "PATRONS_ENV": "testing", "SECRET_KEY": TEST_SECRET,
                   "DATABASE_URL": database_url, "PATRONS_INSTANCE": str(tmp_path / name),
                   "SITE_URL": f"http://{site}", "MAIL_FROM": "News <news@patrons.test>",
                   "PASSWORD_HASH_MEMORY_COST": "64", "PASSWORD_HASH_TIME_COST": "1",
                   "PASSWORD_HASH_PARALLELISM": "1", **env}  # fmt: skip
        command = [sys.executable, "-m", "flask", "--app", "patrons", "worker", "--only", only,
                   "--interval", "0.2", "--worker-id", name]  # fmt: skip
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(command, env=environ, stdout=out, stderr=subprocess.STDOUT)
        started.append(Spawned(proc, log, name))
        return started[-1]

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.proc.wait(30)


def wait_until(condition: Callable[[], object], what: str, *alive: Spawned) -> None:
    """Poll `condition` until it holds; fail if the deadline passes or a worker died."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        for worker in alive:
            worker.assert_alive()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# -- the database --------------------------------------------------------------------------


def queue_mails(app: Flask, db: Session, count: int) -> list[int]:
    """`count` messages queued through the app's mail queue, committed: their ids."""
    with app.app_context():
        messages = [
            mail.queue_message(db, f"reader{i}@example.org", "verify_email",
                               f"Confirm your email address ({i})",
                               link=f"http://patrons.test/verify?token={i}", hours=48)
            for i in range(count)
        ]  # fmt: skip
    db.commit()
    return [m.id for m in messages]


def rows(db: Session) -> dict[int, OutboundEmail]:
    db.rollback()  # a fresh snapshot: what the workers committed
    query = select(OutboundEmail).order_by(OutboundEmail.id)
    found = db.scalars(query, execution_options={"populate_existing": True})
    return {m.id: m for m in found}


def statuses(db: Session) -> Counter[str]:
    return Counter(m.status for m in rows(db).values())


def make_due(db: Session, *ids: int) -> None:
    """Time passing, simulated: these messages' retry (or lease) is due now."""
    db.rollback()
    db.execute(
        update(OutboundEmail)
        .where(OutboundEmail.id.in_(ids))
        .values(next_attempt_at=clock.now() - timedelta(seconds=1))
    )
    db.commit()


def heartbeat(db: Session, worker_id: str) -> object:
    db.rollback()
    return db.scalar(
        select(WorkerHeartbeat.last_seen).where(WorkerHeartbeat.worker_id == worker_id)
    )


def wait_for_passes(db: Session, worker: Spawned, passes: int) -> None:
    """Until `worker` has run `passes` more whole passes (it beats at a pass's start and end)."""
    for _ in range(2 * passes + 1):
        seen = heartbeat(db, worker.name)
        wait_until(lambda s=seen: heartbeat(db, worker.name) != s, f"{worker.name}'s beat", worker)


# -- the SMTP server -----------------------------------------------------------------------


class Recorder(Collector):
    """Collector that also notes which worker (its EHLO name) sent each accepted message."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay)
        self.senders: list[tuple[str, int]] = []  # (EHLO name, outbound_emails.id)

    def accept(self, session, envelope) -> None:  # type: ignore[no-untyped-def]
        self.envelopes.append(envelope)
        found = MESSAGE_ID.search(envelope.content.decode(errors="replace"))
        assert found is not None, envelope.content[:500]
        self.senders.append((session.host_name, int(found.group(1))))

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.delay:
            await asyncio.sleep(self.delay)
        self.accept(session, envelope)
        return "250 Message accepted for delivery"

    def delivered(self) -> Counter[int]:
        """How many times each message (by the id in its Message-ID) was accepted."""
        return Counter(ident for _, ident in self.senders)

    def sent_by(self, ehlo: str) -> int:
        return sum(1 for name, _ in list(self.senders) if name == ehlo)


# -- the mail server down, then up -----------------------------------------------------------


def test_smtp_down_then_up_under_a_running_worker_loses_nothing_and_sends_once(
    app: Flask, db: Session, spawn: Callable[..., Spawned]
) -> None:
    """While nothing listens on MAIL_URL's port, the worker defers each message (one try
    each, a retry a minute later), marks none sent or failed, and keeps running; once a
    server listens and the retries are due, it delivers every message exactly once."""
    ids = queue_mails(app, db, 5)
    port = closed_port()
    worker = spawn("down-up", MAIL_URL=f"smtp://127.0.0.1:{port}")

    # a refused connection ends a run after one message: one more is deferred each pass
    def all_deferred() -> bool:  # the claim counts the attempt; the error follows it
        return all(m.last_error for m in rows(db).values())

    wait_until(all_deferred, "every message tried and deferred", worker)
    worker.assert_alive()
    for message in rows(db).values():
        assert (message.status, message.sent_at) == ("queued", None), message.id
        assert message.attempts == 1, message.id  # the next try is a minute away, not yet
        assert (message.last_error or "").startswith("ConnectionRefusedError"), message.last_error
        assert message.next_attempt_at > clock.now() + timedelta(seconds=10)

    handler = Recorder()
    controller = start_server(handler, port=port)
    try:
        wait_for_passes(db, worker, 1)  # the server is up, but nothing is due yet
        assert handler.senders == []
        make_due(db, *ids)  # the minute of backoff has passed
        wait_until(lambda: statuses(db) == {"sent": len(ids)}, "every message sent", worker)
        wait_for_passes(db, worker, 1)  # a sent message stays sent: no second copy follows
    finally:
        controller.stop()

    assert handler.delivered() == dict.fromkeys(ids, 1)
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == sorted(
        f"reader{i}@example.org" for i in range(len(ids))
    )
    for message in rows(db).values():
        assert (message.attempts, message.last_error) == (2, None), message.id
        assert message.sent_at is not None
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(DEADLINE) == 0, worker.output()


# -- two workers at once, one killed mid-message ---------------------------------------------


class Trap(Recorder):
    """A slow server (every message takes `delay`) that accepts worker `victim`'s `nth`
    message and then withholds its "250" until the test releases it: the test kills the
    victim there, after the message reached the server and before the worker heard so.

    No message is accepted before both workers have reached DATA: the two send at once."""

    def __init__(self, delay: float, victim: str, nth: int, workers: int = 2) -> None:
        super().__init__(delay)
        self.victim, self.nth, self.workers = victim, nth, workers
        self.seen: set[str] = set()
        self.victims_messages = 0
        self.held: int | None = None  # the id of the message held
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.seen.add(session.host_name)
        deadline = time.monotonic() + DEADLINE
        while len(self.seen) < self.workers and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(self.delay)
        self.accept(session, envelope)  # the message is queued here (a real server, too,
        # queues it before it answers "250": a sender that dies now never hears it went)
        if session.host_name == self.victim:
            self.victims_messages += 1
            if self.victims_messages == self.nth:
                self.held = self.senders[-1][1]
                self.holding.set()
                while not self.release.is_set():  # aiosmtpd cancels this once the peer is gone
                    await asyncio.sleep(0.01)
        return "250 Message accepted for delivery"


def test_two_workers_one_killed_mid_message_nothing_lost_only_its_message_twice(
    app: Flask, db: Session, spawn: Callable[..., Spawned]
) -> None:
    """Two worker processes send one queue at once; one is SIGKILLed while the server holds
    its message (the data sent, the "250" not yet read).

    The guarantee (patrons/mail/sending.py): a message is claimed by one UPDATE that counts the
    attempt and pushes `next_attempt_at` a lease (10 minutes) ahead, committed before the
    SMTP conversation; "sent" is committed after the server's answer. So two live workers
    never claim one message (each goes exactly once), and a worker killed mid-send leaves the
    one message it held `queued` under its lease: nobody touches it while the lease runs
    (no copy is sent then), and once the lease has run out the next pass sends it again. That
    message is delivered at least once; here, killed after the data had arrived, exactly
    twice. Every other message exactly once; none lost, none stuck."""
    count = 60
    ids = queue_mails(app, db, count)
    handler = Trap(delay=0.05, victim="victim.patrons.test", nth=5)
    controller = start_server(handler)
    url = f"smtp://127.0.0.1:{controller.port}"
    release = handler.release
    try:
        victim = spawn("victim", site="victim.patrons.test", MAIL_URL=url)
        survivor = spawn("survivor", site="survivor.patrons.test", MAIL_URL=url)

        wait_until(handler.holding.is_set, "the victim's 5th message", victim, survivor)
        held = handler.held
        assert held in ids
        before = handler.sent_by("survivor.patrons.test")
        wait_until(  # the survivor carries on meanwhile: the two really overlap
            lambda: handler.sent_by("survivor.patrons.test") >= before + 2, "more mail", survivor
        )
        victim.proc.send_signal(signal.SIGKILL)
        assert victim.proc.wait(DEADLINE) == -signal.SIGKILL
        release.set()  # the server accepts the message whose sender died

        wait_until(lambda: statuses(db)["sent"] == count - 1, "all but the held one", survivor)
        wait_for_passes(db, survivor, 1)  # later passes leave the held message alone...
        message = rows(db)[held]
        assert (message.status, message.attempts, message.sent_at) == ("queued", 1, None)
        assert message.next_attempt_at > clock.now() + timedelta(minutes=5)  # ...under its lease
        assert handler.delivered()[held] == 1  # the server has it once, from the victim
        assert statuses(db) == {"sent": count - 1, "queued": 1}

        make_due(db, held)  # the lease has run out
        wait_until(lambda: statuses(db) == {"sent": count}, "the held message sent", survivor)
        wait_for_passes(db, survivor, 1)
    finally:
        release.set()
        controller.stop()

    delivered = handler.delivered()
    assert set(delivered) == set(ids)  # nothing lost
    twice = {ident: n for ident, n in delivered.items() if n != 1}
    assert twice == {held: 2}  # only the one in flight at the kill, sent again after its lease
    senders = {name for name, _ in handler.senders}
    assert senders == {"victim.patrons.test", "survivor.patrons.test"}
    assert [name for name, ident in handler.senders if ident == held] == [
        "victim.patrons.test",
        "survivor.patrons.test",
    ]
    final = rows(db)
    assert {(m.status, m.last_error) for m in final.values()} == {("sent", None)}
    assert {i: m.attempts for i, m in final.items() if m.attempts != 1} == {held: 2}
    assert all(m.sent_at is not None for m in final.values())


# -- stored Stripe events: two workers, one killed mid-batch ---------------------------------


class StripeTrap(ThreadingHTTPServer):
    """A pass-through to localstripe for one worker that holds its `nth` call to Stripe
    until the test releases it (the held call is then dropped: its caller is dead)."""

    daemon_threads = True

    def __init__(self, upstream: str, nth: int) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = urlsplit(upstream)
        self.nth, self.calls = nth, 0
        self.lock = threading.Lock()
        self.holding = threading.Event()
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Forward(BaseHTTPRequestHandler):
    server: StripeTrap

    def _forward(self) -> None:
        trap = self.server
        with trap.lock:
            trap.calls += 1
            held = trap.calls == trap.nth
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if held:
            trap.holding.set()
            trap.release.wait(2 * DEADLINE)
            self.close_connection = True
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        upstream = HTTPConnection(trap.upstream.hostname or "", trap.upstream.port, timeout=30)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _forward  # noqa: N815  (http.server's names)

    def log_message(self, *args: object) -> None:
        pass


def event_rows(db: Session) -> dict[str, StripeEvent]:
    db.rollback()
    found = db.scalars(select(StripeEvent), execution_options={"populate_existing": True})
    return {e.id: e for e in found}


def test_two_workers_one_killed_mid_batch_apply_every_stripe_event_once(
    database_url: str, tmp_path: Path, localstripe: str, spawn: Callable[..., Spawned]
) -> None:
    """Stored `invoice.paid` events (the webhook stored them; nobody applied them yet) are
    applied by two worker processes; the first is SIGKILLed while one of its calls to Stripe
    hangs, in the middle of a claimed batch.

    The guarantee (patrons/pledges/inbox.py): a worker claims a batch of events at once
    (`claimed_until` a lease ahead, the attempt counted, committed); each event's effects and
    its `applied` state are committed in one transaction. So the other worker skips the
    claimed events while the claim lives and applies all the rest; the killed worker's
    unfinished events stay pending under its claim, wrote nothing, and are applied once the
    claim has run out. Every event is applied exactly once: one payment per invoice, one
    thank-you mail per reader."""
    settings = stripe_settings(database_url, tmp_path / "instance", localstripe)
    with extra_app(settings) as app:
        app.config["STRIPE_EVENTS_BACKGROUND"] = False  # the webhook stores; the workers apply
        db = app.extensions["db.sessionmaker"]()
        try:
            world = StripeWorld(app, db)
            client = app.test_client()
            invoices: dict[str, str] = {}  # event id -> invoice id
            for i in range(10):
                patron = world.subscribe()
                invoice = world.invoice_dict(patron.sub.latest_invoice_id)
                assert (
                    deliver(client, "invoice.paid", invoice, f"evt_fault_{i:02d}").status_code
                    == 200
                )
                invoices[f"evt_fault_{i:02d}"] = invoice["id"]
            _stripe_race(db, localstripe, spawn, invoices)
        finally:
            db.close()


def _stripe_race(
    db: Session, localstripe: str, spawn: Callable[..., Spawned], invoices: dict[str, str]
) -> None:
    stripe_env = {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
                  "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_TIMEOUT": "60"}  # fmt: skip
    assert {e.state for e in event_rows(db).values()} == {"pending"}
    trap = StripeTrap(localstripe, nth=6)
    thread = threading.Thread(target=trap.serve_forever, daemon=True)
    thread.start()
    try:
        victim = spawn("victim", only="stripe-events", STRIPE_API_BASE=trap.url, **stripe_env)
        wait_until(trap.holding.is_set, "the victim's held call to Stripe", victim)
        # the victim alone so far: what it applied, and the rest of its batch, claimed (an
        # invoice event makes three calls to Stripe: the 6th is in its batch's second event)
        before = event_rows(db)
        by_victim = {i for i, e in before.items() if e.state == "applied"}
        stuck = {i for i, e in before.items() if e.state == "pending" and e.claimed_until}
        assert by_victim and stuck and by_victim | stuck < set(invoices), (by_victim, stuck)
        survivor = spawn("survivor", only="stripe-events", STRIPE_API_BASE=localstripe,
                         **stripe_env)  # fmt: skip

        def survivor_applied() -> bool:
            applied = {i for i, e in event_rows(db).items() if e.state == "applied"}
            return len(applied - by_victim) >= 1

        wait_until(survivor_applied, "the survivor's first event", victim, survivor)
        victim.proc.send_signal(signal.SIGKILL)
        assert victim.proc.wait(DEADLINE) == -signal.SIGKILL
        trap.release.set()

        def the_rest_applied() -> bool:
            return all(e.state == "applied" for i, e in event_rows(db).items() if i not in stuck)

        wait_until(the_rest_applied, "every event but the dead worker's applied", survivor)
        wait_for_passes(db, survivor, 1)  # later passes leave the live claim alone
        rows_ = event_rows(db)
        assert {(rows_[i].state, rows_[i].attempts, rows_[i].applied_at) for i in stuck} == {
            ("pending", 1, None)
        }
        assert all(rows_[i].claimed_until > clock.now() + timedelta(minutes=1) for i in stuck)
        db.rollback()
        paid = set(db.scalars(select(Payment.stripe_invoice_id)))
        assert paid == {invoices[i] for i in invoices if i not in stuck}  # the dead wrote nothing

        db.execute(  # the claim has run out (the lease is five minutes: simulated)
            update(StripeEvent)
            .where(StripeEvent.id.in_(stuck))
            .values(claimed_until=clock.now() - timedelta(seconds=1))
        )
        db.commit()
        wait_until(
            lambda: {e.state for e in event_rows(db).values()} == {"applied"},
            "the dead worker's events applied",
            survivor,
        )
    finally:
        trap.release.set()
        trap.shutdown()
        trap.server_close()

    rows_ = event_rows(db)
    assert {i: e.attempts for i, e in rows_.items() if e.attempts != 1} == dict.fromkeys(stuck, 2)
    assert all(e.applied_at is not None and e.claimed_until is None for e in rows_.values())
    db.rollback()
    payments = list(db.scalars(select(Payment.stripe_invoice_id)))
    assert sorted(payments) == sorted(invoices.values())  # one payment per invoice, no more
    thanks = list(
        db.scalars(select(OutboundEmail.to_address).where(OutboundEmail.kind == "pledge_thanks"))
    )
    assert len(thanks) == len(set(thanks)) == len(invoices)  # one thank-you per reader
