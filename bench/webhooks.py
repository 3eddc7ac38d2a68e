"""Stripe events through `POST /stripe/webhook` on PostgreSQL: acknowledged, then applied.

The webhook verifies, stores the event in the `stripe_events` inbox and answers 200 before
any Stripe call (patrons/pledges/webhooks.py); the effects come after, from a background
thread per process and from `flask stripe-worker` (patrons/pledges/inbox.py). This measures
both halves, in one run, with the app under gunicorn as in production (two workers):

1. **Acknowledged per second.** wrk (with a Lua script written by this module) posts
   distinct, signed `invoice.paid` events, each for an invoice Stripe does not have, to the
   webhook; and, in alternating rounds, the same kind of events to a baseline route that
   `bench_app()` adds to the same app for this benchmark only: the same body cap, the same
   `Gateway.parse_event` signature check and mode check, then 200 without touching the
   database. Goal: webhook >= 1,000 events/s and >= 0.5 x the baseline. The events stored
   are then counted (none lost: at least one row per distinct event answered 200) and
   deleted.
2. **Applied, posted to the webhook.** Real subscriptions made in the offline Stripe
   (localstripe, through `python -m patrons.fakestripe`, as tests/pledges/conftest.py's
   StripeWorld makes them: a known customer with a card and a pending pledge each); their
   `customer.subscription.updated` and `invoice.paid` events posted, each twice, shuffled,
   while two `flask stripe-worker` processes run beside the server. Timed from the first
   post to the last event applied; who applied how many is printed.
3. **Applied, a backlog.** As many more subscriptions, whose events are put in the inbox at
   once (`Gateway.parse_event` and `inbox.store`, the webhook's own steps; each twice), as
   if the process that stored them had died before applying them; the same two workers take
   them with row claims (`FOR UPDATE SKIP LOCKED`). Timed from the commit to the last one
   applied; each worker's share is printed.

Afterwards the database is read: 0 lost (every stored event `applied` or `ignored`, every
pledge active with its one payment) and 0 applied twice (payments per invoice,
`payment_changes` per payment, status changes per pledge, receipts per reader, rows added
by a second copy). The exit status is 1 if either is not 0 or an answer was not 200; the
speed goals are printed as PASS or MISS.

    python -m bench webhooks         # or: make bench BENCH=webhooks

The background applier: to measure the acknowledgement alone, `bench_app()` sets
`app.config["STRIPE_EVENTS_BACKGROUND"] = False` (BENCH_BACKGROUND_APPLIER=on leaves it
unset). Until `inbox.apply_soon` reads that setting, the applier stays on; the summary says
which it was. With it on, each acknowledged event also costs a localstripe read (404, so
`ignored`) in the same gunicorn workers, and in phase 2 the workers only take what the
background threads leave.

Settings (environment): BENCH_DATABASE_URL (default: postgresql+psycopg://postgres@127.0.0.1
:5432/bench_webhooks, created if missing, migrated; the rows of a run are deleted after it),
BENCH_SUBSCRIPTIONS (60 per applying phase), BENCH_ROUNDS (3), BENCH_DURATION (4 s per side
and round), BENCH_WARMUP (1 s), BENCH_CONNECTIONS (16), BENCH_WRK_THREADS (2), BENCH_CLIENTS
(8 posting threads in phase 2), BENCH_BACKGROUND_APPLIER (off), BENCH_WORKERS /
BENCH_THREADS / BENCH_WORKER_CLASS as for every benchmark. Needs wrk.

Not measured: real Stripe answers a read in 100-300 ms, localstripe in a few; that wait is
the applier's, never the webhook's. The client, gunicorn, localstripe and PostgreSQL share
this machine's CPUs.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import harness
from bench.article import migrate, server_env

if TYPE_CHECKING:
    from flask import Flask, Response

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_webhooks"
WEBHOOK_PATH = "/stripe/webhook"
BASELINE_PATH = "/bench/baseline-webhook"
WEBHOOK_SECRET = "whsec_bench_" + "0" * 16
SECRET_KEY = "sk_test_bench"  # noqa: S105  (localstripe accepts any key)
FIXTURES = harness.ROOT / "tests" / "fixtures" / "stripe"
TARGET_ACKS = 1000.0
TARGET_RATIO = 0.5
MAX_RATE = 3000  # events written per second of a round (more are counted as reused)
DONE_STATES = ("applied", "ignored")
BACKGROUND_APPLIER_SETTING = "STRIPE_EVENTS_BACKGROUND"


# --- the server: the real app, plus a baseline route for this process only ----------------


def bench_app() -> Flask:
    """`create_app()` from the environment, as wsgi.py, plus the baseline route
    (gunicorn 'bench.webhooks:bench_app()')."""
    from patrons import create_app
    from patrons.core.extensions import csrf

    app = create_app()
    if os.environ.get("BENCH_BACKGROUND_APPLIER", "off") == "off":
        # asks inbox.apply_soon to leave the events to `flask stripe-worker`: the setting
        # this benchmark needs to measure the acknowledgement alone (no effect until the
        # app reads it; the run then reports the background applier as on)
        app.config[BACKGROUND_APPLIER_SETTING] = False
    app.add_url_rule(BASELINE_PATH, "bench_baseline", csrf.exempt(baseline), methods=["POST"])
    return app


def baseline() -> Response:
    """What the webhook does before it stores: the body cap, the signature and the event's
    reading (`Gateway.parse_event`), the mode; then 200, with no database."""
    from flask import Response, g, request

    from patrons.pledges.billing import gateway
    from patrons.pledges.stripe_objects import SignatureError
    from patrons.pledges.webhooks import MAX_EVENT_BYTES

    g.public_page = True
    if (request.content_length or 0) > MAX_EVENT_BYTES:
        return Response("Too large.\n", 413, mimetype="text/plain")
    gw = gateway()
    if gw is None:
        return Response("Not configured.\n", 400, mimetype="text/plain")
    try:
        event = gw.parse_event(
            request.get_data(cache=False), request.headers.get("Stripe-Signature")
        )
    except SignatureError:
        return Response("Invalid signature.\n", 400, mimetype="text/plain")
    if event.livemode != gw.livemode:
        return Response("Environment mismatch.\n", 400, mimetype="text/plain")
    return Response(
        "Received.\n", 200, mimetype="text/plain", headers={"Cache-Control": "no-store"}
    )


# --- events ------------------------------------------------------------------------------


def _fixture(name: str) -> str:
    """A Stripe object shape at the pinned API version, compact, its id a placeholder."""
    obj = json.loads((FIXTURES / name).read_text())
    obj["id"] = "@@ID@@"
    return json.dumps(obj, separators=(",", ":"))


TEMPLATES = {
    "invoice.paid": "pinned_invoice_paid.json",
    "customer.subscription.updated": "pinned_subscription.json",
}


class Payloads:
    """Signed event bodies from the fixture shapes (the webhook reads only the type and the
    ids; the effects come from Stripe)."""

    def __init__(self) -> None:
        self.objects = {kind: _fixture(name) for kind, name in TEMPLATES.items()}

    def body(self, event_id: str, kind: str, object_id: str) -> str:
        obj = self.objects[kind].replace("@@ID@@", object_id)
        return (
            f'{{"id":"{event_id}","object":"event","type":"{kind}","created":{int(time.time())},'
            f'"livemode":false,"api_version":"2026-10-28.endive","data":{{"object":{obj}}}}}'
        )


def sign(body: str) -> str:
    import stripe

    return str(stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET))


def write_requests(path: Path, payloads: Payloads, prefix: str, count: int) -> list[str]:
    """`count` signed `invoice.paid` events for invoices Stripe does not have, one
    "signature<TAB>body" a line, for the Lua script; their event ids."""
    ids = [f"{prefix}{n:06d}" for n in range(count)]
    with path.open("w") as out:
        for n, event_id in enumerate(ids):
            body = payloads.body(event_id, "invoice.paid", f"in_bench_missing_{prefix}{n}")
            out.write(f"{sign(body)}\t{body}\n")
    return ids


LUA = r"""
-- written by bench/webhooks.py: each wrk thread posts its share of the pre-signed events
-- ("signature<TAB>body" a line), each once, in order (again from the start only if it runs
-- out, counted as reused)
local threads, count = {}, 0

