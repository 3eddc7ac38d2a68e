"""`flask worker`'s Stripe jobs against localstripe: a stored event the background thread
never applied is applied by one pass (once, with two workers), and the nightly sync runs."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.models import Payment, ScheduledJob, StripeEvent
from patrons.worker.loop import Worker
from tests.pledges.conftest import StripeWorld, deliver


def test_one_pass_applies_the_stored_events_and_syncs(
    app: Flask, client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    app.config["STRIPE_EVENTS_BACKGROUND"] = False  # as if the process died after the commit
    patron = world.subscribe()
    invoice = world.invoice_dict(patron.sub.latest_invoice_id)
    assert deliver(client, "invoice.paid", invoice, "evt_for_worker").status_code == 200
    db.rollback()
    assert db.get(StripeEvent, "evt_for_worker").state == "pending"  # type: ignore[union-attr]

    report = Worker(app, "w1", only=("stripe-events", "sync-stripe")).run_pass()
    assert report.ran == ["stripe-events", "sync-stripe"] and report.failed == []
    db.rollback()
    db.expire_all()
    assert db.get(StripeEvent, "evt_for_worker").state == "applied"  # type: ignore[union-attr]
    assert db.scalar(select(func.count()).select_from(Payment)) == 1
    sync = db.get(ScheduledJob, "sync-stripe")
    assert sync is not None and sync.last_error is None and sync.claimed_by is None

    again = Worker(app, "w2", only=("stripe-events", "sync-stripe")).run_pass()
    assert again.skipped == ["sync-stripe"]  # nightly: not due again for a day
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Payment)) == 1
