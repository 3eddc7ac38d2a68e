"""The staff page of Stripe events that failed to apply (patrons/staff/stripe_events.py):
what it lists, the retry (a CSRF-protected POST that puts the event back in the queue), a
bad event id, and a GET that never writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import StripeEvent
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_patron, make_staff


def event(db: Session, event_id: str, state: str, minutes_ago: float, **kw: object) -> None:
    received = clock.now() - timedelta(minutes=minutes_ago)
    db.add(StripeEvent(id=event_id, type="charge.refunded", received_at=received,
                       object_id=f"ch_{event_id}", state=state, **kw))  # fmt: skip
    db.commit()


@pytest.fixture
def staff(app: Flask, db: Session, client: FlaskClient) -> FlaskClient:
    make_staff(db)
    login(client, "editor@example.org", PASSWORD)
    return client


def snapshot(db: Session) -> list[tuple[object, ...]]:
    db.expire_all()
    return [
        (e.id, e.state, e.attempts, e.next_attempt_at, e.claimed_until, e.last_error)
        for e in db.scalars(select(StripeEvent).order_by(StripeEvent.id))
    ]


def test_lists_failed_and_stuck_events_with_their_reason(staff: FlaskClient, db: Session) -> None:
    event(db, "evt_failed", "failed", 60, attempts=8, last_error="Stripe said: no such charge")
    event(db, "evt_stuck", "pending", 30, attempts=2)
    event(db, "evt_fresh", "pending", 1)
    event(db, "evt_done", "applied", 90, attempts=1)
    before = snapshot(db)
    html = staff.get("/staff/stripe-events").get_data(as_text=True)
    assert "evt_failed" in html and "Stripe said: no such charge" in html
    assert "ch_evt_failed" in html and "charge.refunded" in html
    assert "evt_stuck" in html
    assert "evt_fresh" not in html and "evt_done" not in html
    assert 'href="/staff/stripe-events"' in html  # in the staff navigation
    assert snapshot(db) == before  # a GET never writes


def test_retry_puts_the_event_back_in_the_queue(staff: FlaskClient, db: Session) -> None:
    claimed = clock.now() + timedelta(minutes=5)
    event(db, "evt_failed", "failed", 60, attempts=8, last_error="boom",
          next_attempt_at=None, claimed_until=claimed)  # fmt: skip
    response = staff.post("/staff/stripe-events/evt_failed/retry",
                          data={"csrf_token": csrf_token(staff)})  # fmt: skip
    assert response.status_code == 303
    db.expire_all()
    found = db.get(StripeEvent, "evt_failed")
    assert found is not None and found.state == "pending" and found.claimed_until is None
    assert found.next_attempt_at is not None
    assert abs(found.next_attempt_at - clock.now()) < timedelta(minutes=1)
    # a fresh set of tries, with the last reason kept until the next attempt
    assert found.attempts == 0 and found.last_error == "boom"


def test_retry_needs_the_csrf_token_and_an_event_that_exists(
    staff: FlaskClient, db: Session
) -> None:
    event(db, "evt_failed", "failed", 60)
    before = snapshot(db)
    assert staff.post("/staff/stripe-events/evt_failed/retry").status_code == 400
    token = {"csrf_token": csrf_token(staff)}
    for bad in ("evt_nope", "x" * 300, "%00"):
        assert staff.post(f"/staff/stripe-events/{bad}/retry", data=token).status_code in (
            400,
            404,
        )
    assert staff.post("/staff/stripe-events/evt_nope/retry", data=token).status_code == 404
    assert snapshot(db) == before


def test_an_applied_event_is_not_retried(staff: FlaskClient, db: Session) -> None:
    event(db, "evt_done", "applied", 60)
    before = snapshot(db)
    response = staff.post("/staff/stripe-events/evt_done/retry",
                          data={"csrf_token": csrf_token(staff)})  # fmt: skip
    assert response.status_code == 303
    assert snapshot(db) == before


@pytest.mark.parametrize("role", ["member", "patron"])
def test_readers_are_refused(app: Flask, db: Session, client: FlaskClient, role: str) -> None:
    user = make_patron(db) if role == "patron" else make_patron(db, paid=False)
    event(db, "evt_failed", "failed", 60)
    login(client, user.email, PASSWORD)
    assert client.get("/staff/stripe-events").status_code == 403
    token = {"csrf_token": csrf_token(client)}
    assert client.post("/staff/stripe-events/evt_failed/retry", data=token).status_code == 403
    assert db.get(StripeEvent, "evt_failed").state == "failed"  # type: ignore[union-attr]
