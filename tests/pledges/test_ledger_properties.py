"""The patron record stays true under every order of Stripe's events (issue 12, "How it is
proven"): Hypothesis makes Stripe histories in an in-memory account (tests/pledges/fake_stripe.py)
and delivers their events to the inbox with duplicates, in any order, some in the middle of the
history (re-reading the account as it was then), the rest afterwards. After the last delivery
the pledges, payments, rights and vote budgets must be what `sync-stripe` builds from Stripe's
final state on empty tables, a second sync must find nothing to repair, the ledger's net must
be Stripe's, and no event may be left pending or failed.

Then one test per defect of the issue, each a given order of events.

Examples: 30 under the `dev` Hypothesis profile, 200 under `ci` (tests/conftest.py), or
LEDGER_EXAMPLES=n (e.g. 5000 for a long run).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.core.config import Settings
from patrons.models import (
    BillingCustomer,
    OutboundEmail,
    Payment,
    PaymentChange,
    Pledge,
    PledgeStatusChange,
    StripeEvent,
    User,
)
from patrons.models.pledges import EventState
from patrons.pledges import inbox
from patrons.pledges.entitlement import active_patron_ids, rights_payment_id
from patrons.pledges.sync import sync_stripe
from tests.conftest import make_settings
from tests.factories import make_user
from tests.pledges.conftest import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, event_payload, sign
from tests.pledges.fake_stripe import FakeStripe

GRACE = 7
DAY = 86400
ENDED = ("canceled", "incomplete_expired")
# A reader whose subscription ended may start another.
RESUBSCRIBE = True
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or "dev"
EXAMPLES = int(
    os.environ.get("LEDGER_EXAMPLES")
    or {"dev": 30, "ci": 200}.get(_PROFILE, max(10, hypothesis_settings.default.max_examples // 5))
)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """No localstripe here (tests/pledges/conftest.py starts it): the account is a FakeStripe."""
    return make_settings(database_url, tmp_path / "instance", stripe_secret_key=SECRET_KEY,
                         stripe_publishable_key=PUBLISHABLE_KEY,
                         stripe_webhook_secret=WEBHOOK_SECRET)  # fmt: skip


class StripeClock:
    """`clock.now` follows the fake account's clock (the one clock: patrons/core/clock.py)."""

    def __init__(self) -> None:
        self.fake: FakeStripe | None = None

    def now(self) -> datetime:
        return self.fake.at() if self.fake is not None else datetime.now(UTC)


@pytest.fixture
def stripe_clock(monkeypatch: pytest.MonkeyPatch) -> StripeClock:
    found = StripeClock()
    monkeypatch.setattr(clock, "now", found.now)
    return found


# -- a world: readers with their Stripe customers, and deliveries to the inbox --------------


