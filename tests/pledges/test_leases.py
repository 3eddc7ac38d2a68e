"""Leases of patrons/pledges/concurrency.py: rows of `stripe_call_leases`, taken by INSERT
(the primary key decides), taken over by a conditional UPDATE once expired, deleted with the
answer. A request that finds one held answers "in progress" at once instead of sleeping, and
the Stripe-id columns only ever hold Stripe ids.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import BillingCustomer, Pledge, StripeCallLease
from patrons.pledges.concurrency import (
    customer_lease,
    lease_held,
    release_lease,
    subscription_lease,
    take_lease,
)
from tests.factories import make_user
from tests.pledges.test_pledge_flow import Reader, pledges_of


def test_a_lease_is_taken_once_until_it_is_released(db: Session) -> None:
    token = take_lease(db, "customer:1")
    assert token is not None
    assert take_lease(db, "customer:1") is None  # held: the second request does not get it
    assert take_lease(db, "subscription:1") is not None  # another name is another lease
    assert lease_held(db, "customer:1")
    release_lease(db, "customer:1", "not-the-token")  # only its holder gives it back
    db.commit()
    assert lease_held(db, "customer:1")
    release_lease(db, "customer:1", token)
    db.commit()
    assert not lease_held(db, "customer:1")
    assert take_lease(db, "customer:1") is not None


def test_an_expired_lease_is_taken_over_once(db: Session) -> None:
    first = take_lease(db, "subscription:7")
    assert first is not None
    db.execute(  # its request died a while ago
        update(StripeCallLease)
        .where(StripeCallLease.name == "subscription:7")
        .values(expires_at=clock.now() - timedelta(seconds=1))
    )
    db.commit()
    assert not lease_held(db, "subscription:7")
    second = take_lease(db, "subscription:7")
    assert second is not None and second != first
    assert take_lease(db, "subscription:7") is None
    release_lease(db, "subscription:7", first)  # the dead request's token frees nothing
    db.commit()
    assert lease_held(db, "subscription:7")


def _json(reader: Reader, url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    response = reader.post(url, body)
    return response.status_code, response.get_json()


def test_a_held_subscription_lease_is_answered_at_once_as_in_progress(
    app: Flask, db: Session, localstripe: str
) -> None:
    reader = Reader(app, make_user(db), localstripe)
    setup_id = reader.confirm_card(reader.start().get_json()["client_secret"])
    (pledge,) = pledges_of(db, reader.user)
    token = take_lease(db, subscription_lease(pledge.id))  # another tab is subscribing
    assert token is not None

    began = time.monotonic()
    status, body = _json(reader, "/pledge/subscribe", {"setup_intent": setup_id})
    assert (status, body) == (202, {"ok": True, "status": "processing"})
    assert _json(reader, "/pledge/refresh", {}) == (202, {"ok": True, "status": "processing"})
    assert time.monotonic() - began < 2  # no waiting loop
    assert reader.stripe.v1.subscriptions.list(params={"status": "all"}).data == []

    release_lease(db, subscription_lease(pledge.id), token)  # that tab gave up
    db.commit()
    status, body = _json(reader, "/pledge/subscribe", {"setup_intent": setup_id})
    assert (status, body["status"]) == (200, "active")


def test_a_held_customer_lease_is_answered_at_once_as_in_progress(
    app: Flask, db: Session, localstripe: str
) -> None:
    reader = Reader(app, make_user(db), localstripe)
    row = BillingCustomer(user_id=reader.user.id, created_at=clock.now())
    db.add(row)
    db.commit()
    token = take_lease(db, customer_lease(row.id))
    assert token is not None
    began = time.monotonic()
    response = reader.start()
    assert response.status_code == 202 and response.get_json()["status"] == "processing"
    assert time.monotonic() - began < 2
    release_lease(db, customer_lease(row.id), token)
    db.commit()
    assert reader.start().status_code == 200


def test_the_stripe_id_columns_hold_only_stripe_ids(
    app: Flask, db: Session, localstripe: str
) -> None:
    reader = Reader(app, make_user(db), localstripe)
    assert reader.pledge().get_json()["status"] == "active"
    db.rollback()
    customers = db.scalars(select(BillingCustomer.stripe_customer_id)).all()
    subscriptions = db.scalars(select(Pledge.stripe_subscription_id)).all()
    setups = db.scalars(select(Pledge.stripe_setup_intent_id)).all()
    assert [c[:4] for c in customers] == ["cus_"]
    assert [s[:4] for s in subscriptions if s] == ["sub_"]
    assert [s[:5] for s in setups if s] == ["seti_"]
    assert db.scalars(select(StripeCallLease.name)).all() == []


def test_a_refused_call_gives_the_lease_back(app: Flask, db: Session, localstripe: str) -> None:
    reader = Reader(app, make_user(db), localstripe)
    reader.start()
    answer = reader.post("/pledge/subscribe", {"setup_intent": "seti_made_up"})
    assert answer.status_code == 400
    db.rollback()
    assert db.scalars(select(StripeCallLease.name)).all() == []