function setup(thread)
  thread:set("tid", count)
  count = count + 1
  table.insert(threads, thread)
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  reqs, n = {}, 0
  for line in io.lines(file) do
    if n % nthreads == tid then
      local tab = string.find(line, "\t", 1, true)
      reqs[#reqs + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json; charset=utf-8",
        ["Stripe-Signature"] = string.sub(line, 1, tab - 1),
      }, string.sub(line, tab + 1))
    end
    n = n + 1
  end
  size, sent, ok, other = #reqs, 0, 0, 0
end

function request()
  sent = sent + 1
  return reqs[(sent - 1) % size + 1]
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local ok_all, other_all, reused = 0, 0, 0
  for _, t in ipairs(threads) do
    ok_all = ok_all + t:get("ok")
    other_all = other_all + t:get("other")
    reused = reused + math.max(0, t:get("sent") - t:get("size"))
  end
  io.write(string.format("BENCH ok=%d other=%d reused=%d\n", ok_all, other_all, reused))
end
"""


# --- acknowledging -------------------------------------------------------------------------


@dataclass
class AckRun:
    side: str
    rps: float
    p99_ms: float
    ok: int
    other: int
    reused: int
    cpu_us: float


def run_wrk(
    wrk: str,
    settings: harness.WrkSettings,
    server: harness.Server,
    path: str,
    requests_file: Path,
    seconds: int,
    side: str,
) -> AckRun:
    script = requests_file.parent / "post.lua"
    if not script.exists():
        script.write_text(LUA)
    cmd = settings.command(wrk, server.url(path), seconds)
    cmd[-1:-1] = ["-s", str(script)]
    cmd += ["--", str(requests_file), str(settings.threads)]
    cpu_before = server.workers_cpu_seconds()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    cpu = server.workers_cpu_seconds() - cpu_before
    if done.returncode != 0:
        raise harness.ServerError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = harness.parse_wrk(server.url(path), done.stdout)
    found = re.search(r"^BENCH ok=(\d+) other=(\d+) reused=(\d+)", done.stdout, re.M)
    if found is None:
        raise harness.ServerError(f"the Lua script printed no counts:\n{done.stdout}")
    ok, other, reused = map(int, found.groups())
    cpu_us = cpu / result.requests * 1e6 if result.requests else float("nan")
    return AckRun(side, result.requests_per_second, result.p99_ms, ok, other, reused, cpu_us)


@dataclass
class AckPhase:
    runs: list[AckRun] = field(default_factory=list)
    stored: Counter[str] = field(default_factory=Counter)  # the events' states, settled

    def side(self, name: str) -> list[AckRun]:
        return [r for r in self.runs if r.side == name]

    def rate(self, name: str) -> float:
        return harness.median([r.rps for r in self.side(name)]) if self.side(name) else 0.0

    def cpu(self, name: str) -> float:
        return harness.median([r.cpu_us for r in self.side(name)]) if self.side(name) else 0.0

    def count(self, name: str, what: str) -> int:
        return sum(int(getattr(r, what)) for r in self.side(name))

    @property
    def acknowledged(self) -> int:
        """Distinct events answered 200 (at least: a repeat of an event is not counted)."""
        return sum(
            self.count(side, "ok") - self.count(side, "reused")
            for side in ("webhook", "warm-webhook")
        )

    @property
    def lost(self) -> int:
        return max(0, self.acknowledged - sum(self.stored.values()))

    @property
    def background_applier(self) -> bool:
        return sum(self.stored.values()) > self.stored["pending"]


def acknowledge(
    wrk: str,
    server: harness.Server,
    settings: harness.WrkSettings,
    url: str,
    tmp: Path,
    event_ids: list[str],
) -> AckPhase:
    """Rounds of wrk against the webhook and the baseline in turn (the order alternates);
    then the stored events are counted and deleted (what the background applier did not
    reach would only slow the next phases)."""
    rounds = harness.env_int("BENCH_ROUNDS", 3)
    payloads = Payloads()
    phase = AckPhase()
    per_round = settings.duration * MAX_RATE
    base_file, warm_file = tmp / "baseline.txt", tmp / "warm.txt"
    write_requests(base_file, payloads, "evt_bench_base_", per_round)
    event_ids += write_requests(warm_file, payloads, f"evt_bench_warm_{RUN}_", 2000)
    print(f"  warm-up: {settings.warmup}s each", flush=True)
    for name, path, requests_file in (
        ("webhook", WEBHOOK_PATH, warm_file),
        ("baseline", BASELINE_PATH, base_file),
    ):
        warm = run_wrk(wrk, settings, server, path, requests_file, settings.warmup, name)
        phase.runs.append(AckRun(**{**vars(warm), "side": f"warm-{name}"}))
    for n in range(rounds):
        hook_file = tmp / f"webhook-{n}.txt"
        event_ids += write_requests(hook_file, payloads, f"evt_bench_ack_{RUN}_{n}_", per_round)
        sides = [("webhook", WEBHOOK_PATH, hook_file), ("baseline", BASELINE_PATH, base_file)]
        for name, path, requests_file in sides if n % 2 == 0 else sides[::-1]:
            r = run_wrk(wrk, settings, server, path, requests_file, settings.duration, name)
            phase.runs.append(r)
            print(
                f"  round {n + 1}/{rounds} {name:<8} {r.rps:>8.1f} events/s"
                f"  p99 {r.p99_ms:>7.2f} ms"
                f"  gunicorn CPU {r.cpu_us:>5.0f} us/event  non-200 {r.other}  reused {r.reused}",
                flush=True,
            )
    ack_ids = [i for i in event_ids if i.startswith(("evt_bench_warm_", "evt_bench_ack_"))]
    phase.stored = settle(url, ack_ids)
    print(
        f"  {sum(phase.stored.values())} events stored for {phase.acknowledged} distinct ones "
        f"answered 200; their states: {dict(phase.stored)} (background applier "
        f"{'on' if phase.background_applier else 'off'}); deleted now",
        flush=True,
    )
    delete_events(url, ack_ids)
    return phase


# --- the database --------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    """Create the benchmark's PostgreSQL database if it is missing."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    if target.get_backend_name() != "postgresql" or not target.database:
        return
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            known = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            )
            if not known:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