class World:
    def __init__(self, db: Session, stripe_clock: StripeClock, readers: int) -> None:
        self.db = db
        self.fake = FakeStripe(int(time.time()), webhook_secret=WEBHOOK_SECRET)
        stripe_clock.fake = self.fake
        self.users: list[int] = []
        self.customers: list[str] = []
        for n in range(readers):
            user = make_user(db)
            customer = f"cus_fakereader{n + 1}"
            db.add(BillingCustomer(user_id=user.id, stripe_customer_id=customer,
                                   created_at=self.fake.at()))  # fmt: skip
            self.users.append(user.id)
            self.customers.append(customer)
        db.commit()
        self.subs: list[str | None] = [None] * readers
        self.delivered: set[int] = set()

    # what may happen next to a reader, given their subscription as Stripe has it
    def choices(self, reader: int) -> list[tuple[str, str]]:
        sub_id = self.subs[reader]
        if sub_id is None:
            return [("create", ""), ("create_declined", "")]
        status = self.fake.subscriptions[sub_id]["status"]
        again = [("create", ""), ("create_declined", "")] if status in ENDED else []
        again = again if RESUBSCRIBE else []
        ending = self.fake.subscriptions[sub_id]["cancel_at_period_end"]
        ops: list[tuple[str, str]] = {
            "incomplete": [("retry_succeeds", sub_id), ("retry_fails", sub_id),
                           ("expire", sub_id), ("cancel", sub_id)],
            "active": [("period_ends", sub_id)] if ending else [
                ("renew", sub_id), ("renewal_fails", sub_id), ("cancel_at_period_end", sub_id),
                ("cancel", sub_id)],
            "past_due": [("retry_succeeds", sub_id), ("retry_fails", sub_id), ("cancel", sub_id)],
        }.get(status, [])  # fmt: skip
        return ops + again + self.money_choices(sub_id)

    def money_choices(self, sub_id: str) -> list[tuple[str, str]]:
        ops: list[tuple[str, str]] = []
        for invoice in self.fake.invoices.values():
            paid = invoice["status"] == "paid"
            if not paid or invoice["parent"]["subscription_details"]["subscription"] != sub_id:
                continue
            charge = self.fake.charge_of(invoice["id"])
            assert charge is not None
            disputes = [d for d in self.fake.disputes.values() if d["charge"] == charge["id"]]
            dispute = disputes[0] if disputes else None
            if dispute is not None and dispute["status"] == "needs_response":
                ops += [("dispute_won", dispute["id"]), ("dispute_lost", dispute["id"])]
            left = charge["amount"] - charge["amount_refunded"]
            if left > 0 and (dispute is None or dispute["status"] == "won"):
                ops += [("refund_full", invoice["id"])] + [("refund_part", invoice["id"])] * (
                    left > 100
                )
            if left > 0 and dispute is None:
                ops.append(("dispute", invoice["id"]))
        return ops

    def do(self, reader: int, op: str, arg: str) -> None:
        fake = self.fake
        if op in ("create", "create_declined"):
            self.subs[reader] = fake.create_subscription(
                self.customers[reader], declined=op == "create_declined"
            )
        elif op == "refund_part":
            fake.refund(arg, 100)
        elif op == "refund_full":
            charge = fake.charge_of(arg)
            assert charge is not None
            fake.refund(arg, charge["amount"] - charge["amount_refunded"])
        else:
            {
                "renew": fake.renew,
                "renewal_fails": fake.renewal_fails,
                "retry_succeeds": lambda s: fake.retry(s, succeed=True),
                "retry_fails": lambda s: fake.retry(s, succeed=False),
                "expire": fake.expire,
                "cancel": fake.cancel,
                "period_ends": fake.cancel,
                "cancel_at_period_end": fake.cancel_at_period_end,
                "dispute": fake.open_dispute,
                "dispute_won": lambda d: fake.close_dispute(d, won=True),
                "dispute_lost": lambda d: fake.close_dispute(d, won=False),
            }[op](arg)

    def deliver(self, index: int) -> None:
        """What the webhook and its background apply do with the index-th event."""
        event = self.fake.event(index)
        inbox.store(self.db, event, clock.now())
        self.db.commit()
        inbox.apply_due(self.db, self.fake, grace_days=GRACE, ids=[event.id])  # type: ignore[arg-type]
        self.delivered.add(index)

    def deliver_types(self, *types: str) -> None:
        """Deliver, in Stripe's order, the events of these types not delivered yet."""
        for index, payload in enumerate(self.fake.events):
            if payload["type"] in types and index not in self.delivered:
                self.deliver(index)

    def deliver_rest(self) -> None:
        for index in range(len(self.fake.events)):
            if index not in self.delivered:
                self.deliver(index)
        self.drain()

    def drain(self) -> None:
        """`flask stripe-worker`: apply whatever is due, as time passes, until nothing is."""
        for _ in range(inbox.MAX_ATTEMPTS + 2):
            inbox.apply_due(self.db, self.fake, grace_days=GRACE, limit=10_000)  # type: ignore[arg-type]
            pending = self.db.scalar(
                select(StripeEvent.id).where(StripeEvent.state == EventState.PENDING).limit(1)
            )
            if pending is None:
                return
            self.fake.advance(3600)

    def payment(self, invoice_id: str) -> Payment:
        self.db.expire_all()
        found = self.db.scalar(select(Payment).where(Payment.stripe_invoice_id == invoice_id))
        assert found is not None, f"no payment for {invoice_id}"
        return found

    def rights(self, reader: int, at: datetime | None = None) -> str | None:
        """The invoice of the payment that gives the reader their rights now (or at `at`)."""
        self.db.expire_all()
        found = rights_payment_id(self.db, self.users[reader], at or clock.now(), GRACE)
        payment = self.db.get(Payment, found) if found is not None else None
        return payment.stripe_invoice_id if payment is not None else None

    def first_invoice(self, reader: int) -> str:
        sub_id = self.subs[reader]
        return next(i for i, inv in self.fake.invoices.items()
                    if inv["parent"]["subscription_details"]["subscription"] == sub_id)  # fmt: skip


# -- what is compared ---------------------------------------------------------------------


@dataclass
class Record:
    pledges: dict[str | None, tuple[Any, ...]]
    payments: dict[str, tuple[Any, ...]]
    rights: list[int]
    budgets: dict[int, str | None]
    net: int


