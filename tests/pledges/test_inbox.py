"""The webhook's inbox (patrons/pledges/inbox.py): acknowledged before any Stripe call,
applied after, claimed once by whichever thread or worker gets there first, retried with
backoff, failed for staff after the last attempt, and never lost."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from patrons import create_app
from patrons.core import clock
from patrons.core.config import Settings
from patrons.models import Payment, Pledge, StripeEvent
from patrons.pledges import inbox
from patrons.pledges.billing import gateway
from patrons.pledges.stripe_objects import Event
from tests.pledges.conftest import StripeWorld, deliver, stripe_settings


def _event(n: int) -> Event:
    obj = {"id": f"in_missing_{n}", "object": "invoice"}
    return Event(f"evt_inbox_{n:04d}", "invoice.paid", clock.now(), False, obj)


def _store(db: Session, count: int) -> None:
    for n in range(count):
        inbox.store(db, _event(n), clock.now())
    db.commit()


def test_a_claim_takes_exactly_its_limit_and_the_next_claim_the_next_ones(db: Session) -> None:
    """(On PostgreSQL a limited subquery inside the UPDATE once claimed the whole backlog.)"""
    _store(db, 150)
    first = inbox.claim(db, clock.now(), limit=100)
    second = inbox.claim(db, clock.now(), limit=100)
    assert (len(first), len(second)) == (100, 50)
    assert not set(first) & set(second)
    assert inbox.claim(db, clock.now(), limit=100) == []  # all claimed, none due


def test_a_claim_left_by_a_dead_process_is_taken_over(db: Session) -> None:
    _store(db, 1)
    assert inbox.claim(db, clock.now()) == ["evt_inbox_0000"]
    later = clock.now() + timedelta(seconds=inbox.CLAIM_SECONDS + 1)
    assert inbox.claim(db, later) == ["evt_inbox_0000"]
    assert db.scalar(select(StripeEvent.attempts)) == 2


def test_backoff_grows_and_is_capped() -> None:
    delays = [inbox.backoff(n).total_seconds() for n in range(1, 14)]
    assert delays[:4] == [5, 10, 20, 40]
    assert delays == sorted(delays) and max(delays) == 3600


def test_a_failing_event_is_retried_later_then_failed_for_staff_then_retried(
    app: Flask, db: Session
) -> None:
    """An event whose apply keeps failing (Stripe unreachable here: a closed port) waits for
    its backoff, is marked failed after MAX_ATTEMPTS with the reason, and staff's retry makes
    it due again."""
    _store(db, 1)
    gw = _unreachable_gateway(app)
    with app.app_context():
        assert inbox.apply_due(db, gw, grace_days=7) == {"pending": 1}
        row = db.get(StripeEvent, "evt_inbox_0000")
        assert row is not None and row.next_attempt_at is not None
        assert "not answering" in (row.last_error or "")
        assert inbox.apply_due(db, gw, grace_days=7) == {}  # not due before its backoff
        for _ in range(inbox.MAX_ATTEMPTS - 1):
            db.execute(update(StripeEvent).values(next_attempt_at=None))
            db.commit()
            inbox.apply_due(db, gw, grace_days=7)
    db.refresh(row)
    assert (row.state, row.attempts) == ("failed", inbox.MAX_ATTEMPTS)
    assert inbox.retry(db, row.id) and not inbox.retry(db, "evt_nobody")
    db.commit()
    assert (row.state, row.attempts, row.claimed_until) == ("pending", 0, None)
    assert inbox.claim(db, clock.now()) == [row.id]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unreachable_gateway(app: Flask) -> Any:
    from patrons.pledges.billing import make_gateway

    settings: Settings = app.config["SETTINGS"]
    base = f"http://127.0.0.1:{_closed_port()}"
    return make_gateway(replace(settings, stripe_api_base=base, stripe_timeout=1.0))


@pytest.fixture
def unreachable_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app whose Stripe does not answer (a port where nothing listens)."""
    base = f"http://127.0.0.1:{_closed_port()}"
    settings = stripe_settings(database_url, tmp_path / "instance", base, stripe_timeout=1.0)
    app = create_app(settings)
    yield app
    app.extensions["db.engine"].dispose()


def test_the_webhook_answers_at_once_when_stripe_does_not(
    unreachable_app: Flask, db: Session
) -> None:
    """Before, a webhook waited for Stripe (about 80 s when it did not answer), holding a
    worker; now it stores and acknowledges before any call, and the event waits for retry."""
    client = unreachable_app.test_client()
    obj = {"id": "sub_x", "object": "subscription"}
    started = time.monotonic()
    response = deliver(client, "customer.subscription.updated", obj, "evt_while_down")
    assert response.status_code == 200 and response.get_data(as_text=True).strip() == "Received."
    assert time.monotonic() - started < 5  # the inline apply tried once, bounded by the timeout
    row = db.get(StripeEvent, "evt_while_down")
    assert row is not None and row.state == "pending" and row.last_error


def test_nothing_is_lost_between_storing_and_applying(
    app: Flask, client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    """The process dies after the commit (here: the background applier is off): the event
    is there, pending, and `flask stripe-worker --once` applies it."""
    app.config["STRIPE_EVENTS_BACKGROUND"] = False
    patron = world.subscribe()
    invoice = world.invoice_dict(patron.sub.latest_invoice_id)
    assert deliver(client, "invoice.paid", invoice, "evt_orphan").status_code == 200
    assert db.get(StripeEvent, "evt_orphan").state == "pending"  # type: ignore[union-attr]
    assert db.scalar(select(func.count()).select_from(Payment)) == 0
    result = app.test_cli_runner().invoke(args=["stripe-worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 applied" in result.output
    db.rollback()
    assert db.get(StripeEvent, "evt_orphan").state == "applied"  # type: ignore[union-attr]
    assert db.scalar(select(Payment.status)) == "paid"


def test_the_background_thread_applies_right_after_the_answer(
    app: Flask, client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    app.config["STRIPE_EVENTS_INLINE"] = False  # as in production
    patron = world.subscribe()
    invoice = world.invoice_dict(patron.sub.latest_invoice_id)
    assert deliver(client, "invoice.paid", invoice, "evt_threaded").status_code == 200
    assert inbox.wait_for_background_applies(app, timeout=30)
    db.rollback()
    assert db.get(StripeEvent, "evt_threaded").state == "applied"  # type: ignore[union-attr]
    pledge = db.get(Pledge, patron.pledge_id)
    assert pledge is not None and pledge.status == "active"


def test_the_worker_refuses_to_start_without_stripe(database_url: str, tmp_path: Path) -> None:
    from tests.conftest import make_settings

    app = create_app(make_settings(database_url, tmp_path / "instance"))
    result = app.test_cli_runner().invoke(args=["stripe-worker", "--once"])
    assert result.exit_code != 0 and "Stripe is not configured" in result.output
    assert gateway(app) is None
    app.extensions["db.engine"].dispose()