@contextlib.contextmanager
def session(url: str) -> Iterator[Any]:
    from sqlalchemy.orm import Session

    from patrons.core.db import make_engine

    engine = make_engine(url)
    try:
        with Session(engine) as db:
            yield db
    finally:
        engine.dispose()


def event_states(url: str, ids: list[str]) -> Counter[str]:
    from sqlalchemy import func, select

    from patrons.models import StripeEvent

    with session(url) as db:
        rows = db.execute(
            select(StripeEvent.state, func.count())
            .where(StripeEvent.id.in_(ids))
            .group_by(StripeEvent.state)
        ).all()
    return Counter({state: n for state, n in rows})


def wait_until(url: str, ids: list[str], done: Any, timeout: float) -> Counter[str]:
    """Poll the events' states until `done(states)` or the timeout; the last states."""
    deadline = time.monotonic() + timeout
    while True:
        states = event_states(url, ids)
        if done(states) or time.monotonic() > deadline:
            return states
        time.sleep(0.1)


def settle(url: str, ids: list[str], quiet: float = 1.5, timeout: float = 30) -> Counter[str]:
    """Wait until the background appliers stop changing these events' states."""
    last: Counter[str] = Counter()
    still_since = time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = event_states(url, ids)
        if states != last:
            last, still_since = states, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            break
        time.sleep(0.2)
    return last


