"""Soak: two gunicorn instances on one PostgreSQL and one Redis, mixed traffic for a bounded
time, Redis stopped and restarted and the database connections killed while it runs.

Everything runs on loopback: two gunicorn instances of the real app (bench/wsgi.py,
production settings, PROXY_HOPS=1 so each simulated client has its own X-Forwarded-For
address and the per-address limits count per client), one scratch PostgreSQL database, one
redis-server of this bench's own (REDIS_URL: page cache, rate limits, sign-in counts), an
SMTP server in this process (aiosmtpd; MAIL_URL), the offline Stripe (localstripe) and two
`flask --app patrons worker` processes (`--only send-mail --only stripe-events`: the effects
must come from the events, not from a reconciliation). Client threads spread their requests
over both instances at random:

- anonymous readers: `/articles/<slug>` (50 articles) and its beacon (`/e/<id>/view`, as
  article.js sends it), `/` and `/support`;
- sign-ins: a fresh browser each time (`/csrf-token`, `POST /login`, then `/account`);
- patrons, signed in: back and withdraw topics of an open round (`/topics/<id>/vote` and
  `/withdraw`, each step valid for what the patron holds, resent until it is answered 303),
  and read `/pledge` and `/topics`;
- password-reset requests for addresses of their own (`POST /reset`: one mail each);
- Stripe: `customer.subscription.updated` and `invoice.paid` of real localstripe
  subscriptions, signed, each posted twice, spread over the run, resent (as Stripe does)
  until answered 2xx.

At a third of the time Redis is stopped for BENCH_SOAK_REDIS_DOWN seconds and started again
on the same port; at two thirds every connection to the database but the bench's own is
killed (`pg_terminate_backend`). The fault windows: from Redis's stop to 5 s after its
restart (the app tries Redis again up to degraded.RETRY_SECONDS after a failure), and the
3 s after the kill; a request is in one if it was under way at any moment of it. Each
request's start, end and status are kept. Afterwards, with the servers and workers still
running, the bench waits (at most BENCH_SOAK_DRAIN s) for every acknowledged event to be
applied and every queued mail to reach the SMTP server, then prints per
BENCH_SOAK_WINDOW-second window (a request counts in the one it started in) the requests,
429s and 5xx, the fault windows marked; per kind of request the p50 and p99 outside the
fault windows; and:

- events lost: acknowledged 2xx but not stored, not applied, or their effect missing
  (bench/webhooks.py's checks: payments per invoice, history rows, status changes, receipts);
- events applied twice (the same checks): both must be 0;
- mails lost: a reset answered 200 without its queued mail, or a queued mail (resets and
  pledge receipts) the SMTP server never received: must be 0 (a mail received twice is
  printed, not counted: delivery is at least once);
- votes: the rows each patron should hold against the `votes` table.

Goals (exit status 1 if one is missed): 0 events lost, 0 applied twice, 0 mails lost,
0 votes lost or extra, and no 5xx or unanswered request outside the database-kill window
(the site keeps answering without Redis; a brief 503 when the connections are killed is
expected and counted). 429s are counted apart and are no failure. Exit 2: no redis-server.
After a FAIL, or errors in their logs, the logs of the servers, the workers and localstripe
are kept in bench/results/soak-logs-<run>/.

    python -m bench soak             # or: make bench BENCH=soak

Settings (environment): BENCH_SOAK_SECONDS (60), BENCH_SOAK_REDIS_DOWN (10),
BENCH_SOAK_DRAIN (60), BENCH_SOAK_WINDOW (5), BENCH_SOAK_READERS (4 threads),
BENCH_SOAK_SIGNERS (2), BENCH_SOAK_PATRONS (8), BENCH_SOAK_SUBSCRIPTIONS (30),
BENCH_DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/bench_soak, created
if missing and dropped after; a database named here must be a scratch one, since every other
connection to it is killed: this run's rows are deleted after), BENCH_WORKERS /
BENCH_THREADS / BENCH_WORKER_CLASS for both instances (2 workers x 4 threads, gthread).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import harness, login, votes, webhooks
from bench.article import create_articles, delete_articles, migrate

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_soak"
REDIS_MISSING = (
    "redis-server is not installed; the soak stops and starts one of its own.\n"
    "Install it (Debian/Ubuntu: `sudo apt-get install redis-server`) and run it again."
)
REQUEST_TIMEOUT = 30.0
DB_FAULT_SECONDS = 3.0  # after the kill, the window in which a 503 is expected
EXPECTED = {  # kind of request -> the answer that means it worked
    "article": 200, "index": 200, "support": 200, "csrf-token": 200, "sign-in": 302,
    "account": 200, "vote": 303, "withdraw": 303, "pledge": 200, "topics": 200,
    "reset": 200, "webhook": 200, "beacon": 204,
}  # fmt: skip
MESSAGE_ID = re.compile(rb"Message-ID: <patrons\.(\d+)\.", re.I)


# --- what the clients saw ---------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    kind: str
    instance: int
    start: float  # seconds since the traffic began
    end: float
    status: int  # 0: no answer (refused, reset, timed out)

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000


@dataclass
class Fault:
    name: str
    start: float
    end: float
    detail: str = ""

    def overlaps(self, sample: Sample) -> bool:
        return sample.start < self.end and sample.end > self.start


class Traffic:
    """The two instances, the clock and every request's sample."""

    def __init__(self, ports: list[int], seconds: float, run: str) -> None:
        self.ports, self.seconds, self.run = ports, seconds, run
        self.samples: list[Sample] = []  # list.append is atomic: no lock needed
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def running(self) -> bool:
        return self.now() < self.seconds

    def request(
        self, kind: str, method: str, path: str, ip: str, cookies: dict[str, str],
        form: dict[str, str] | None = None, body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:  # fmt: skip
        """One request to either instance, on a connection of its own; the answer's cookies
        kept in `cookies` (by hand: production marks them Secure, this is plain HTTP)."""
        instance = random.randrange(len(self.ports))
        sent = {"X-Forwarded-For": ip, "User-Agent": "patrons-bench-soak", **(headers or {})}
        if cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(harness.HOST, self.ports[instance], REQUEST_TIMEOUT)
        start, status, data = self.now(), 0, b""
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            data, status = response.read(), response.status
            for header in response.msg.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                cookies[name.strip()] = rest.split(";", 1)[0]
        except (OSError, http.client.HTTPException):
            status = 0
        finally:
            conn.close()
        self.samples.append(Sample(kind, instance, start, self.now(), status))
        return status, data

    def token(self, ip: str, cookies: dict[str, str]) -> str | None:
        status, body = self.request("csrf-token", "GET", "/csrf-token", ip, cookies)
        if status != 200:
            return None
        try:
            return str(json.loads(body)["token"])
        except (ValueError, KeyError):
            return None

    def sign_in(self, email: str, password: str, ip: str) -> dict[str, str] | None:
        """A fresh browser's password sign-in; its cookies, or None if it did not work."""
        cookies: dict[str, str] = {}
        token = self.token(ip, cookies)
        if token is None:
            return None
        form = {"email": email, "password": password, "csrf_token": token}
        status, _ = self.request("sign-in", "POST", "/login", ip, cookies, form=form)
        return cookies if status == 302 else None


def resend(send: Callable[[], int], expected: int, traffic: Traffic, grace: float) -> int:
    """Send until the expected answer (a 5xx, a 429 or no answer: again, 1 s later, for at
    most `grace` seconds past the run's end); the last status."""
    while True:
        status = send()
        if status == expected or (status and status < 500 and status != 429):
            return status
        if traffic.now() > traffic.seconds + grace:
            return status
        time.sleep(1.0)


# --- the clients --------------------------------------------------------------------------


def reader(traffic: Traffic, n: int, articles: list[tuple[int, str]]) -> None:
    """Anonymous readers, each view from an address of its own (of 250); an article view
    sends its beacon as article.js does (`GET /e/<id>/view`, rate-limited per address)."""
    rng, count = random.Random(n), 0
    while traffic.running():
        count += 1
        roll, ip = rng.random(), f"10.10.{n}.{count % 250 + 1}"
        if roll < 0.75:
            article_id, slug = rng.choice(articles)
            if traffic.request("article", "GET", f"/articles/{slug}", ip, {})[0] == 200:
                traffic.request("beacon", "GET", f"/e/{article_id}/view", ip, {})
        elif roll < 0.9:
            traffic.request("index", "GET", "/", ip, {})
        else:
            traffic.request("support", "GET", "/support", ip, {})
        time.sleep(0.05)


def signer(traffic: Traffic, n: int, emails: list[str]) -> None:
    count = 0
    while traffic.running():
        count += 1
        ip = f"10.20.{n}.{count % 250 + 1}"
        cookies = traffic.sign_in(emails[count % len(emails)], login.PASSWORD, ip)
        if cookies is not None:
            traffic.request("account", "GET", "/account", ip, cookies)
        time.sleep(1.0)


@dataclass
class Patron:
    user_id: int
    email: str
    ip: str
    steps: list[tuple[int, str]]
    cookies: dict[str, str] = field(default_factory=dict)
    token: str = ""
    held: set[int] = field(default_factory=set)
    unsure: str = ""  # why what it holds is no longer known (an answer neither 303 nor retried)


def patron_loop(traffic: Traffic, patron: Patron) -> None:
    rng = random.Random(patron.user_id)
    for topic_id, action in patron.steps:
        if not traffic.running():
            return
        page = rng.choice(("/pledge", "/topics"))
        traffic.request(page.strip("/"), "GET", page, patron.ip, patron.cookies)
        time.sleep(0.7)
        if patron.unsure:
            continue

        def send(topic_id: int = topic_id, action: str = action) -> int:
            form = {"csrf_token": patron.token}
            path = f"/topics/{topic_id}/{action}"
            return traffic.request(action, "POST", path, patron.ip, patron.cookies, form=form)[0]

        status = resend(send, 303, traffic, grace=30)
        if status == 303:
            (patron.held.add if action == "vote" else patron.held.discard)(topic_id)
        else:
            patron.unsure = f"{action} answered {status}"
        time.sleep(0.7)


def resetter(traffic: Traffic, asked: list[str]) -> None:
    """Password-reset requests, each for an address of its own from an address of its own."""
    count = 0
    while traffic.running():
        count += 1
        ip, cookies = f"10.30.{count // 250}.{count % 250 + 1}", {}
        email = f"soak-{traffic.run}-reset-{count}@example.org"
        token = traffic.token(ip, cookies)
        if token is not None:
            form = {"email": email, "csrf_token": token}
            if traffic.request("reset", "POST", "/reset", ip, cookies, form=form)[0] == 200:
                asked.append(email)
        time.sleep(1.5)


def stripe_poster(
    traffic: Traffic, events: list[tuple[str, str, str]], acked: set[str], answers: Counter[int]
) -> None:
    """Each event twice, the copies shuffled apart, spread over 90 % of the run; an event
    not answered 2xx is sent again a second later (Stripe retries too)."""
    payloads = webhooks.Payloads()
    order = [e for e in events for _ in range(2)]
    random.Random(7).shuffle(order)
    gap = traffic.seconds * 0.9 / max(len(order), 1)
    for n, item in enumerate(order):
        time.sleep(max(0.0, n * gap - traffic.now()))

        def send(item: tuple[str, str, str] = item) -> int:
            body = payloads.body(*item)
            headers = {"Content-Type": "application/json; charset=utf-8",
                       "Stripe-Signature": webhooks.sign(body)}  # fmt: skip
            status = traffic.request(
                "webhook", "POST", webhooks.WEBHOOK_PATH, "10.40.0.1", {}, body=body.encode(),
                headers=headers,
            )[0]  # fmt: skip
            answers[status] += 1
            return status

        if 200 <= resend(send, 200, traffic, grace=60) < 300:
            acked.add(item[0])


# --- the services around the app ---------------------------------------------------------


class RedisServer:
    """A redis-server of this bench's own, without persistence, on one port for its life."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary, self.workdir, self.port = binary, workdir, harness.free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{harness.HOST}:{self.port}/0"

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", harness.HOST, "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        client = redis.Redis(host=harness.HOST, port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    client.close()
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise harness.ServerError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def keys(self) -> int:
        """How many keys it holds (it keeps nothing across a restart: all written since)."""
        import redis

        client = redis.Redis(host=harness.HOST, port=self.port, socket_timeout=5)
        try:
            return int(client.dbsize())  # type: ignore[arg-type]  # redis-py's sync answer
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            webhooks._stop(self.process)
        self.process = None


class Mailbox:
    """aiosmtpd handler: how many times each queued message (by its row id) arrived."""

    def __init__(self) -> None:
        self.received: Counter[int] = Counter()
        self.other = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = MESSAGE_ID.search(envelope.content or b"")
        if found:
            self.received[int(found.group(1))] += 1
        else:
            self.other += 1
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    mailbox, port = Mailbox(), harness.free_port()
    controller = Controller(mailbox, hostname=harness.HOST, port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@contextlib.contextmanager
def workers(env: dict[str, str], log_dir: Path, count: int) -> Iterator[list[Path]]:
    cmd = [sys.executable, "-m", "flask", "--app", "patrons", "worker", "--interval", "0.5",
           "--only", "send-mail", "--only", "stripe-events"]  # fmt: skip
    logs = [log_dir / f"worker-{n}.log" for n in range(count)]
    processes = []
    try:
        for path in logs:
            with path.open("wb") as out:
                processes.append(subprocess.Popen(
                    cmd, cwd=harness.ROOT, env={**env, "PYTHONUNBUFFERED": "1"},
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                ))  # fmt: skip
        yield logs
    finally:
        for process in processes:
            webhooks._stop(process)


def kill_connections(url: str) -> int:
    """Terminate every connection to the database but this one; how many."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            return int(conn.scalar(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )) or 0)  # fmt: skip
    finally:
        engine.dispose()


def database(url: str, action: str) -> bool:
    """ "exists": whether it does; "drop": drop it (FORCE: nothing of ours is left in it)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if action == "drop":
                conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
                return True
            query = text("SELECT 1 FROM pg_database WHERE datname = :name")
            return conn.scalar(query, {"name": target.database}) is not None
    finally:
        admin.dispose()


# --- arranging ----------------------------------------------------------------------------


@dataclass
class Arranged:
    run: str
    articles: list[int] = field(default_factory=list)
    slugs: list[tuple[int, str]] = field(default_factory=list)  # (id, slug)
    round: votes.Arranged | None = None
    subs: list[webhooks.Sub] = field(default_factory=list)
    signers: list[str] = field(default_factory=list)


def arrange(url: str, api_base: str, arranged: Arranged, settings: dict[str, int]) -> None:
    """Articles, accounts for the sign-ins, an open round with its patrons, and real
    localstripe subscriptions with pending pledges (their events come later)."""
    from sqlalchemy import select

    from patrons.models import Article

    _, _, arranged.articles = create_articles(url, arranged.run)
    with webhooks.session(url) as db:
        query = select(Article.id, Article.slug).where(Article.id.in_(arranged.articles))
        arranged.slugs = [(row[0], row[1]) for row in db.execute(query)]
    login.create_accounts(url, arranged.run, 4)
    arranged.signers = [login.EMAIL.format(run=arranged.run, n=n) for n in range(4)]
    arranged.round = votes.arrange(url, arranged.run, 0, settings["patrons"], 6)
    began = time.monotonic()
    arranged.subs = webhooks.subscribe(url, api_base, webhooks.RUN, settings["subscriptions"])
    print(
        f"  {len(arranged.articles)} articles, {len(arranged.signers)} accounts to sign in, "
        f"{settings['patrons']} patrons with an open round of 6 topics, "
        f"{len(arranged.subs)} localstripe subscriptions "
        f"({time.monotonic() - began:.1f}s)",
        flush=True,
    )


def clean_up(url: str, arranged: Arranged, event_ids: list[str]) -> None:
    """Delete this run's rows (a database given by BENCH_DATABASE_URL is kept)."""
    from sqlalchemy import delete

    from patrons.models import OutboundEmail

    delete_articles(url, arranged.articles)
    login.remove_accounts(url, arranged.run)
    votes.cleanup(url, [arranged.round] if arranged.round else [])
    webhooks.clean_up(url, event_ids)
    with webhooks.session(url) as db:
        pattern = f"soak-{arranged.run}-%"
        db.execute(delete(OutboundEmail).where(OutboundEmail.to_address.like(pattern)))
        db.commit()


def patrons_signed_in(traffic: Traffic, arranged: votes.Arranged, ops: int) -> list[Patron]:
    """The patrons signed in, each having read its pages once (so every gunicorn worker has
    rendered the templates before the clock starts: not measured)."""
    plans, _ = votes.plan(arranged, ops, seed=1)
    patrons = []
    for n, (user_id, email) in enumerate(arranged.users):
        ip = f"10.50.0.{n + 1}"
        cookies = traffic.sign_in(email, votes.PASSWORD, ip)
        token = traffic.token(ip, cookies) if cookies is not None else None
        if cookies is None or token is None:
            raise harness.ServerError(f"patron {email} could not sign in")
        for path in ("/pledge", "/topics", "/account", "/", "/support", "/reset"):
            traffic.request("warm-up", "GET", path, ip, cookies)
        patrons.append(Patron(user_id, email, ip, plans[user_id], cookies, token))
    return patrons


# --- the run ------------------------------------------------------------------------------


@dataclass
class Outcome:
    samples: list[Sample] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    patrons: list[Patron] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    hook_answers: Counter[int] = field(default_factory=Counter)
    resets: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    drained_in: float = 0.0
    redis_keys: int = 0  # in Redis at the end: written after its restart


def run_traffic(
    url: str, ports: list[int], redis: RedisServer, arranged: Arranged, settings: dict[str, int],
    outcome: Outcome,
) -> None:  # fmt: skip
    seconds = settings["seconds"]
    setup = Traffic(ports, seconds, arranged.run)
    assert arranged.round is not None
    outcome.patrons = patrons_signed_in(setup, arranged.round, ops=seconds)
    events = webhooks.events_of(arranged.subs, f"evt_soak_{webhooks.RUN}_")
    outcome.event_ids = [e[0] for e in events]
    traffic = Traffic(ports, seconds, arranged.run)
    outcome.samples = traffic.samples
    clients: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        *((reader, (traffic, n, arranged.slugs)) for n in range(settings["readers"])),
        *((signer, (traffic, n, arranged.signers)) for n in range(settings["signers"])),
        *((patron_loop, (traffic, p)) for p in outcome.patrons),
        (resetter, (traffic, outcome.resets)),
        (stripe_poster, (traffic, events, outcome.acked, outcome.hook_answers)),
    ]
    threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in clients]
    for thread in threads:
        thread.start()
    print(f"  traffic: {len(threads)} client threads for {seconds}s", flush=True)
    faults(url, traffic, redis, settings["redis_down"], outcome.faults)
    for thread in threads:
        thread.join()
    print(f"  traffic over at {traffic.now():.1f}s: {len(traffic.samples)} requests", flush=True)