def record(db: Session, users: list[int], now: datetime) -> Record:
    db.expire_all()
    subscription_of: dict[int, str | None] = {}
    pledges = {}
    for p in db.scalars(select(Pledge)):
        subscription_of[p.id] = p.stripe_subscription_id
        pledges[p.stripe_subscription_id] = (p.user_id, p.status, p.amount, p.currency,
                                             p.cancel_at_period_end, p.current_period_end,
                                             p.started_at)  # fmt: skip
    payments, invoice_of, net = {}, {}, 0
    for pay in db.scalars(select(Payment)):
        invoice_of[pay.id] = pay.stripe_invoice_id
        payments[pay.stripe_invoice_id] = (subscription_of[pay.pledge_id], pay.status, pay.amount,
                                           pay.amount_refunded, pay.amount_disputed)  # fmt: skip
        net += pay.net
    budgets = {}
    for user_id in users:
        found = rights_payment_id(db, user_id, now, GRACE)
        budgets[user_id] = invoice_of[found] if found is not None else None
    rights = sorted(db.scalars(active_patron_ids(now, GRACE)))
    return Record(pledges, payments, rights, budgets, net)


LEDGER = (PaymentChange, Payment, PledgeStatusChange, Pledge, StripeEvent)


def wipe(db: Session, *more: type[Any]) -> None:
    """Empty the ledger's tables (and `more`): what sync-stripe then rebuilds from Stripe."""
    for model in (*LEDGER, *more):
        db.execute(delete(model))
    db.commit()


def assert_as_sync_builds(world: World, now: datetime) -> None:
    db = world.db
    left = db.execute(
        select(StripeEvent.id, StripeEvent.type, StripeEvent.state, StripeEvent.last_error).where(
            StripeEvent.state.not_in((EventState.APPLIED, EventState.IGNORED))
        )
    ).all()
    assert left == [], "events left unapplied"
    by_webhooks = record(db, world.users, now)
    assert by_webhooks.net == world.fake.net(), "the ledger's net differs from Stripe's"
    assert sync_stripe(db, world.fake, now=now, grace_days=GRACE) == [], "sync repaired"  # type: ignore[arg-type]
    db.rollback()
    wipe(db)
    sync_stripe(db, world.fake, now=now, grace_days=GRACE)  # type: ignore[arg-type]
    db.commit()
    by_sync = record(db, world.users, now)
    assert by_webhooks.pledges == by_sync.pledges
    assert by_webhooks.payments == by_sync.payments
    assert by_webhooks.rights == by_sync.rights
    assert by_webhooks.budgets == by_sync.budgets
    assert by_webhooks.net == by_sync.net


# -- the property ---------------------------------------------------------------------------

GAPS = st.sampled_from([0, 3600, DAY, 3 * DAY, 8 * DAY])
LATER = st.sampled_from([0, DAY, 6 * DAY, 8 * DAY, 40 * DAY])


@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_delivery_of_any_history_builds_what_sync_builds(
    app: Flask, db: Session, stripe_clock: StripeClock, data: st.DataObject
) -> None:
    with app.app_context():
        db.rollback()
        wipe(db, OutboundEmail, BillingCustomer, User)  # the previous example's (cheaper than
        # empty_tables' TRUNCATE of every table on PostgreSQL)
        readers = data.draw(st.integers(1, 3), label="readers")
        world = World(db, stripe_clock, readers)
        for _ in range(data.draw(st.integers(1, 10), label="steps")):
            reader = data.draw(st.integers(0, readers - 1), label="reader")
            choices = world.choices(reader)
            if not choices:
                continue
            op, arg = data.draw(st.sampled_from(choices), label="operation")
            world.fake.advance(data.draw(GAPS, label="after"))
            world.do(reader, op, arg)
            last = len(world.fake.events) - 1
            for index in data.draw(st.lists(st.integers(0, last), max_size=3), label="now"):
                world.deliver(index)
        count = len(world.fake.events)
        rest = [i for i in range(count) if i not in world.delivered]
        again = data.draw(st.lists(st.integers(0, count - 1), max_size=3), label="again")
        for index in data.draw(st.permutations(rest + again), label="afterwards"):
            world.deliver(index)
        world.drain()
        world.fake.advance(data.draw(LATER, label="checked after"))
        assert_as_sync_builds(world, clock.now())


# -- the defects of issue 12, each in a given order -------------------------------------------


@pytest.fixture
def world(app: Flask, db: Session, stripe_clock: StripeClock) -> Any:
    with app.app_context():
        yield World(db, stripe_clock, 2)


