"""`flask --app patrons sync-stripe` (threat 7: lost events): what changed in localstripe
without a webhook reaching the app is repaired and reported; a second run reports nothing."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.models import OutboundEmail, Payment, Pledge, PledgeStatusChange
from tests.pledges.conftest import StripeWorld, deliver


def sync(app: Flask) -> list[str]:
    result = app.test_cli_runner().invoke(args=["sync-stripe"])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def pledge_of(db: Session, patron: Any) -> Pledge:
    db.rollback()
    pledge = db.scalar(select(Pledge).where(Pledge.stripe_subscription_id == patron.sub.id))
    assert pledge is not None
    return pledge


def test_threat_7_sync_repairs_a_missed_cancellation_and_then_has_nothing_to_do(
    app: Flask, client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    invoice = world.invoice_dict(patron.sub.latest_invoice_id)
    assert deliver(client, "invoice.paid", invoice).status_code == 200
    assert sync(app) == ["Nothing to change."]

    # the reader asked Stripe (say, by email to staff) to stop at the period's end; the
    # customer.subscription.updated event never reached us
    world.gateway.set_cancel_at_period_end(patron.sub.id, True)
    assert pledge_of(db, patron).cancel_at_period_end is False
    changes = sync(app)
    assert changes == [
        f"Pledge {patron.pledge_id} ({patron.sub.id}): cancel at period end False -> True."
    ]
    assert pledge_of(db, patron).cancel_at_period_end is True
    assert sync(app) == ["Nothing to change."]

    # and then the subscription was canceled, the .deleted event lost too
    world.gateway.cancel_now(patron.sub.id)
    changes = sync(app)
    assert f"Pledge {patron.pledge_id} ({patron.sub.id}): status active -> canceled." in changes
    pledge = pledge_of(db, patron)
    assert pledge.status == "canceled" and pledge.ended_at is not None
    last = db.scalar(select(PledgeStatusChange).order_by(PledgeStatusChange.id.desc()).limit(1))
    assert last is not None and (last.to_status, last.source) == ("canceled", "sync")
    assert sync(app) == ["Nothing to change."]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Payment)) == 1


def test_threat_7_sync_records_a_pledge_whose_every_event_was_lost(
    app: Flask, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    renewal = world.gateway.simulate_renewal(patron.sub)
    changes = sync(app)
    assert changes[0] == f"Pledge {patron.pledge_id} ({patron.sub.id}): status pending -> active."
    first, second = patron.sub.latest_invoice_id, renewal.id
    assert f"Recorded payment {first} of pledge {patron.pledge_id}: paid, €5." in changes
    assert f"Recorded payment {second} of pledge {patron.pledge_id}: paid, €5." in changes
    pledge = pledge_of(db, patron)
    assert (pledge.status, pledge.amount, pledge.currency) == ("active", 500, "EUR")
    assert pledge.started_at is not None
    payments = db.scalars(select(Payment.status)).all()
    assert payments == ["paid", "paid"]
    assert db.scalar(select(func.count()).select_from(OutboundEmail)) == 0  # a repair mails no one
    assert sync(app) == ["Nothing to change."]


def test_threat_7_sync_records_a_missed_failed_renewal(
    app: Flask, client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    assert (
        deliver(
            client, "invoice.paid", world.invoice_dict(patron.sub.latest_invoice_id)
        ).status_code
        == 200
    )
    failed = world.gateway.simulate_failed_renewal(patron.sub)
    changes = sync(app)
    assert f"Pledge {patron.pledge_id} ({patron.sub.id}): status active -> past_due." in changes
    assert f"Recorded payment {failed.id} of pledge {patron.pledge_id}: failed, €5." in changes
    assert sync(app) == ["Nothing to change."]


def test_sync_reports_unknown_customers_and_foreign_plans_and_goes_on(
    app: Flask, db: Session, world: StripeWorld
) -> None:
    stranger = world.subscribe(known=False)
    world.client.v1.plans.create(
        params={
            "id": "gold",
            "amount": 500,
            "currency": "eur",
            "interval": "month",
            "product": {"name": "Gold"},
        }
    )
    foreign = world.subscribe(plan="gold")
    ours = world.subscribe()
    changes = sync(app)
    assert (
        f"Skipped subscription {stranger.sub.id}: its customer {stranger.customer_id} "
        "is not known here."
    ) in changes
    assert any(
        line.startswith(f"Skipped subscription {foreign.sub.id}: its plan") for line in changes
    )
    assert f"Pledge {ours.pledge_id} ({ours.sub.id}): status pending -> active." in changes
    assert pledge_of(db, ours).status == "active"
    # the skipped ones are reported again (they still need a person), nothing else is
    again = sync(app)
    assert len(again) == 2 and all(line.startswith("Skipped subscription") for line in again)


def test_sync_without_stripe_configured_says_so(app: Flask) -> None:
    from dataclasses import replace

    from patrons import create_app

    bare = create_app(replace(app.config["SETTINGS"], stripe_secret_key=None))
    result = bare.test_cli_runner().invoke(args=["sync-stripe"])
    assert result.exit_code != 0
    assert "Stripe is not configured" in result.output
    bare.extensions["db.engine"].dispose()