def delete_events(url: str, ids: list[str]) -> None:
    from sqlalchemy import delete

    from patrons.models import StripeEvent

    with session(url) as db:
        for start in range(0, len(ids), 5000):
            db.execute(delete(StripeEvent).where(StripeEvent.id.in_(ids[start : start + 5000])))
        db.commit()


# --- localstripe and subscriptions -----------------------------------------------------------


@contextlib.contextmanager
def localstripe(log_dir: Path) -> Iterator[str]:
    port = harness.free_port()
    url = f"http://{harness.HOST}:{port}"
    with (log_dir / "localstripe.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "patrons.fakestripe", "--port", str(port)],
            cwd=harness.ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(  # noqa: S310  (loopback)
                    f"{url}/v1/balance", headers={"Authorization": f"Bearer {SECRET_KEY}"}
                )
                with urllib.request.urlopen(request, timeout=1):  # noqa: S310
                    break
            except (OSError, urllib.error.URLError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise harness.ServerError("localstripe did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass(frozen=True)
class Sub:
    user_id: int
    email: str
    pledge_id: int
    subscription_id: str
    invoice_id: str


def subscribe(url: str, api_base: str, tag: str, count: int) -> list[Sub]:
    """`count` readers, each with a known Stripe customer, a card, a pending pledge and an
    active subscription whose first invoice is paid (as StripeWorld.subscribe)."""
    from patrons.core import clock
    from patrons.models import BillingCustomer, Pledge, User
    from patrons.pledges.gateway import Gateway

    gw = Gateway(SECRET_KEY, webhook_secret=WEBHOOK_SECRET, api_base=api_base)
    plan = gw.ensure_plan("EUR", 500)

    def customer(user: tuple[int, str]) -> str:
        customer_id = gw.create_customer(
            email=user[1], name=None, local_id=user[0], idempotency_key=f"c-{tag}-{user[0]}"
        )
        card = gw.client.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2031,
                    "cvc": "123",
                },
            }
        )
        gw.set_default_card(customer_id, card.id)
        return customer_id

    with session(url) as db:
        users = [
            User(email=f"bench-{tag}-{n}@example.org", password_hash="!")  # noqa: S106
            for n in range(count)
        ]
        db.add_all(users)
        db.commit()
        people = [(u.id, u.email) for u in users]
    with ThreadPoolExecutor(4) as pool:
        customers = list(pool.map(customer, people))
    with session(url) as db:
        now = clock.now()
        db.add_all(
            BillingCustomer(user_id=user_id, stripe_customer_id=c, created_at=now)
            for (user_id, _), c in zip(people, customers, strict=True)
        )
        pledges = [
            Pledge(
                user_id=user_id,
                amount=500,
                currency="EUR",
                status="pending",
                stripe_customer_id=c,
                created_at=now,
            )
            for (user_id, _), c in zip(people, customers, strict=True)
        ]
        db.add_all(pledges)
        db.commit()
        pledge_ids = [p.id for p in pledges]

    def subscription(item: tuple[int, str]) -> tuple[str, str]:
        pledge_id, customer_id = item
        sub = gw.create_subscription(
            customer_id, plan, pledge_id=pledge_id, idempotency_key=f"s-{tag}-{pledge_id}"
        )
        return sub.id, sub.latest_invoice_id or ""

    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(subscription, zip(pledge_ids, customers, strict=True)))
    return [
        Sub(user_id, email, pledge_id, sub_id, invoice_id)
        for (user_id, email), pledge_id, (sub_id, invoice_id) in zip(
            people, pledge_ids, made, strict=True
        )
    ]


def events_of(subs: list[Sub], prefix: str) -> list[tuple[str, str, str]]:
    """(event id, type, object id): each subscription's update and its invoice's payment."""
    events = []
    for n, sub in enumerate(subs):
        events.append((f"{prefix}{n}_sub", "customer.subscription.updated", sub.subscription_id))
        events.append((f"{prefix}{n}_inv", "invoice.paid", sub.invoice_id))
    return events