def test_a_refund_before_its_invoice_event_is_applied(world: World) -> None:
    world.subs[0] = world.fake.create_subscription(world.customers[0])
    invoice = world.first_invoice(0)
    world.fake.advance(DAY)
    world.fake.refund(invoice, 500)
    world.deliver_types("charge.refunded")  # first: nothing of this pledge is known yet
    assert world.payment(invoice).status == "refunded"
    assert world.payment(invoice).amount_refunded == 500
    world.deliver_rest()
    assert world.payment(invoice).status == "refunded"
    assert world.rights(0) is None
    assert_as_sync_builds(world, clock.now())


def test_a_dispute_before_its_invoice_event_is_applied(world: World) -> None:
    world.subs[0] = world.fake.create_subscription(world.customers[0])
    invoice = world.first_invoice(0)
    world.fake.advance(DAY)
    world.fake.open_dispute(invoice)
    world.deliver_types("charge.dispute.created")
    assert world.payment(invoice).status == "disputed"
    world.deliver_rest()
    assert world.payment(invoice).status == "disputed"
    assert world.rights(0) is None  # suspended while the dispute is open
    assert_as_sync_builds(world, clock.now())


def test_a_partial_refund_keeps_the_rights(world: World) -> None:
    world.subs[0] = world.fake.create_subscription(world.customers[0])
    invoice = world.first_invoice(0)
    world.fake.refund(invoice, 200)
    world.deliver_rest()
    paid = world.payment(invoice)
    assert (paid.status, paid.amount_refunded, paid.net) == ("partially_refunded", 200, 300)
    assert world.rights(0) == invoice
    assert world.users[0] in world.db.scalars(active_patron_ids(clock.now(), GRACE)).all()
    assert_as_sync_builds(world, clock.now())


def test_a_full_refund_ends_the_rights_it_gave(world: World) -> None:
    world.subs[0] = world.fake.create_subscription(world.customers[0])
    world.subs[1] = world.fake.create_subscription(world.customers[1])
    invoice = world.first_invoice(0)
    world.deliver_rest()
    assert world.rights(0) == invoice
    world.fake.refund(invoice, 100)
    world.fake.refund(invoice, 400)  # two refunds: in full
    world.deliver_rest()
    assert (world.payment(invoice).status, world.payment(invoice).net) == ("refunded", 0)
    assert world.rights(0) is None
    assert world.rights(1) == world.first_invoice(1)  # the other reader keeps theirs
    assert_as_sync_builds(world, clock.now())


def test_an_open_dispute_suspends_the_rights_and_a_won_one_restores_them(world: World) -> None:
    world.subs[0] = world.fake.create_subscription(world.customers[0])
    invoice = world.first_invoice(0)
    dispute = world.fake.open_dispute(invoice)
    world.deliver_rest()
    assert world.rights(0) is None
    world.fake.advance(10 * DAY)
    world.fake.close_dispute(dispute, won=True)
    world.deliver_rest()
    assert world.payment(invoice).status == "dispute_won"
    assert world.rights(0) == invoice
    assert world.payment(invoice).net == 500
    assert_as_sync_builds(world, clock.now())


def test_a_lost_dispute_ends_the_rights_and_the_money(world: World) -> None:
    world.subs[0] = world.fake.create_subscription(world.customers[0])
    invoice = world.first_invoice(0)
    dispute = world.fake.open_dispute(invoice)
    world.fake.advance(10 * DAY)
    world.fake.close_dispute(dispute, won=False)
    world.deliver_types("charge.dispute.closed")  # the closing first, then the rest
    world.deliver_rest()
    payment = world.payment(invoice)
    assert (payment.status, payment.amount_disputed, payment.net) == ("dispute_lost", 500, 0)
    assert world.rights(0) is None
    assert world.fake.net() == 0
    assert_as_sync_builds(world, clock.now())


def test_a_signed_invoice_stripe_does_not_have_creates_no_payment(app: Flask, world: World) -> None:
    world.subs[0] = world.fake.create_subscription(world.customers[0])
    world.deliver_rest()
    app.extensions["patrons.gateway"] = world.fake  # what the webhook reads and applies with
    forged = dict(world.fake.invoices[world.first_invoice(0)], id="in_forged")
    payload = event_payload("evt_forged", "invoice.paid", forged)
    response = app.test_client().post(
        "/stripe/webhook", data=payload, content_type="application/json",
        headers={"Stripe-Signature": sign(payload)},
    )  # fmt: skip
    assert response.status_code == 200
    inbox.wait_for_background_applies(app, 10)
    world.db.expire_all()
    assert world.db.scalar(select(Payment).where(Payment.stripe_invoice_id == "in_forged")) is None
    assert world.db.get(StripeEvent, "evt_forged").state == EventState.IGNORED  # type: ignore[union-attr]
    assert_as_sync_builds(world, clock.now())


