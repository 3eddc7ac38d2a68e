"""localstripe on a free loopback port for the whole session (started by the project's own
launcher, `python -m patrons.fakestripe`), emptied before each test that uses it; an app
whose settings point at it; and signing helpers for webhook payloads.

Elsewhere nothing needs starting by hand: localstripe is a dev dependency in pyproject.toml.
"""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import stripe

from patrons.core.config import Settings
from tests.conftest import make_settings

WEBHOOK_SECRET = "whsec_test_patrons"
SECRET_KEY = "sk_test_patrons"
PUBLISHABLE_KEY = "pk_test_patrons"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "patrons.fakestripe", "--port", str(port),
         "--webhook-delay", "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/v1/balance", auth=(SECRET_KEY, ""), timeout=0.5)
            break
        except requests.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise RuntimeError(f"localstripe did not start: {err}") from None
            time.sleep(0.05)
    yield url
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
    if proc.stderr:
        proc.stderr.close()  # else a ResourceWarning when the Popen is collected


@pytest.fixture
def localstripe(localstripe_url: str) -> str:
    """localstripe, emptied (its webhook registrations survive; tests re-register theirs)."""
    requests.delete(f"{localstripe_url}/_config/data", timeout=5).raise_for_status()
    return localstripe_url


def stripe_settings(database_url: str, instance: Path, api_base: str, **kw: object) -> Settings:
    return make_settings(
        database_url,
        instance,
        stripe_secret_key=SECRET_KEY,
        stripe_publishable_key=PUBLISHABLE_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=api_base,
        **kw,
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path, localstripe: str) -> Settings:
    """Every test in tests/pledges/ runs against an empty localstripe."""
    return stripe_settings(database_url, tmp_path / "instance", localstripe)


def sign(payload: str | bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header made by the SDK's own helper."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    if timestamp is None:
        return stripe.WebhookSignature.generate_signature_header(text, secret)
    return stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=timestamp)


def event_payload(event_id: str, event_type: str, obj: dict[str, Any], **extra: Any) -> str:
    body = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "data": {"object": obj},
        **extra,
    }
    return json.dumps(body)


# -- Stripe-side arrangements and webhook delivery (tests of webhooks, records, sync) ---------


class StripeWorld:
    """Readers with real localstripe customers, cards and subscriptions, and a way to deliver
    signed events about them to the app."""

    def __init__(self, app: Any, db: Any) -> None:
        from patrons.pledges.billing import gateway

        self.app = app
        self.db = db
        self.gateway = gateway(app)
        self.client = self.gateway.client  # the SDK client, for calls the app never makes
        self._seq = itertools.count(1)

    def card(self, number: str = "4242424242424242") -> str:
        method = self.client.v1.payment_methods.create(
            params={"type": "card", "card": {"number": number, "exp_month": 12,
                                             "exp_year": 2030, "cvc": "123"}}
        )  # fmt: skip
        return method.id

    def customer(self, *, known: bool = True, email: str | None = None) -> tuple[Any, str]:
        """A reader and their Stripe customer with a good default card; `known=False` leaves
        out the local billing_customers row (a customer this deployment never made)."""
        from patrons.core import clock
        from patrons.models import BillingCustomer
        from tests.factories import make_user

        user = make_user(self.db, email=email)
        row = BillingCustomer(user_id=user.id, created_at=clock.now())
        if known:
            self.db.add(row)
            self.db.commit()
        customer_id = self.gateway.create_customer(
            email=user.email, name=None, local_id=row.id or 0,
            idempotency_key=f"customer-{user.id}-{next(self._seq)}-{time.time_ns()}",
        )  # fmt: skip
        if known:
            row.stripe_customer_id = customer_id
            self.db.commit()
        self.gateway.set_default_card(customer_id, self.card())
        return user, customer_id

    def subscribe(
        self,
        amount: int = 500,
        currency: str = "EUR",
        *,
        known: bool = True,
        plan: str = "",
        pending: bool = True,
    ) -> Any:
        """A pending pledge (as the pledge page leaves it) and its live subscription;
        `pending=False`: no pledge row, as for a subscription made outside the app."""
        from patrons.core import clock
        from patrons.models import Pledge

        user, customer_id = self.customer(known=known)
        pledge_id = 0
        if known and pending:
            pledge = Pledge(user_id=user.id, amount=amount, currency=currency, status="pending",
                            stripe_customer_id=customer_id, created_at=clock.now())  # fmt: skip
            self.db.add(pledge)
            self.db.commit()
            pledge_id = pledge.id
        plan = plan or self.gateway.ensure_plan(currency, amount)
        sub = self.gateway.create_subscription(
            customer_id, plan, pledge_id=pledge_id,
            idempotency_key=f"sub-{user.id}-{next(self._seq)}-{time.time_ns()}",
        )  # fmt: skip
        return SimpleNamespace(user=user, customer_id=customer_id, pledge_id=pledge_id, sub=sub)

    def subscription_dict(self, subscription_id: str) -> dict[str, Any]:
        return self.client.v1.subscriptions.retrieve(subscription_id).to_dict()

    def invoice_dict(self, invoice_id: str) -> dict[str, Any]:
        return self.client.v1.invoices.retrieve(invoice_id).to_dict()

    def charge_dict(self, charge_id: str) -> dict[str, Any]:
        return self.client.v1.charges.retrieve(charge_id).to_dict()


@pytest.fixture
def world(app: Any, db: Any) -> StripeWorld:
    return StripeWorld(app, db)


def deliver(
    client: Any,
    event_type: str,
    obj: dict[str, Any],
    event_id: str | None = None,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    **extra: Any,
) -> Any:
    """POST a signed event to the webhook through the test client; the response."""
    payload = event_payload(event_id or f"evt_{uuid.uuid4().hex[:24]}", event_type, obj, **extra)
    return client.post(
        "/stripe/webhook",
        data=payload,
        headers={"Stripe-Signature": sign(payload, secret, timestamp)},
        content_type="application/json; charset=utf-8",
    )


def table_rows(db: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove that a request wrote nothing at all."""
    from sqlalchemy import select

    from patrons.core.db import Base

    db.rollback()  # a fresh snapshot, not the session's cached view
    snapshot = {}
    for table in Base.metadata.sorted_tables:
        rows = db.execute(select(table)).all()
        snapshot[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return snapshot


class _Inbox(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802  (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.inbox.append((body, self.headers.get("Stripe-Signature")))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook_inbox(localstripe: str) -> Iterator[Any]:
    """A receiver registered with localstripe that keeps every delivery (body, signature);
    `wait_for(type)` returns the first of that type. Muted again afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Inbox)
    server.inbox = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook = f"{localstripe}/_config/webhooks/patrons-tests"
    url = f"http://127.0.0.1:{server.server_port}/stripe/webhook"
    requests.post(hook, json={"url": url, "secret": WEBHOOK_SECRET}, timeout=5).raise_for_status()

    def wait_for(event_type: str, timeout: float = 10) -> tuple[bytes, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body, signature in list(server.inbox):  # type: ignore[attr-defined]
                if json.loads(body)["type"] == event_type:
                    return body, signature
            time.sleep(0.02)
        raise AssertionError(f"localstripe delivered no {event_type}")

    server.wait_for = wait_for  # type: ignore[attr-defined]
    yield server
    requests.post(hook, json={"url": url, "secret": WEBHOOK_SECRET, "events": []}, timeout=5)
    server.shutdown()
    server.server_close()