# --- applying ------------------------------------------------------------------------------


@dataclass
class Posted:
    seconds: float
    statuses: Counter[int]


def post_twice(
    port: int, payloads: Payloads, events: list[tuple[str, str, str]], clients: int
) -> Posted:
    """Post every event twice (the copies shuffled apart), signed as it is sent, over
    `clients` keep-alive connections."""
    order = [e for e in events for _ in range(2)]
    random.Random(7).shuffle(order)
    lock = threading.Lock()
    position = iter(order)
    statuses: Counter[int] = Counter()

    def client() -> None:
        conn = http.client.HTTPConnection(harness.HOST, port, timeout=60)
        seen: Counter[int] = Counter()
        while True:
            with lock:
                item = next(position, None)
            if item is None:
                break
            body = payloads.body(*item)
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": sign(body),
            }
            try:
                conn.request("POST", WEBHOOK_PATH, body=body.encode(), headers=headers)
                response = conn.getresponse()
                response.read()
                seen[response.status] += 1
            except (OSError, http.client.HTTPException):
                seen[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(harness.HOST, port, timeout=60)
        conn.close()
        with lock:
            statuses.update(seen)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Posted(time.perf_counter() - started, statuses)


def store_twice(
    url: str, payloads: Payloads, events: list[tuple[str, str, str]]
) -> tuple[datetime, int]:
    """Put the events in the inbox as the webhook does (`Gateway.parse_event` on a signed
    body, then `inbox.store`), each twice; when the first copies were committed (one
    transaction: a backlog appears at once) and how many rows the second copies added (0)."""
    from patrons.core import clock
    from patrons.pledges import inbox
    from patrons.pledges.gateway import Gateway

    gw = Gateway(SECRET_KEY, webhook_secret=WEBHOOK_SECRET, api_base="http://127.0.0.1:9")
    bodies = [payloads.body(*item) for item in events]
    parsed = [gw.parse_event(body.encode(), sign(body)) for body in bodies]
    added_again = 0
    with session(url) as db:
        for event in parsed:
            inbox.store(db, event, clock.now())
        db.commit()
        visible = clock.now()
        for event in parsed:
            added_again += int(inbox.store(db, event, clock.now()))
        db.commit()
    return visible, added_again


class Workers:
    """Two `flask stripe-worker` processes beside the server, as in production."""

    def __init__(self, env: dict[str, str], tmp: Path, count: int) -> None:
        cmd = [sys.executable, "-m", "flask", "--app", "patrons", "stripe-worker"]
        cmd += ["--interval", "0.1"]
        self.outputs = [tmp / f"stripe-worker-{n}.log" for n in range(count)]
        self.processes: list[subprocess.Popen[bytes]] = []
        for output in self.outputs:
            with output.open("wb") as log:
                self.processes.append(
                    subprocess.Popen(
                        cmd,
                        cwd=harness.ROOT,
                        env={**env, "PYTHONUNBUFFERED": "1"},
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

    def applied(self) -> list[int]:
        """How many events each worker has printed it applied so far ("12 applied, ...")."""
        return [
            sum(int(n) for n in re.findall(r"(\d+) applied", output.read_text()))
            for output in self.outputs
        ]

    def wait_ready(self, url: str) -> str:
        """Until a worker has applied a canary event (an invoice Stripe does not have, so
        `ignored`); its id. The workers were started together, so both are up by then."""
        canary = f"evt_bench_canary_{RUN}"
        store_twice(url, Payloads(), [(canary, "invoice.paid", f"in_bench_canary_{RUN}")])
        for process in self.processes:
            if process.poll() is not None:
                raise harness.ServerError("a stripe-worker exited: " + self.outputs[0].read_text())
        states = wait_until(url, [canary], finished, timeout=90)
        if not finished(states):
            raise harness.ServerError("the stripe-workers applied nothing within 90 s")
        time.sleep(0.5)
        return canary

    def stop(self) -> None:
        for process in self.processes:
            _stop(process)


def last_applied(url: str, ids: list[str]) -> datetime | None:
    from sqlalchemy import func, select

    from patrons.models import StripeEvent

    with session(url) as db:
        last: datetime | None = db.scalar(
            select(func.max(StripeEvent.applied_at)).where(StripeEvent.id.in_(ids))
        )
    return last


def finished(states: Counter[str]) -> bool:
    return states.get("pending", 0) == 0


@dataclass
class Applied:
    name: str
    events: int
    seconds: float  # from the first post (or the backlog's commit) to the last applied
    states: Counter[str]
    by_worker: list[int]
    states_after_posting: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)  # of the posts (0: no answer)
    stored_again: int = 0  # rows a second copy of an event added

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def lost(self) -> int:
        return self.events - sum(self.states[s] for s in DONE_STATES)

    @property
    def by_background(self) -> int:
        return max(0, self.states["applied"] - sum(self.by_worker))


def _finish_phase(
    url: str, ids: list[str], workers: Workers, before: list[int], started: datetime
) -> tuple[Counter[str], float, list[int]]:
    from patrons.core import clock

    states = wait_until(url, ids, finished, timeout=90)
    last = last_applied(url, ids) or clock.now()
    shares = [after - b for after, b in zip(workers.applied(), before, strict=True)]
    return states, (last - started).total_seconds(), shares


def apply_via_webhook(
    url: str, server: harness.Server, workers: Workers, subs: list[Sub], clients: int
) -> Applied:
    from patrons.core import clock

    events = events_of(subs, f"evt_bench_hook_{RUN}_")
    ids = [e[0] for e in events]
    before = workers.applied()
    started = clock.now()
    posted = post_twice(server.port, Payloads(), events, clients)
    after_posting = event_states(url, ids)
    states, seconds, shares = _finish_phase(url, ids, workers, before, started)
    return Applied(
        "posted to the webhook", len(ids), seconds, states, shares, after_posting, posted.statuses
    )


def apply_backlog(url: str, workers: Workers, subs: list[Sub]) -> Applied:
    events = events_of(subs, f"evt_bench_inbox_{RUN}_")
    ids = [e[0] for e in events]
    before = workers.applied()
    visible, added_again = store_twice(url, Payloads(), events)
    states, seconds, shares = _finish_phase(url, ids, workers, before, visible)
    return Applied(
        "a backlog in the inbox", len(ids), seconds, states, shares, stored_again=added_again
    )


# --- checking ------------------------------------------------------------------------------


def effects(url: str, subs: list[Sub]) -> tuple[dict[str, int], dict[str, int]]:
    """(applied twice, missing) by what was counted, over these subscriptions."""
    from sqlalchemy import func, select

    from patrons.models import OutboundEmail, Payment, PaymentChange, Pledge, PledgeStatusChange

    users = [s.user_id for s in subs]
    pledges = [s.pledge_id for s in subs]
    double: dict[str, int] = {}
    missing: dict[str, int] = {}
    with session(url) as db:

        def per(key: Any, where: Any) -> Counter[Any]:
            rows = db.execute(select(key, func.count()).where(where).group_by(key)).all()
            return Counter({k: n for k, n in rows})

        payments = per(Payment.stripe_invoice_id, Payment.pledge_id.in_(pledges))
        payment_ids = list(db.scalars(select(Payment.id).where(Payment.pledge_id.in_(pledges))))
        checks: dict[str, tuple[Counter[Any], list[Any]]] = {
            "pledges per reader": (per(Pledge.user_id, Pledge.user_id.in_(users)), users),
            "payments per invoice": (payments, [s.invoice_id for s in subs]),
            "payment_changes per payment": (
                per(PaymentChange.payment_id, PaymentChange.payment_id.in_(payment_ids)),
                payment_ids,
            ),
            "status changes per pledge": (
                per(PledgeStatusChange.pledge_id, PledgeStatusChange.pledge_id.in_(pledges)),
                pledges,
            ),
            "receipts per reader": (
                per(
                    OutboundEmail.to_address,
                    OutboundEmail.to_address.in_([s.email for s in subs])
                    & OutboundEmail.kind.in_(("pledge_thanks", "pledge_receipt")),
                ),
                [s.email for s in subs],
            ),
        }
        for label, (found, keys) in checks.items():
            double[label] = sum(max(0, found[k] - 1) for k in keys)
            missing[label] = sum(1 for k in keys if found[k] == 0)
        statuses = Counter(db.scalars(select(Pledge.status).where(Pledge.id.in_(pledges))))
        missing["pledges not active"] = sum(n for s, n in statuses.items() if s != "active")
    return double, missing


def clean_up(url: str, event_ids: list[str]) -> None:
    """Delete this run's rows: its events, and its readers (`bench-<run>-<n>@`) with all
    that hangs on them."""
    from sqlalchemy import delete, select

    from patrons.models import BillingCustomer, OutboundEmail, Pledge, User

    delete_events(url, event_ids)
    mine = f"bench-{RUN}-%"
    with session(url) as db:
        users = list(db.scalars(select(User.id).where(User.email.like(mine))))
        db.execute(delete(OutboundEmail).where(OutboundEmail.to_address.like(mine)))
        db.execute(delete(Pledge).where(Pledge.user_id.in_(users)))  # payments cascade
        db.execute(delete(BillingCustomer).where(BillingCustomer.user_id.in_(users)))
        db.execute(delete(User).where(User.id.in_(users)))
        db.commit()


# --- the report ------------------------------------------------------------------------------


def print_applied(phase: Applied) -> None:
    workers = " + ".join(str(n) for n in phase.by_worker)
    print(
        f"  {phase.events} events applied in {phase.seconds:.2f}s = {phase.rate:.1f}/s; "
        f"states {dict(phase.states)}; applied by the background threads {phase.by_background}, "
        f"by the two workers {workers}",
        flush=True,
    )
    if phase.statuses:
        print(
            f"  answers to the {sum(phase.statuses.values())} posts: {dict(phase.statuses)}; "
            f"states when the last answer came: {dict(phase.states_after_posting)}"
        )
    if not phase.statuses and min(phase.by_worker, default=0) == 0:
        print(
            "  warning: one worker claimed the whole backlog, the other none: the claims were "
            "not shared (inbox.claim: is its LIMIT applied?)",
            flush=True,
        )


@dataclass
class Verdict:
    lost: int
    twice: int
    errors: int

    @property
    def correct(self) -> bool:
        return self.lost == 0 and self.twice == 0 and self.errors == 0


def verdict(
    ack: AckPhase, phases: list[Applied], double: dict[str, int], missing: dict[str, int]
) -> Verdict:
    return Verdict(
        lost=ack.lost + sum(p.lost for p in phases) + sum(missing.values()),
        twice=sum(double.values()) + sum(p.stored_again for p in phases),
        errors=ack.count("webhook", "other")
        + ack.count("baseline", "other")
        + sum(n for p in phases for code, n in p.statuses.items() if code != 200),
    )


def report(
    ack: AckPhase,
    phases: list[Applied],
    double: dict[str, int],
    missing: dict[str, int],
    settings: str,
) -> dict[str, Any]:
    hook, base = ack.rate("webhook"), ack.rate("baseline")
    ratio = hook / base if base else 0.0
    result = verdict(ack, phases, double, missing)
    cpu = f"{ack.cpu('webhook'):.0f} | {ack.cpu('baseline'):.0f}"
    cpu_ratio = ack.cpu("baseline") / ack.cpu("webhook") if ack.cpu("webhook") else 0.0
    rows = [
        ("acknowledged events/s, POST /stripe/webhook", f"{hook:.1f}", f">= {TARGET_ACKS:.0f}"),
        ("baseline events/s (same signature check, no DB)", f"{base:.1f}", ""),
        ("ratio acknowledged/baseline", f"{ratio:.3f}", f">= {TARGET_RATIO}"),
        ("gunicorn CPU us/event, webhook | baseline", cpu, ""),
        ("cross-check: CPU ratio baseline/webhook", f"{cpu_ratio:.3f}", "less noisy than /s"),
        *((f"applied events/s, {p.name}", f"{p.rate:.1f}", f"{p.events} events") for p in phases),
        (
            "backlog applied by worker 1 + worker 2",
            " + ".join(str(n) for n in phases[-1].by_worker),
            "both > 0 expected",
        ),
        ("lost (not stored, not applied, effect missing)", str(result.lost), "must be 0"),
        ("applied twice (extra effects, rows)", str(result.twice), "must be 0"),
        ("non-200 answers", str(result.errors), "must be 0"),
    ]
    background = "on" if ack.background_applier else "off"
    print()
    print(f"Stripe webhook: acknowledge, then apply  ({settings}; background applier {background})")
    for label, value, note in rows:
        print(f"  {label:<50} {value:>12}  {note}")
    print("  applied twice, by check: " + ", ".join(f"{k} {v}" for k, v in double.items()))
    print("  missing, by check: " + ", ".join(f"{k} {v}" for k, v in missing.items()))
    if ack.count("webhook", "reused"):
        print(f"  note: {ack.count('webhook', 'reused')} acknowledged posts repeated an event")
    fast = hook >= TARGET_ACKS and ratio >= TARGET_RATIO
    load = os.getloadavg()[0]
    bar = "=" * 76
    print(bar)
    print(
        f"{'PASS' if result.correct else 'FAIL'}: lost {result.lost}, "
        f"applied twice {result.twice}, non-200 {result.errors}"
    )
    print(
        f"{'PASS' if fast else 'MISS'}: {hook:.0f} acknowledged/s (goal {TARGET_ACKS:.0f}), "
        f"{ratio:.3f} x baseline (goal {TARGET_RATIO}); load average {load:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(bar)
    return {
        "cpu_ratio": cpu_ratio,
        "acknowledged_per_second": hook,
        "baseline_per_second": base,
        "ratio": ratio,
        "background_applier": background,
        "lost": result.lost,
        "applied_twice": result.twice,
        "errors": result.errors,
        "correct": result.correct,
        "fast": fast,
    }


# --- main ------------------------------------------------------------------------------------

RUN = secrets.token_hex(3)


def wrk_settings_from_env() -> harness.WrkSettings:
    return harness.WrkSettings(
        threads=harness.env_int("BENCH_WRK_THREADS", 2),
        connections=harness.env_int("BENCH_CONNECTIONS", 16),
        duration=harness.env_int("BENCH_DURATION", 4),
        warmup=harness.env_int("BENCH_WARMUP", 1),
    )


def app_env(url: str, tmp: Path, api_base: str) -> dict[str, str]:
    env = server_env(url, tmp / "instance", "http://127.0.0.1")
    env.update(
        STRIPE_SECRET_KEY=SECRET_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=api_base,
        STRIPE_NETWORK_RETRIES="0",
        BENCH_BACKGROUND_APPLIER=os.environ.get("BENCH_BACKGROUND_APPLIER", "off"),
    )
    return env


@dataclass
class Outcome:
    ack: AckPhase
    phases: list[Applied]
    subs: list[Sub]


def run_phases(url: str, tmp: Path, outcome: Outcome, event_ids: list[str]) -> None:
    """The three phases, with localstripe, the app and (from phase 2) the workers running;
    what they made goes into `outcome` and `event_ids` as it is made (for the clean-up)."""
    gunicorn_settings = harness.GunicornSettings.from_env()
    count = harness.env_int("BENCH_SUBSCRIPTIONS", 60)
    wrk = harness.find_wrk() or "wrk"
    with localstripe(tmp) as api_base:
        env = app_env(url, tmp, api_base)
        with harness.gunicorn(
            "webhooks",
            "bench.webhooks:bench_app()",
            gunicorn_settings,
            env,
            tmp,
            ready_path="/healthz",
        ) as server:
            print("1. acknowledging: distinct signed events, webhook and baseline in turn")
            outcome.ack = acknowledge(wrk, server, wrk_settings_from_env(), url, tmp, event_ids)
            workers = Workers(env, tmp, 2)
            try:
                setup = time.perf_counter()
                outcome.subs = subscribe(url, api_base, RUN, 2 * count)
                print(
                    f"  ({len(outcome.subs)} subscriptions made in localstripe in "
                    f"{time.perf_counter() - setup:.1f}s)",
                    flush=True,
                )
                event_ids.append(workers.wait_ready(url))
                hook_subs, backlog_subs = outcome.subs[:count], outcome.subs[count:]
                event_ids += [e[0] for e in events_of(hook_subs, f"evt_bench_hook_{RUN}_")]
                event_ids += [e[0] for e in events_of(backlog_subs, f"evt_bench_inbox_{RUN}_")]
                print(
                    "2. applying events posted to the webhook (each twice; two stripe-workers "
                    "beside the server)",
                    flush=True,
                )
                clients = harness.env_int("BENCH_CLIENTS", 8)
                outcome.phases.append(apply_via_webhook(url, server, workers, hook_subs, clients))
                print_applied(outcome.phases[-1])
                print(
                    "3. applying a backlog stored in the inbox (each event twice), two "
                    "stripe-workers claiming with SKIP LOCKED",
                    flush=True,
                )
                outcome.phases.append(apply_backlog(url, workers, backlog_subs))
                print_applied(outcome.phases[-1])
            finally:
                workers.stop()


def main() -> int:
    if harness.find_wrk() is None:
        print(harness.WRK_MISSING, file=sys.stderr)
        return 2
    url = os.environ.get("BENCH_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    wrk_settings = wrk_settings_from_env()
    settings = (
        f"gunicorn {harness.GunicornSettings.from_env().describe()}; wrk "
        f"{wrk_settings.threads} threads x {wrk_settings.connections} connections; "
        f"{os.cpu_count()} CPUs"
    )
    print(f"Database: {url.split('@')[-1]} (migrated; this run's rows are deleted after)")
    print(f"Servers: {settings}; load average {os.getloadavg()[0]:.1f} before")
    started = time.monotonic()
    outcome = Outcome(AckPhase(), [], [])
    event_ids: list[str] = []
    with harness.sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "instance").mkdir()
        try:
            ensure_database(url)
            migrate(url)
            run_phases(url, tmpdir, outcome, event_ids)
            double, missing = effects(url, outcome.subs)
        except (KeyboardInterrupt, harness.ServerError) as exc:
            return harness.stopped(exc)
        finally:
            with contextlib.suppress(Exception):
                clean_up(url, event_ids)
    summary = report(outcome.ack, outcome.phases, double, missing, settings)
    harness.headline(
        "acknowledged events/s, POST /stripe/webhook vs the baseline route",
        float(summary["acknowledged_per_second"]),
        "/s",
        float(summary["baseline_per_second"]),
        goal=f">= {TARGET_ACKS:.0f}",
        ratio_goal=f">= {TARGET_RATIO}",
    )
    harness.headline(
        "events lost + applied twice + non-200 answers",
        sum(int(summary[k]) for k in ("lost", "applied_twice", "errors")),
        goal="== 0",
    )
    path = harness.write_result(
        "webhooks",
        {
            "benchmark": "webhooks",
            **summary,
            "settings": settings,
            "acknowledge_runs": [vars(r) for r in outcome.ack.runs],
            "applied": [
                {
                    "name": p.name,
                    "events": p.events,
                    "seconds": p.seconds,
                    "states": dict(p.states),
                    "by_worker": p.by_worker,
                    "by_background": p.by_background,
                }
                for p in outcome.phases
            ],
            "applied_twice": double,
            "missing": missing,
            "environment": harness.environment(),
            "elapsed_seconds": round(time.monotonic() - started, 1),
        },
    )
    print(
        f"Result written to {path.relative_to(harness.ROOT)} "
        f"({time.monotonic() - started:.0f}s in all)"
    )
    return 0 if summary["correct"] else 1