def test_the_grace_of_a_failed_renewal_counts_from_the_failure(world: World) -> None:
    world.subs[0] = world.fake.create_subscription(world.customers[0])
    first = world.first_invoice(0)
    failed = world.fake.renewal_fails(world.subs[0])  # at the end of the first period
    failed_at = world.fake.at()
    world.deliver_rest()
    assert world.payment(failed).first_failed_at == failed_at
    period_end = world.fake.retrieve_subscription(world.subs[0]).current_period_end  # type: ignore[union-attr]
    assert period_end is not None and period_end > failed_at + timedelta(days=20)
    assert world.rights(0, failed_at + timedelta(days=GRACE) - timedelta(minutes=1)) == first
    assert world.rights(0, failed_at + timedelta(days=GRACE, minutes=1)) is None
    world.fake.advance(3 * DAY)
    world.fake.retry(world.subs[0], succeed=True)  # recovery restores everything
    world.deliver_rest()
    assert world.rights(0, failed_at + timedelta(days=GRACE + 1)) == failed
    assert_as_sync_builds(world, clock.now())


# -- a reader who pledges again ---------------------------------------------------------------
# (Two defects this found: an ended subscription inserted as `pending` broke the one-open
# rule; a pledge recorded without its reader while the old one was open never got them back.)


def _pledges_again(world: World) -> tuple[str, str]:
    old = world.fake.create_subscription(world.customers[0])
    world.fake.advance(DAY)
    world.fake.cancel(old)
    world.fake.advance(DAY)
    new = world.fake.create_subscription(world.customers[0])
    world.subs[0] = new
    return old, new


def test_a_reader_who_pledges_again_is_recorded_whatever_the_order(world: World) -> None:
    old, new = _pledges_again(world)
    new_events = [i for i, e in enumerate(world.fake.events)
                  if e["data"]["object"].get("id") == new
                  or e["data"]["object"].get("parent", {}).get("subscription_details", {})
                  .get("subscription") == new]  # fmt: skip
    for index in new_events:  # the new pledge first, then the old one's history
        world.deliver(index)
    world.deliver_rest()
    assert world.rights(0) is not None
    assert_as_sync_builds(world, clock.now())


def test_sync_on_empty_tables_records_a_reader_who_pledged_again(world: World) -> None:
    _pledges_again(world)  # Stripe lists the new subscription first
    changes = sync_stripe(world.db, world.fake, now=clock.now(), grace_days=GRACE)  # type: ignore[arg-type]
    world.db.commit()
    assert len(changes) >= 2
    assert world.rights(0) == world.first_invoice(0)


def test_a_new_pledge_keeps_its_reader_when_the_old_ones_end_comes_late(world: World) -> None:
    old = world.fake.create_subscription(world.customers[0])
    world.deliver_rest()  # the old pledge is active here
    world.fake.advance(DAY)
    world.fake.cancel(old)
    world.fake.advance(DAY)
    world.subs[0] = world.fake.create_subscription(world.customers[0])  # outside the app
    world.deliver_types("customer.subscription.created")  # before the old one's end
    world.deliver_rest()
    assert world.rights(0) == world.first_invoice(0)
    assert_as_sync_builds(world, clock.now())


def test_a_pledge_recorded_without_its_reader_gets_them_back_once_ended(world: World) -> None:
    """(Found by the property test.) Two declined starts: the second's subscription is
    recorded while the first is still open here, so without its reader; both expire, and
    the first one's end is applied last: the second pledge gets its reader back, as sync
    would record it."""
    first = world.fake.create_subscription(world.customers[0], declined=True)
    world.deliver_rest()  # the first start is open (incomplete) here
    world.fake.advance(DAY)
    world.fake.expire(first)
    second = world.fake.create_subscription(world.customers[0], declined=True)
    world.deliver_types("customer.subscription.created")  # the second, without its reader
    world.fake.advance(DAY)
    world.fake.expire(second)
    for index, event in enumerate(world.fake.events):  # the second's end before the first's
        if event["data"]["object"].get("id") == second:
            world.deliver(index)
    world.deliver_rest()
    readers = world.db.scalars(select(Pledge.user_id).where(Pledge.stripe_subscription_id
                                                            == second)).all()  # fmt: skip
    assert readers == [world.users[0]]
    assert_as_sync_builds(world, clock.now())
