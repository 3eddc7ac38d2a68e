"""Reading Stripe's objects (threat 13: API-version drift) and writing them as rows.

tests/fixtures/stripe/ holds three kinds of objects:
- api_*.json: Stripe's own examples at the pinned API version, verbatim;
- pinned_*.json: the same shapes made into one of our pledges (plan `patron-eur-500` as a
  Price, period on the item, `parent.subscription_details`, `payments`; no legacy fields);
- localstripe_*.json: what localstripe 1.15.10 answers (its older API: `plan`, a top-level
  period end, `invoice.subscription`, `payment_intent`, an embedded charge).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.core.formatting import format_date
from patrons.models import BillingCustomer, OutboundEmail, Payment, Pledge, PledgeStatusChange
from patrons.pledges import applying, ledger, records
from patrons.pledges.gateway import API_VERSION
from patrons.pledges.stripe_objects import Charge, Dispute, Invoice, Subscription
from tests.factories import make_user

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stripe"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def ts(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


# -- parsing -----------------------------------------------------------------------------------


def test_threat_13_the_fixtures_are_of_the_pinned_api_version() -> None:
    assert API_VERSION == "2026-10-28.endive"  # a new pin needs new fixtures
    sub = load("pinned_subscription")
    assert "current_period_end" not in sub and "plan" not in sub
    assert "current_period_end" in sub["items"]["data"][0]
    invoice = load("pinned_invoice_paid")
    assert not {"subscription", "payment_intent", "charge"} & invoice.keys()


def test_threat_13_a_pinned_subscription_parses() -> None:
    raw = load("pinned_subscription")
    sub = Subscription.from_dict(raw)
    assert sub.id == "sub_pinned500"
    assert sub.customer_id == "cus_pinned500"
    assert (sub.plan_id, sub.amount, sub.currency) == ("patron-eur-500", 500, "EUR")
    assert sub.current_period_end == ts(raw["items"]["data"][0]["current_period_end"])
    assert sub.status == "active" and sub.cancel_at_period_end is False
    assert sub.metadata == {"patrons_pledge": "1"}
    assert sub.latest_invoice_id == "in_pinned500"
    assert records.checked_plan(sub) == ("EUR", 500)


def test_threat_13_pinned_invoices_parse() -> None:
    paid = Invoice.from_dict(load("pinned_invoice_paid"))
    assert paid.subscription_id == "sub_pinned500"  # parent.subscription_details.subscription
    assert paid.payment_intent_id == "pi_pinned500"  # payments.data[].payment.payment_intent
    assert (paid.status, paid.amount_paid, paid.currency) == ("paid", 500, "EUR")
    assert paid.paid_at == ts(1795736590)
    failed = Invoice.from_dict(load("pinned_invoice_failed"))
    assert (failed.status, failed.attempt_count, failed.amount_paid) == ("open", 2, 0)
    assert failed.subscription_id == "sub_pinned500"


def test_threat_13_pinned_charges_and_disputes_parse() -> None:
    charge = Charge.from_dict(load("pinned_charge_refunded"))
    assert (charge.id, charge.payment_intent_id, charge.invoice_id) == (
        "ch_pinned500",
        "pi_pinned500",
        None,
    )
    assert (charge.amount, charge.amount_refunded) == (500, 500)
    dispute = load("pinned_dispute")
    assert dispute["charge"] == "ch_pinned500"


def test_threat_13_stripes_own_examples_parse() -> None:
    sub = Subscription.from_dict(load("api_subscription"))
    assert sub.plan_id == "price_1PgafmB7WZ01zgkW6dKueIc5"  # the Price wins over the Plan
    assert (sub.amount, sub.currency) == (2000, "USD")
    assert sub.current_period_end == ts(976287773)  # from the item
    with pytest.raises(records.TamperedPlan):
        records.checked_plan(sub)  # not one of ours
    invoice = Invoice.from_dict(load("api_invoice"))
    assert invoice.subscription_id == "subscription"
    assert (invoice.status, invoice.amount_due) == ("draft", 1000)
    charge = Charge.from_dict(load("api_charge"))
    assert (charge.id, charge.amount) == ("ch_1PgafuB7WZ01zgkWXYmPNZs8", 100)


def test_threat_13_localstripes_older_shapes_parse() -> None:
    raw = load("localstripe_subscription")
    sub = Subscription.from_dict(raw)
    assert (sub.plan_id, sub.amount, sub.currency) == ("patron-eur-500", 500, "EUR")  # plan
    assert sub.current_period_end == ts(raw["current_period_end"])  # top-level
    assert sub.metadata == {"patrons_pledge": "1"}
    past_due = Subscription.from_dict(load("localstripe_subscription_past_due"))
    assert past_due.status == "past_due"
    canceled = Subscription.from_dict(load("localstripe_subscription_canceled"))
    assert canceled.status == "canceled" and canceled.ended_at is not None
    raw_invoice = load("localstripe_invoice_paid")
    invoice = Invoice.from_dict(raw_invoice)
    assert invoice.subscription_id == raw["id"]
    assert invoice.payment_intent_id == raw_invoice["payment_intent"]
    assert invoice.charge_id == raw_invoice["charge"]["id"]  # an embedded Charge
    assert (invoice.status, invoice.amount_paid) == ("paid", 500)
    failed = Invoice.from_dict(load("localstripe_invoice_failed"))
    assert (failed.status, failed.attempt_count) == ("open", 1)
    charge = Charge.from_dict(load("localstripe_charge_refunded"))
    assert (charge.amount_refunded, charge.payment_intent_id) == (500, invoice.payment_intent_id)


def _without_each_key(raw: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in raw:
        if key != "id":
            smaller = copy.deepcopy(raw)
            del smaller[key]
            yield key, smaller


@pytest.mark.parametrize(
    ("kind", "fixture"),
    [
        (Subscription, "pinned_subscription"),
        (Subscription, "localstripe_subscription"),
        (Subscription, "api_subscription"),
        (Invoice, "pinned_invoice_paid"),
        (Invoice, "localstripe_invoice_paid"),
        (Invoice, "api_invoice"),
        (Charge, "pinned_charge_refunded"),
        (Charge, "localstripe_charge_refunded"),
    ],
)
def test_threat_13_a_fixture_missing_fields_does_not_crash(kind: Any, fixture: str) -> None:
    raw = load(fixture)
    for key, smaller in _without_each_key(raw):
        kind.from_dict(smaller), key  # noqa: B018  (parsing is the test)
    bare = kind.from_dict({"id": raw["id"]})
    assert bare.id == raw["id"]
    nulls = kind.from_dict({key: None for key in raw} | {"id": raw["id"]})
    assert nulls.id == raw["id"]


def test_threat_13_an_item_without_price_or_plan_is_refused_not_crashed() -> None:
    raw = load("pinned_subscription")
    del raw["items"]["data"][0]["price"]
    sub = Subscription.from_dict(raw)
    assert sub.plan_id is None
    with pytest.raises(records.TamperedPlan):
        records.checked_plan(sub)


# -- writing -----------------------------------------------------------------------------------


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    with app.app_context():  # mail rendering needs the app
        yield


def _reader(db: Session, customer_id: str = "cus_pinned500") -> int:
    user = make_user(db)
    db.add(BillingCustomer(user_id=user.id, stripe_customer_id=customer_id, created_at=clock.now()))
    db.commit()
    return user.id


def _kinds(db: Session) -> list[str]:
    return sorted(db.scalars(select(OutboundEmail.kind)))


def test_apply_subscription_makes_one_pledge_of_the_customer(db: Session, ctx: None) -> None:
    user_id = _reader(db)
    sub = Subscription.from_dict(load("pinned_subscription"))
    now = clock.now()
    pledge = records.apply_subscription(db, sub, now=now, source="webhook", event_id="evt_1")
    again = records.apply_subscription(db, sub, now=now, source="webhook", event_id="evt_2")
    db.commit()
    assert pledge is again and pledge is not None
    assert (pledge.user_id, pledge.status, pledge.amount, pledge.currency) == (
        user_id,
        "active",
        500,
        "EUR",
    )
    assert db.scalar(select(func.count()).select_from(Pledge)) == 1
    assert db.scalar(select(func.count()).select_from(PledgeStatusChange)) == 1


def test_apply_subscription_of_an_unknown_customer_returns_none(db: Session, ctx: None) -> None:
    sub = Subscription.from_dict(load("pinned_subscription"))
    assert records.apply_subscription(db, sub, now=clock.now(), source="webhook") is None
    assert db.scalar(select(func.count()).select_from(Pledge)) == 0


@pytest.mark.parametrize(
    ("price_id", "amount", "currency"),
    [
        ("patron-eur-500", 1, "eur"),  # our plan id, another amount
        ("patron-eur-500", 500, "usd"),  # our plan id, another currency
        ("price_gold", 500, "eur"),  # not our plan at all
        ("patron-eur-0500", 500, "eur"),
        ("patron-eur-500 ", 500, "eur"),
    ],
)
def test_threat_10_a_tampered_plan_is_refused(
    db: Session, ctx: None, price_id: str, amount: int, currency: str
) -> None:
    _reader(db)
    raw = load("pinned_subscription")
    raw["items"]["data"][0]["price"].update(id=price_id, unit_amount=amount, currency=currency)
    with pytest.raises(records.TamperedPlan):
        records.apply_subscription(
            db, Subscription.from_dict(raw), now=clock.now(), source="webhook"
        )


def test_apply_invoice_never_undoes_a_paid_payment(db: Session, ctx: None) -> None:
    _reader(db)
    now = clock.now()
    pledge = records.apply_subscription(
        db, Subscription.from_dict(load("pinned_subscription")), now=now, source="webhook"
    )
    assert pledge is not None
    paid = Invoice.from_dict(load("pinned_invoice_paid"))
    first = records.apply_invoice(db, pledge, paid, now=now)
    assert first.newly_paid and first.payment.status == "paid"
    stale = copy.deepcopy(load("pinned_invoice_paid"))
    stale.update(status="open", amount_paid=0, attempt_count=1)
    later = records.apply_invoice(db, pledge, Invoice.from_dict(stale), now=now)
    assert later.payment is first.payment
    assert later.payment.status == "paid" and not later.newly_paid and not later.newly_failed
    assert pledge.started_at == paid.paid_at


def test_mail_thanks_first_then_receipts_and_a_notice_per_failed_attempt(
    db: Session, ctx: None
) -> None:
    _reader(db)
    now = clock.now()
    pledge = records.apply_subscription(
        db, Subscription.from_dict(load("pinned_subscription")), now=now, source="webhook"
    )
    assert pledge is not None

    def apply(raw: dict[str, Any]) -> None:
        records.record_invoice(db, pledge, Invoice.from_dict(raw), now=now, source="webhook")

    first = load("pinned_invoice_paid")
    apply(first)
    apply(first)  # the same invoice again: no second thanks
    assert _kinds(db) == ["pledge_thanks"]
    failed = load("pinned_invoice_failed")  # attempt 2
    records.set_status(db, pledge, "past_due", now=now, source="webhook")  # a renewal failed
    apply(failed)
    apply(failed)
    assert _kinds(db) == ["pledge_payment_failed", "pledge_thanks"]
    failed["attempt_count"] = 3
    apply(failed)
    assert _kinds(db).count("pledge_payment_failed") == 2
    failed.update(status="paid", amount_paid=500, attempt_count=4)
    failed["status_transitions"]["paid_at"] = 1798328600
    apply(failed)
    assert _kinds(db) == [
        "pledge_payment_failed",
        "pledge_payment_failed",
        "pledge_receipt",
        "pledge_thanks",
    ]
    db.commit()
    body = db.scalar(select(OutboundEmail.text_body).where(OutboundEmail.kind == "pledge_receipt"))
    assert body is not None and "€5" in body
    notice = db.scalar(
        select(OutboundEmail).where(OutboundEmail.kind == "pledge_payment_failed").limit(1)
    )
    assert notice is not None
    assert "http://patrons.test/pledge" in notice.text_body
    assert 'href="http://patrons.test/pledge"' in notice.html_body
    # the rights last GRACE days from the first refused attempt (the invoice's finalisation)
    first_failed = ts(failed["status_transitions"]["finalized_at"] or failed["created"])
    assert format_date(first_failed + timedelta(days=7)) in notice.text_body


def dispute(status: str, amount: int = 500, created: int = 1798400000) -> Dispute:
    raw = load("pinned_dispute") | {"status": status, "amount": amount, "created": created}
    return Dispute.from_dict(raw)


def test_the_ledger_follows_refunds_and_disputes(db: Session, ctx: None) -> None:
    _reader(db)
    now = clock.now()
    pledge = records.apply_subscription(
        db, Subscription.from_dict(load("pinned_subscription")), now=now, source="webhook"
    )
    assert pledge is not None
    payment = records.apply_invoice(
        db, pledge, Invoice.from_dict(load("pinned_invoice_paid")), now=now
    ).payment
    charge = load("pinned_charge_refunded")
    partial = Charge.from_dict(charge | {"amount_refunded": 200, "refunded": False})
    assert ledger.payment_of_charge(db, partial) is payment  # by PaymentIntent
    ledger.apply_charge(payment, partial, [])
    assert (payment.status, payment.amount_refunded, payment.net) == (
        "partially_refunded",
        200,
        300,
    )
    ledger.apply_charge(payment, partial, [dispute("needs_response")])
    assert (payment.status, payment.dispute_amount, payment.net) == ("disputed", 500, 300)
    ledger.apply_charge(payment, partial, [dispute("won")])
    assert (payment.status, payment.net) == ("dispute_won", 300)
    ledger.apply_charge(payment, partial, [dispute("under_review")])  # an older copy
    assert payment.status == "dispute_won"  # a closed dispute never reopens
    ledger.apply_charge(payment, Charge.from_dict(charge | {"amount_refunded": 100}), [])
    assert payment.amount_refunded == 200  # refunds only grow
    ledger.apply_charge(payment, partial, [dispute("lost", created=1798500000)])
    assert (payment.status, payment.amount_disputed, payment.net) == ("dispute_lost", 500, 0)
    assert ledger.payment_of_charge(db, Charge.from_dict({"id": "ch_someone_else"})) is None


@pytest.mark.parametrize(
    ("refunded", "dispute_status", "state"),
    [
        (0, None, "paid"),
        (100, None, "partially_refunded"),
        (500, None, "refunded"),
        (0, "warning_needs_response", "disputed"),
        (500, "needs_response", "disputed"),
        (0, "won", "dispute_won"),
        (100, "won", "dispute_won"),
        (500, "won", "refunded"),
        (0, "lost", "dispute_lost"),
        (0, "warning_closed", "dispute_won"),
    ],
)
def test_the_state_of_a_paid_payment(refunded: int, dispute_status: str | None, state: str) -> None:
    assert ledger.settled_state(500, refunded, dispute_status) == state


def test_a_canceled_subscription_ends_the_pledge(db: Session, ctx: None) -> None:
    _reader(db)
    raw = load("pinned_subscription")
    now = clock.now()
    pledge = records.apply_subscription(db, Subscription.from_dict(raw), now=now, source="webhook")
    raw.update(status="canceled", ended_at=1798328579, canceled_at=1798000000)
    later = now + timedelta(minutes=1)
    records.apply_subscription(db, Subscription.from_dict(raw), now=later, source="webhook")
    assert pledge is not None
    assert pledge.status == "canceled" and pledge.ended_at == ts(1798328579)
    changes = db.scalars(
        select(PledgeStatusChange.to_status).order_by(PledgeStatusChange.changed_at)
    ).all()
    assert changes == ["active", "canceled"]


class _PinnedStripe:
    """Stands in for the gateway at the pinned API version: the charge names no invoice, and
    only the Invoice Payments list links its PaymentIntent to the invoice."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def retrieve_charge(self, charge_id: str) -> Charge | None:
        return (
            Charge.from_dict(load("pinned_charge_refunded"))
            if charge_id == "ch_pinned500"
            else None
        )

    def disputes_of_charge(self, charge_id: str) -> list[Dispute]:
        return []

    def invoice_id_for_payment_intent(self, payment_intent_id: str) -> str | None:
        self.asked.append(payment_intent_id)
        return "in_pinned500" if payment_intent_id == "pi_pinned500" else None

    def retrieve_invoice(self, invoice_id: str) -> Invoice | None:
        raw = {k: v for k, v in load("pinned_invoice_paid").items() if k != "payments"}
        return Invoice.from_dict(raw) if invoice_id == raw["id"] else None

    def retrieve_subscription(self, subscription_id: str) -> Subscription | None:
        return Subscription.from_dict(load("pinned_subscription"))

    def charge_for_payment_intent(self, payment_intent_id: str) -> str | None:
        return None