def faults(url: str, traffic: Traffic, redis: RedisServer, down: int, out: list[Fault]) -> None:
    """Redis away at a third of the run, the database connections killed at two thirds."""
    time.sleep(max(0.0, traffic.seconds / 3 - traffic.now()))
    start = traffic.now()
    redis.stop()
    print(f"  {start:5.1f}s redis-server stopped", flush=True)
    time.sleep(down)
    redis.start()
    # the app tries Redis again up to degraded.RETRY_SECONDS after its last failure
    out.append(Fault("redis down", start, traffic.now() + 5.0))
    print(f"  {traffic.now():5.1f}s redis-server started again", flush=True)
    time.sleep(max(0.0, traffic.seconds * 2 / 3 - traffic.now()))
    start = traffic.now()
    killed = kill_connections(url)
    out.append(Fault("db killed", start, start + DB_FAULT_SECONDS, f"{killed} connections"))
    print(f"  {start:5.1f}s {killed} database connections killed", flush=True)


def drain(url: str, outcome: Outcome, mailbox: Mailbox, emails: list[str], limit: int) -> None:
    """Until every acknowledged event is done and every queued mail arrived (or `limit`)."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        states = webhooks.event_states(url, sorted(outcome.acked))
        applied = sum(states[s] for s in webhooks.DONE_STATES) == len(outcome.acked)
        rows = mail_rows(url, emails)
        queued = {address for _, address, _ in rows} >= set(outcome.resets)
        if applied and queued and all(mailbox.received[row[0]] for row in rows):
            break
        time.sleep(0.5)
    outcome.drained_in = time.monotonic() - began


def mail_rows(url: str, emails: list[str]) -> list[tuple[int, str, str]]:
    """(id, address, status) of the mails queued for these addresses."""
    from sqlalchemy import select

    from patrons.models import OutboundEmail

    with webhooks.session(url) as db:
        query = select(OutboundEmail.id, OutboundEmail.to_address, OutboundEmail.status)
        rows = db.execute(query.where(OutboundEmail.to_address.in_(emails))).all()
    return [(row[0], row[1], row[2]) for row in rows]


# --- the verdict --------------------------------------------------------------------------


@dataclass
class Verdict:
    events_posted: int = 0
    events_acked: int = 0
    events_lost: int = 0
    applied_twice: int = 0
    mails_queued: int = 0
    mails_lost: int = 0
    mails_twice: int = 0
    votes_lost: int = 0
    votes_extra: int = 0
    patrons_unsure: int = 0
    bad_5xx: int = 0  # 5xx or no answer outside the database-kill window
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        return not (self.events_lost or self.applied_twice or self.mails_lost
                    or self.votes_lost or self.votes_extra or self.bad_5xx)  # fmt: skip


def judge(url: str, arranged: Arranged, outcome: Outcome, mailbox: Mailbox) -> Verdict:
    v = Verdict(events_posted=len(outcome.event_ids), events_acked=len(outcome.acked))
    states = webhooks.event_states(url, sorted(outcome.acked))
    double, missing = webhooks.effects(url, arranged.subs)
    all_acked = len(outcome.acked) == len(outcome.event_ids)
    v.events_lost = len(outcome.acked) - sum(states[s] for s in webhooks.DONE_STATES)
    v.events_lost += sum(missing.values()) if all_acked else 0
    v.applied_twice = sum(double.values())
    emails = outcome.resets + [s.email for s in arranged.subs]
    rows = mail_rows(url, emails)
    queued_for = {address for _, address, _ in rows}
    v.mails_queued = len(rows)
    v.mails_lost = sum(1 for e in outcome.resets if e not in queued_for)
    v.mails_lost += sum(1 for ident, _, _ in rows if not mailbox.received[ident])
    v.mails_twice = sum(1 for ident, _, _ in rows if mailbox.received[ident] > 1)
    sure = [p for p in outcome.patrons if not p.unsure]
    v.patrons_unsure = len(outcome.patrons) - len(sure)
    if arranged.round is not None and sure:
        batch = votes.Arranged(arranged.round.round_id, arranged.round.topic_ids,
                               [(p.user_id, p.email) for p in sure])  # fmt: skip
        expected = {(p.user_id, t) for p in sure for t in p.held}
        v.votes_lost, v.votes_extra = votes.check(url, batch, expected, "votes")
    db_window = [f for f in outcome.faults if f.name == "db killed"]
    bad = [
        f"{s.start:.1f}s {s.kind} {s.status or 'no answer'} ({'ab'[s.instance]})"
        for s in outcome.samples
        if (s.status == 0 or s.status >= 500) and not any(f.overlaps(s) for f in db_window)
    ]  # fmt: skip
    v.bad_5xx = len(bad)
    v.details = {
        "5xx_outside_db_window": bad[:20],
        "event_states": dict(states), "applied_twice_by_check": double,
        "missing_by_check": missing, "webhook_answers": dict(outcome.hook_answers),
        "mail_rows_by_status": dict(Counter(status for _, _, status in rows)),
        "mails_received_not_queued_here": mailbox.other,
        "patrons_unsure": [p.unsure for p in outcome.patrons if p.unsure],
    }  # fmt: skip
    return v


# --- the report ---------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def classify(sample: Sample) -> str:
    if sample.status == 0:
        return "no answer"
    if sample.status >= 500:
        return "5xx"
    if sample.status == 429:
        return "429"
    return "ok" if sample.status == EXPECTED.get(sample.kind) else "other"


def by_window(samples: list[Sample], faults: list[Fault], width: int) -> list[dict[str, Any]]:
    windows: dict[int, list[Sample]] = defaultdict(list)
    for sample in samples:
        windows[int(sample.start // width)].append(sample)
    rows = []
    for n in sorted(windows):
        start, end = n * width, (n + 1) * width
        marks = [f.name for f in faults if f.start < end and f.end > start]
        counts = Counter(classify(s) for s in windows[n])
        rows.append({"start": start, "end": end, "requests": len(windows[n]),
                     **{k: counts[k] for k in ("ok", "429", "5xx", "no answer", "other")},
                     "p99_ms": percentile([s.ms for s in windows[n]], 99),
                     "faults": marks})  # fmt: skip
    return rows


def by_kind(samples: list[Sample], faults: list[Fault]) -> dict[str, dict[str, Any]]:
    kinds: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        kinds[sample.kind].append(sample)
    table = {}
    for kind, group in sorted(kinds.items()):
        calm = [s.ms for s in group if not any(f.overlaps(s) for f in faults)]
        counts = Counter(classify(s) for s in group)
        table[kind] = {"requests": len(group), **counts,
                       "p50_ms": percentile(calm, 50), "p99_ms": percentile(calm, 99),
                       "statuses": dict(Counter(s.status for s in group))}  # fmt: skip
    return table


def print_report(
    outcome: Outcome, v: Verdict, width: int, describe: str
) -> dict[str, Any]:  # fmt: skip
    samples, faults_ = outcome.samples, outcome.faults
    windows, kinds = by_window(samples, faults_, width), by_kind(samples, faults_)
    calm = [s.ms for s in samples if not any(f.overlaps(s) for f in faults_)]
    p99 = percentile(calm, 99)
    print(f"\nSoak: two instances, one PostgreSQL, one Redis  ({describe})")
    print(f"  {'window':<11} {'requests':>8} {'ok':>6} {'429':>5} {'5xx':>5} {'no ans':>6} "
          f"{'other':>5} {'p99 ms':>8}  faults")  # fmt: skip
    for w in windows:
        print(f"  {w['start']:>4}-{w['end']:<4}s {w['requests']:>8} {w['ok']:>6} {w['429']:>5} "
              f"{w['5xx']:>5} {w['no answer']:>6} {w['other']:>5} {w['p99_ms']:>8.1f}  "
              f"{', '.join(w['faults'])}")  # fmt: skip
    print(f"\n  {'kind':<11} {'requests':>8} {'5xx':>5} {'429':>5} {'other':>5} "
          f"{'p50 ms':>8} {'p99 ms':>8}  (latency outside the fault windows)")  # fmt: skip
    for kind, k in kinds.items():
        print(f"  {kind:<11} {k['requests']:>8} {k.get('5xx', 0):>5} {k.get('429', 0):>5} "
              f"{k.get('other', 0):>5} {k['p50_ms']:>8.1f} {k['p99_ms']:>8.1f}")  # fmt: skip
    for f in faults_:
        print(f"  fault: {f.name} {f.start:.1f}-{f.end:.1f}s {f.detail}")
    counts = Counter(classify(s) for s in samples)
    fives = Counter(s.status for s in samples if s.status >= 500)
    rows = [
        ("requests served (answered)", f"{len(samples) - counts['no answer']:,}",
         f"{len(samples) / max(s.end for s in samples):.0f}/s" if samples else ""),
        ("5xx | no answer, in all", f"{counts['5xx']} | {counts['no answer']}",
         " ".join(f"{code}: {n}" for code, n in sorted(fives.items()))),
        ("5xx or no answer outside the DB-kill window", str(v.bad_5xx), "must be 0"),
        ("429 (rate limited; not a failure)", str(counts["429"]), ""),
        ("other unexpected answers", str(counts["other"]), ""),
        ("p99 latency outside the fault windows", f"{p99:.1f} ms", f"{len(calm):,} requests"),
        ("events posted | acknowledged", f"{v.events_posted} | {v.events_acked}",
         "each posted twice"),
        ("events lost", str(v.events_lost), "must be 0"),
        ("events applied twice", str(v.applied_twice), "must be 0"),
        ("mails queued | lost", f"{v.mails_queued} | {v.mails_lost}", "lost must be 0"),
        ("mails received twice (at least once)", str(v.mails_twice), ""),
        ("votes lost | extra", f"{v.votes_lost} | {v.votes_extra}", "must be 0"),
        ("drained in", f"{outcome.drained_in:.1f} s", "events applied, mails delivered"),
        ("keys in Redis at the end", str(outcome.redis_keys), "written after its restart"),
    ]  # fmt: skip
    print()
    for label, value, note in rows:
        print(f"  {label:<46} {value:>14}  {note}")
    if v.patrons_unsure:
        print(f"  patrons left out of the vote check: {v.details['patrons_unsure']}")
    print(f"  details: {json.dumps(v.details, default=str)}")
    bar = "=" * 76
    print(bar)
    print(f"{'PASS' if v.correct else 'FAIL'}: events lost {v.events_lost}, applied twice "
          f"{v.applied_twice}, mails lost {v.mails_lost}, votes lost/extra {v.votes_lost}/"
          f"{v.votes_extra}, 5xx outside the DB-kill window {v.bad_5xx}; p99 {p99:.0f} ms "
          f"outside faults; load average {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print(bar)
    return {"windows": windows, "kinds": kinds, "p99_ms_outside_faults": p99,
            "requests": len(samples), "statuses": dict(counts)}  # fmt: skip


def log_errors(log_dir: Path) -> dict[str, int]:
    """Lines logged at ERROR (or with a traceback) per log: where to look after a FAIL."""
    found = {}
    for path in sorted(log_dir.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()
        found[path.name] = sum(
            1 for line in lines if '"level": "ERROR"' in line or " ERROR " in line
            or line.startswith("Traceback")
        )  # fmt: skip
    return found


# --- main ---------------------------------------------------------------------------------


def settings_from_env() -> dict[str, int]:
    return {
        "seconds": harness.env_int("BENCH_SOAK_SECONDS", 60),
        "redis_down": harness.env_int("BENCH_SOAK_REDIS_DOWN", 10),
        "drain": harness.env_int("BENCH_SOAK_DRAIN", 60),
        "window": harness.env_int("BENCH_SOAK_WINDOW", 5),
        "readers": harness.env_int("BENCH_SOAK_READERS", 4),
        "signers": harness.env_int("BENCH_SOAK_SIGNERS", 2),
        "patrons": harness.env_int("BENCH_SOAK_PATRONS", 8),
        "subscriptions": harness.env_int("BENCH_SOAK_SUBSCRIPTIONS", 30),
    }


def soak(
    url: str, tmp: Path, redis_binary: str, arranged: Arranged, outcome: Outcome,
    settings: dict[str, int],
) -> tuple[Mailbox, dict[str, int]]:  # fmt: skip
    """The services, the data, the two instances and the workers; the traffic and the drain."""
    gunicorn_settings = harness.GunicornSettings.from_env()
    redis = RedisServer(redis_binary, tmp)
    with smtp_server() as (mailbox, smtp_port), webhooks.localstripe(tmp) as api_base:
        try:
            redis.start()
            arrange(url, api_base, arranged, settings)
            env = webhooks.app_env(url, tmp, api_base)
            env.update(REDIS_URL=redis.url, MAIL_URL=f"smtp://{harness.HOST}:{smtp_port}",
                       PROXY_HOPS="1")  # fmt: skip
            with (
                harness.gunicorn("soak-a", "bench.wsgi:article_app()", gunicorn_settings, env,
                                 tmp, ready_path="/healthz") as a,
                harness.gunicorn("soak-b", "bench.wsgi:article_app()", gunicorn_settings, env,
                                 tmp, ready_path="/healthz") as b,
                workers(env, tmp, 2),
            ):  # fmt: skip
                run_traffic(url, [a.port, b.port], redis, arranged, settings, outcome)
                outcome.redis_keys = redis.keys()
                emails = outcome.resets + [s.email for s in arranged.subs]
                drain(url, outcome, mailbox, emails, settings["drain"])
                print(f"  drained in {outcome.drained_in:.1f}s", flush=True)
        finally:
            redis.stop()
        return mailbox, log_errors(tmp)


def main() -> int:
    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        print(REDIS_MISSING, file=sys.stderr)
        return 2
    settings = settings_from_env()
    url = os.environ.get("BENCH_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    describe = (f"gunicorn {harness.GunicornSettings.from_env().describe()} x 2 instances; "
                f"{settings['seconds']}s; {os.cpu_count()} CPUs")  # fmt: skip
    print(f"Database: {url.split('@')[-1]} (scratch: its connections are killed)")
    print(f"Servers: {describe}; load average {os.getloadavg()[0]:.1f} before", flush=True)
    started = time.monotonic()
    created = not database(url, "exists")
    arranged, outcome = Arranged(secrets.token_hex(3)), Outcome()
    with harness.sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "instance").mkdir()
        try:
            webhooks.ensure_database(url)
            migrate(url)
            mailbox, errors = soak(url, tmpdir, redis_binary, arranged, outcome, settings)
            verdict = judge(url, arranged, outcome, mailbox)
            if not verdict.correct or any(errors.values()):
                logs = harness.RESULTS_DIR / f"soak-logs-{arranged.run}"
                shutil.copytree(tmpdir, logs, ignore=shutil.ignore_patterns("instance"))
                print(f"Logs of the servers and workers kept in {logs.relative_to(harness.ROOT)}")
        except (KeyboardInterrupt, harness.ServerError) as exc:
            return harness.stopped(exc)
        finally:
            with contextlib.suppress(Exception):
                if created:
                    database(url, "drop")
                else:
                    clean_up(url, arranged, outcome.event_ids)
    summary = print_report(outcome, verdict, settings["window"], describe)
    if any(errors.values()):
        print(f"  errors logged (servers, workers): {errors}")
    harness.headline("events lost + applied twice + mails lost + votes lost or extra + "
                     "5xx outside the kill window",
                     sum((verdict.events_lost, verdict.applied_twice, verdict.mails_lost,
                          verdict.votes_lost, verdict.votes_extra, verdict.bad_5xx)),
                     goal="== 0")  # fmt: skip
    harness.headline("p99 latency outside the fault windows", summary["p99_ms_outside_faults"],
                     "ms")  # fmt: skip
    path = harness.write_result("soak", {
        "benchmark": "soak", "settings": settings, "describe": describe,
        "correct": verdict.correct, **{k: v for k, v in vars(verdict).items()},
        **summary, "faults": [vars(f) for f in outcome.faults], "log_errors": errors,
        "drained_seconds": outcome.drained_in, "environment": harness.environment(),
        "elapsed_seconds": round(time.monotonic() - started, 1),
    })  # fmt: skip
    print(f"Result written to {path.relative_to(harness.ROOT)} "
          f"({time.monotonic() - started:.0f}s in all)")  # fmt: skip
    return 0 if verdict.correct else 1
