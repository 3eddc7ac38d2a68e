"""Signed Stripe events through `POST /stripe/webhook` on PostgreSQL, against a baseline.

The app runs under gunicorn exactly as in production (bench/wsgi.py), pointed at localstripe
(started here, on loopback) and at PostgreSQL. Each round creates fresh subscriptions in
localstripe (a pending pledge and a known customer each, as the pledge page leaves them) and
posts, in a shuffled order, four distinct events per subscription (`customer.subscription.
created` and `.updated`, `invoice.paid` and `invoice.payment_succeeded` for its first invoice)
plus a share of exact re-deliveries of earlier events. Every post is signed just before it is
sent. The baseline is a bare Flask app under the same gunicorn settings whose one route
checks the same signature (`stripe.WebhookSignature.verify_header`) and parses the JSON:
the ratio shows what recording an event costs beyond accepting it.

    python -m bench webhooks         # or: make bench BENCH=webhooks

It prints events/s for both, their ratio, and the double effects found afterwards in the
database (a second pledge, payment, thank-you mail or status change for one fact, or a second
row for one event id), which must be 0, and the effects missing (also 0).

Settings (environment): BENCH_DATABASE_URL, else TEST_DATABASE_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/patrons_bench — a scratch PostgreSQL database:
it is migrated, and the rows a run adds are deleted after it (SQLite works too, but is not
what this measures). BENCH_SUBSCRIPTIONS (150 per round), BENCH_DUPLICATES (25: re-deliveries
per 100 distinct events), BENCH_CLIENTS (8 concurrent connections), BENCH_ROUNDS (3),
BENCH_WORKERS / BENCH_THREADS / BENCH_WORKER_CLASS as for every benchmark.

What it does not measure: real Stripe answers a retrieve in 100-300 ms, localstripe in a few;
in production that wait dominates, and gunicorn's threads are what absorb it. The client, the
servers, localstripe and PostgreSQL share this machine's CPUs.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import harness
from bench.article import migrate, server_env

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/patrons_bench"
WEBHOOK_PATH = "/stripe/webhook"
BASELINE_PATH = "/baseline/webhook"
READY_PATH = "/baseline/ready"
WEBHOOK_SECRET = "whsec_bench_" + "0" * 16
SECRET_KEY = "sk_test_bench"  # noqa: S105  (localstripe accepts any key)
EVENT_TYPES = (
    "customer.subscription.created",
    "invoice.paid",
    "invoice.payment_succeeded",
    "customer.subscription.updated",
)


# --- the baseline server ---------------------------------------------------------------


def baseline_app():  # type: ignore[no-untyped-def]
    """A bare Flask app whose one POST route verifies a Stripe signature and parses the body
    (gunicorn 'bench.webhooks:baseline_app()'); the secret comes from STRIPE_WEBHOOK_SECRET."""
    import stripe
    from flask import Flask, request

    app = Flask("bench_webhook_baseline")
    secret = os.environ["STRIPE_WEBHOOK_SECRET"]

    @app.get(READY_PATH)
    def ready() -> str:
        return "ok"

    @app.post(BASELINE_PATH)
    def hook():  # type: ignore[no-untyped-def]
        text = request.get_data().decode("utf-8")
        try:
            stripe.WebhookSignature.verify_header(
                text, request.headers.get("Stripe-Signature", ""), secret, 300
            )
            json.loads(text)
        except (stripe.SignatureVerificationError, ValueError):
            return "Invalid signature.\n", 400, {"Content-Type": "text/plain"}
        return "Recorded.\n", 200, {"Content-Type": "text/plain"}

    return app


# --- localstripe -----------------------------------------------------------------------


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
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


# --- arranging subscriptions and events ------------------------------------------------


@dataclass
class Arranged:
    """What one round set up: ids to find its rows again, and the events to post."""

    user_ids: list[int] = field(default_factory=list)
    pledge_ids: list[int] = field(default_factory=list)
    invoice_ids: list[str] = field(default_factory=list)
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # id, type, obj


def arrange(url: str, api_base: str, run_id: str, round_no: int, count: int) -> Arranged:
    """`count` customers with a card, a pending pledge and an active subscription each."""
    from sqlalchemy.orm import Session

    from patrons.core import clock
    from patrons.core.db import make_engine
    from patrons.models import BillingCustomer, Pledge, User
    from patrons.pledges.gateway import Gateway

    gw = Gateway(SECRET_KEY, webhook_secret=WEBHOOK_SECRET, api_base=api_base)
    plan = gw.ensure_plan("EUR", 500)
    arranged = Arranged()
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            for n in range(count):
                tag = f"{run_id}-{round_no}-{n}"
                user = User(email=f"bench-{tag}@example.org", password_hash="!")  # noqa: S106  (no sign-in)
                db.add(user)
                db.flush()
                customer_id = gw.create_customer(
                    email=user.email, name=None, local_id=user.id, idempotency_key=f"c-{tag}"
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
                db.add(
                    BillingCustomer(
                        user_id=user.id, stripe_customer_id=customer_id, created_at=clock.now()
                    )
                )
                pledge = Pledge(
                    user_id=user.id,
                    amount=500,
                    currency="EUR",
                    status="pending",
                    stripe_customer_id=customer_id,
                    created_at=clock.now(),
                )
                db.add(pledge)
                db.flush()
                sub = gw.create_subscription(
                    customer_id, plan, pledge_id=pledge.id, idempotency_key=f"s-{tag}"
                )
                sub_obj = gw.client.v1.subscriptions.retrieve(sub.id).to_dict()
                invoice = gw.client.v1.invoices.retrieve(sub.latest_invoice_id).to_dict()
                arranged.user_ids.append(user.id)
                arranged.pledge_ids.append(pledge.id)
                arranged.invoice_ids.append(invoice["id"])
                for k, event_type in enumerate(EVENT_TYPES):
                    obj = invoice if event_type.startswith("invoice.") else sub_obj
                    arranged.events.append((f"evt_bench_{tag}_{k}", event_type, obj))
            db.commit()
    finally:
        engine.dispose()
    return arranged


def schedule(
    events: list[tuple[str, str, dict[str, Any]]], duplicates: int, seed: int
) -> list[str]:
    """The payloads to post: the events shuffled, with re-deliveries of some mixed in."""
    rng = random.Random(seed)
    payloads = [
        json.dumps(
            {
                "id": eid,
                "object": "event",
                "type": kind,
                "created": int(time.time()),
                "livemode": False,
                "api_version": "2026-10-28.endive",
                "data": {"object": obj},
            }
        )
        for eid, kind, obj in events
    ]
    rng.shuffle(payloads)
    for _ in range(len(payloads) * duplicates // 100):
        payloads.insert(rng.randrange(len(payloads) + 1), rng.choice(payloads))
    return payloads


# --- posting -----------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    posts: int
    seconds: float
    statuses: Counter[int]

    @property
    def events_per_second(self) -> float:
        return self.posts / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code != 200)


def post_all(name: str, port: int, path: str, payloads: list[str], clients: int) -> Run:
    """Post every payload once over `clients` keep-alive connections; sign each as it goes."""
    import stripe

    lock = threading.Lock()
    position = iter(range(len(payloads)))
    statuses: Counter[int] = Counter()

    def worker() -> None:
        conn = http.client.HTTPConnection(harness.HOST, port, timeout=60)
        seen: Counter[int] = Counter()
        try:
            while True:
                with lock:
                    index = next(position, None)
                if index is None:
                    break
                body = payloads[index]
                signature = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)
                headers = {
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": signature,
                }
                try:
                    conn.request("POST", path, body=body.encode(), headers=headers)
                    response = conn.getresponse()
                    response.read()
                    seen[response.status] += 1
                except (OSError, http.client.HTTPException):
                    seen[0] += 1  # a connection error
                    conn.close()
                    conn = http.client.HTTPConnection(harness.HOST, port, timeout=60)
        finally:
            conn.close()
            with lock:
                statuses.update(seen)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Run(name, len(payloads), time.perf_counter() - started, statuses)


# --- checking ----------------------------------------------------------------------------


def effects(url: str, arranged: list[Arranged]) -> tuple[int, int, dict[str, int]]:
    """(double effects, missing effects, detail) over every round's subscriptions."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from patrons.core.db import make_engine
    from patrons.models import OutboundEmail, Payment, Pledge, PledgeStatusChange, StripeEvent
    from patrons.models import User as UserModel

    users = [u for a in arranged for u in a.user_ids]
    pledges = [p for a in arranged for p in a.pledge_ids]
    invoices = [i for a in arranged for i in a.invoice_ids]
    event_ids = [e[0] for a in arranged for e in a.events]
    engine = make_engine(url)
    detail: dict[str, int] = {}
    double = missing = 0
    try:
        with Session(engine) as db:
            emails = [u.email for u in db.scalars(select(UserModel).where(UserModel.id.in_(users)))]

            def per(key: Any, where: Any, model: Any) -> Counter[Any]:
                rows = db.execute(
                    select(key, func.count()).select_from(model).where(where).group_by(key)
                ).all()
                return Counter({k: n for k, n in rows})

            checks = {
                "pledges per user": (per(Pledge.user_id, Pledge.user_id.in_(users), Pledge), users),
                "payments per invoice": (
                    per(
                        Payment.stripe_invoice_id, Payment.stripe_invoice_id.in_(invoices), Payment
                    ),
                    invoices,
                ),
                "status changes per pledge": (
                    per(
                        PledgeStatusChange.pledge_id,
                        PledgeStatusChange.pledge_id.in_(pledges),
                        PledgeStatusChange,
                    ),
                    pledges,
                ),
                "thank-you mails per reader": (
                    per(
                        OutboundEmail.to_address,
                        OutboundEmail.to_address.in_(emails)
                        & (OutboundEmail.kind == "pledge_thanks"),
                        OutboundEmail,
                    ),
                    emails,
                ),
                "rows per event id": (
                    per(StripeEvent.id, StripeEvent.id.in_(event_ids), StripeEvent),
                    event_ids,
                ),
            }
            for label, (found, keys) in checks.items():
                extra = sum(max(0, found[k] - 1) for k in keys)
                lost = sum(1 for k in keys if found[k] == 0)
                detail[label] = extra
                double += extra
                missing += lost
            statuses = Counter(db.scalars(select(Pledge.status).where(Pledge.id.in_(pledges))))
            detail["pledges not active"] = sum(n for s, n in statuses.items() if s != "active")
            missing += detail["pledges not active"]
    finally:
        engine.dispose()
    return double, missing, detail