def test_threat_13_a_refund_is_matched_when_neither_charge_nor_invoice_names_the_other(
    db: Session, ctx: None
) -> None:
    """The invoice as Stripe sends it omits `payments` (includable only) and the charge names
    no invoice: the refund still finds its payment, through the invoice's payments list."""
    _reader(db)
    gw = _PinnedStripe()
    remote = applying.fetch(gw, applying.Target("charge", "ch_pinned500"))  # type: ignore[arg-type]
    assert gw.asked == ["pi_pinned500"]
    applying.write(db, remote, applying.Context(clock.now(), "webhook"))
    payment = db.scalar(select(Payment))
    assert payment is not None and payment.stripe_invoice_id == "in_pinned500"
    assert (payment.status, payment.amount_refunded) == ("refunded", 500)


def test_threat_13_the_first_payment_intent_is_read_from_the_pinned_expansions() -> None:
    """At the pinned API the subscription's first PaymentIntent is under the expanded
    `latest_invoice.payments`, its client secret in `latest_invoice.confirmation_secret`."""
    raw = load("pinned_subscription")
    raw["latest_invoice"] = {
        "id": "in_pinned500",
        "confirmation_secret": {"client_secret": "pi_pinned500_secret_x", "type": "payment_intent"},
        "payments": {
            "data": [
                {
                    "payment": {
                        "type": "payment_intent",
                        "payment_intent": {
                            "id": "pi_pinned500",
                            "status": "requires_action",
                            "last_payment_error": None,
                        },
                    }
                }
            ]
        },
    }
    sub = Subscription.from_dict(raw)
    assert sub.latest_invoice_id == "in_pinned500"
    assert sub.payment_intent_status == "requires_action"
    assert sub.payment_intent_client_secret == "pi_pinned500_secret_x"