def clean_up(url: str, arranged: list[Arranged]) -> None:
    from sqlalchemy import delete
    from sqlalchemy.orm import Session

    from patrons.core.db import make_engine
    from patrons.models import BillingCustomer, OutboundEmail, Pledge, StripeEvent, User

    users = [u for a in arranged for u in a.user_ids]
    event_ids = [e[0] for a in arranged for e in a.events]
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            db.execute(delete(StripeEvent).where(StripeEvent.id.in_(event_ids)))
            db.execute(delete(OutboundEmail).where(OutboundEmail.to_address.like("bench-%")))
            db.execute(delete(Pledge).where(Pledge.user_id.in_(users)))  # payments cascade
            db.execute(delete(BillingCustomer).where(BillingCustomer.user_id.in_(users)))
            db.execute(delete(User).where(User.id.in_(users)))
            db.commit()
    finally:
        engine.dispose()


# --- main --------------------------------------------------------------------------------


def main() -> int:
    gunicorn_settings = harness.GunicornSettings.from_env()
    subscriptions = harness.env_int("BENCH_SUBSCRIPTIONS", 150)
    duplicates = int(os.environ.get("BENCH_DUPLICATES", "25") or 25)
    clients = harness.env_int("BENCH_CLIENTS", 8)
    rounds = harness.env_int("BENCH_ROUNDS", 3)
    source = next(
        (name for name in ("BENCH_DATABASE_URL", "TEST_DATABASE_URL") if os.environ.get(name)),
        None,
    )
    url = os.environ[source].strip() if source else DEFAULT_DATABASE_URL
    shown = url.split("@")[-1]
    print(f"Database: {source or 'default'} ({shown}); this run adds rows and deletes them after")
    print(
        f"Servers: gunicorn, {gunicorn_settings.describe()}; {clients} client connections; "
        f"{subscriptions} subscriptions x {len(EVENT_TYPES)} events per round, "
        f"+{duplicates}% re-deliveries; {rounds} rounds"
    )
    run_id = secrets.token_hex(3)
    arranged: list[Arranged] = []
    app_runs: list[Run] = []
    base_runs: list[Run] = []
    load_before = os.getloadavg()[0]
    with harness.sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmpdir = Path(tmp)
        instance = tmpdir / "instance"
        instance.mkdir()
        try:
            migrate(url)
            with localstripe(tmpdir) as api_base:
                env = server_env(url, instance, "http://127.0.0.1")
                env.update(
                    STRIPE_SECRET_KEY=SECRET_KEY,
                    STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                    STRIPE_API_BASE=api_base,
                )
                with (
                    harness.gunicorn(
                        "webhooks",
                        "bench.wsgi:article_app()",
                        gunicorn_settings,
                        env,
                        tmpdir,
                        ready_path="/healthz",
                    ) as app_server,
                    harness.gunicorn(
                        "baseline",
                        "bench.webhooks:baseline_app()",
                        gunicorn_settings,
                        env,
                        tmpdir,
                        ready_path=READY_PATH,
                    ) as base_server,
                ):
                    for n in range(rounds):
                        setup = time.perf_counter()
                        batch = arrange(url, api_base, run_id, n, subscriptions)
                        arranged.append(batch)
                        payloads = schedule(batch.events, duplicates, seed=n)
                        print(
                            f"  round {n + 1}/{rounds}: {len(payloads)} posts "
                            f"(set up in {time.perf_counter() - setup:.1f}s)",
                            flush=True,
                        )
                        sides = [
                            ("webhook", app_server, WEBHOOK_PATH, app_runs),
                            ("baseline", base_server, BASELINE_PATH, base_runs),
                        ]
                        if n % 2:
                            sides.reverse()
                        for name, server, path, runs in sides:
                            run = post_all(name, server.port, path, payloads, clients)
                            runs.append(run)
                            print(
                                f"    {name:<8} {run.events_per_second:>8.1f} events/s  "
                                f"statuses {dict(sorted(run.statuses.items()))}",
                                flush=True,
                            )
            double, missing, detail = effects(url, arranged)
        except KeyboardInterrupt:
            print("\nInterrupted: servers stopped.", file=sys.stderr)
            return 130
        except harness.ServerError as exc:
            print(f"Benchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            with contextlib.suppress(Exception):
                clean_up(url, arranged)
    app_rate = harness.median([r.events_per_second for r in app_runs])
    base_rate = harness.median([r.events_per_second for r in base_runs])
    ratio = app_rate / base_rate if base_rate else 0.0
    errors = sum(r.errors for r in app_runs)
    print()
    print(f"{'events/s through /stripe/webhook (median)':<44} {app_rate:>9.1f}")
    print(f"{'events/s, signature-checking baseline':<44} {base_rate:>9.1f}")
    print(f"{'ratio webhook/baseline':<44} {ratio:>9.3f}")
    print(f"{'non-200 answers (webhook)':<44} {errors:>9d}")
    print(
        f"{'double effects':<44} {double:>9d}   "
        + ", ".join(f"{k}: {v}" for k, v in detail.items())
    )
    print(f"{'missing effects':<44} {missing:>9d}")
    print(
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, "
        f"on {os.cpu_count()} CPUs"
    )
    passed = double == 0 and missing == 0 and errors == 0
    bar = "=" * 76
    print(bar)
    print(
        f"{'PASS' if passed else 'FAIL'}: {double} double effects, {missing} missing, "
        f"{errors} errors; webhook/baseline = {ratio:.3f}"
    )
    print(bar)
    harness.write_result(
        "webhooks",
        {
            "environment": harness.environment(),
            "database": source or "default",
            "gunicorn": gunicorn_settings.describe(),
            "clients": clients,
            "rounds": rounds,
            "subscriptions_per_round": subscriptions,
            "duplicates_percent": duplicates,
            "webhook_events_per_second": [r.events_per_second for r in app_runs],
            "baseline_events_per_second": [r.events_per_second for r in base_runs],
            "ratio": ratio,
            "double_effects": double,
            "missing_effects": missing,
            "detail": detail,
            "errors": errors,
            "passed": passed,
        },
    )
    return 0  # measured; PASS or FAIL is in the output (bench/__main__.py)
