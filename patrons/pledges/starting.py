"""Becoming a patron: the card steps of the support page. `start_pledge` writes the customer
and pledge rows and opens a SetupIntent; after the browser confirmed the card, `subscribe`
creates the subscription; `refresh` reads it again after 3-D Secure; `give_up` ends a pledge
whose first payment never went through.

Money is never held in a transaction across a Stripe call (docs/architecture.md, "How a
Stripe event flows"): each service writes its local row and commits, calls Stripe with no
transaction open, then writes what Stripe answered in a new transaction, which the view
commits. So, unlike other services, these commit part of their work themselves; the view's
single commit stores the final state. The leases that keep a double click from making two
customers or subscriptions are in concurrency.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import BillingCustomer, Pledge, User
from patrons.pledges import records
from patrons.pledges.choice import Choice
from patrons.pledges.concurrency import (
    STORE_ATTEMPTS,
    WAIT_SECONDS,
    WAIT_STEP,
    end_lease,
    held,
    is_lease,
    lease_expired,
    lease_returned_on_refusal,
    read_committed,
    store,
    take_lease,
)
from patrons.pledges.errors import PledgeError, as_pledge_errors, busy, unknown_to_stripe
from patrons.pledges.gateway import Gateway
from patrons.pledges.queries import current_pledge, open_pledge
from patrons.pledges.stripe_objects import Card, CardError, Invoice, NotFound, Subscription


@dataclass(frozen=True)
class Setup:
    """A SetupIntent the browser confirms with the card."""

    pledge_id: int
    client_secret: str


@dataclass(frozen=True)
class Outcome:
    """Where a pledge stands after the server's part: `active`, or `requires_action` with the
    PaymentIntent's client secret for `confirmCardPayment`."""

    status: str
    pledge_id: int
    client_secret: str | None = None


# -- the first step: the rows, the Stripe customer, a SetupIntent ---------------------------


def start_pledge(db: Session, gw: Gateway, user: User, choice: Choice, attempt: str) -> Setup:
    """Write the customer and pledge rows, make sure the Stripe customer exists, and open a
    SetupIntent for the card. Safe to call again (and concurrently): it reuses what exists."""
    customer = _billing_customer(db, user.id)
    pledge = _pending_pledge(db, gw, user.id, choice)
    customer_id = _stripe_customer(db, gw, customer, user)
    if pledge.stripe_customer_id != customer_id:
        pledge.stripe_customer_id = customer_id
        db.commit()
    with as_pledge_errors():
        setup_id, secret = gw.create_setup_intent(
            customer_id, idempotency_key=f"patrons-pledge-{pledge.id}-setup-{attempt}"
        )
    column = Pledge.stripe_setup_intent_id
    db.execute(  # kept for the record, unless a subscription is being created right now
        update(Pledge)
        .where(Pledge.id == pledge.id, or_(column.is_(None), ~column.startswith("lease:")))
        .values(stripe_setup_intent_id=setup_id)
    )
    return Setup(pledge.id, secret)


def _billing_customer(db: Session, user_id: int) -> BillingCustomer:
    """The reader's customer row, written (and committed) before any Stripe customer exists."""
    for _attempt in range(STORE_ATTEMPTS):
        row = db.scalar(select(BillingCustomer).where(BillingCustomer.user_id == user_id))
        if row is not None:
            db.commit()
            return row
        db.add(BillingCustomer(user_id=user_id, created_at=clock.now()))
        try:
            db.commit()
        except IntegrityError:
            db.rollback()  # another request wrote it first: read theirs
    raise busy()


def _pending_pledge(db: Session, gw: Gateway, user_id: int, choice: Choice) -> Pledge:
    """The reader's pending pledge at this amount: reused, or written (and committed) now.

    A pledge whose first payment never went through (`incomplete`) is given up first, so a
    declined card or a failed authentication never blocks a second try."""
    for _attempt in range(STORE_ATTEMPTS):
        pledge = open_pledge(db, user_id)
        if pledge is not None and pledge.status == "incomplete":
            db.commit()
            give_up(db, gw, pledge)
            continue
        if pledge is not None:
            return _reuse_pending(db, pledge, choice)
        pledge = Pledge(user_id=user_id, amount=choice.amount, currency=choice.currency,
                        plan_id=choice.plan, status="pending", created_at=clock.now())  # fmt: skip
        db.add(pledge)
        try:
            db.commit()  # the partial unique index allows one open pledge per reader
            return pledge
        except IntegrityError:
            db.rollback()
    raise busy()


def _reuse_pending(db: Session, pledge: Pledge, choice: Choice) -> Pledge:
    """The open pledge set to this amount (committed), if it is still pending and free."""
    if pledge.status != "pending":
        db.rollback()
        raise PledgeError(
            _("You already have a monthly pledge. You can change it on your pledge page."), 409
        )
    if held(pledge.stripe_setup_intent_id):
        db.rollback()
        raise busy()
    pledge.amount, pledge.currency = choice.amount, choice.currency
    pledge.plan_id = choice.plan
    db.commit()
    return pledge


def _stripe_customer(db: Session, gw: Gateway, row: BillingCustomer, user: User) -> str:
    """The Stripe customer id of the row, creating the customer if none exists yet: one
    request takes the lease and calls Stripe (idempotency key: the row id), others wait."""
    deadline = time.monotonic() + WAIT_SECONDS
    column = BillingCustomer.stripe_customer_id
    while True:
        value = read_committed(db, column, row.id)
        if value and not is_lease(value):
            return value
        if value is None or lease_expired(value, clock.now()):
            token = take_lease(db, column, row.id, value)
            if token is not None:
                return _create_customer(db, gw, row.id, user, token)
        if time.monotonic() > deadline:
            raise busy()
        time.sleep(WAIT_STEP)


def _create_customer(db: Session, gw: Gateway, row_id: int, user: User, token: str) -> str:
    column = BillingCustomer.stripe_customer_id
    with lease_returned_on_refusal(db, column, row_id, token, None), as_pledge_errors():
        customer_id = gw.create_customer(
            email=user.email,
            name=user.display_name or None,
            local_id=row_id,
            idempotency_key=f"patrons-customer-{row_id}",
        )
    end_lease(db, column, row_id, token, customer_id)
    db.commit()
    return customer_id


# -- the second step: the subscription ---------------------------------------------------


def subscribe(
    db: Session, gw: Gateway, user: User, setup_intent_id: str, expected: Choice | None = None
) -> Outcome:
    """After the browser confirmed the card: make it the default, and create the one-item
    subscription on the pledge's plan (idempotency key: the pledge id). `expected` is the
    amount the page showed: another window may have started the pledge at another since."""
    pledge = open_pledge(db, user.id)
    db.commit()
    if pledge is None:
        raise PledgeError(_("Choose an amount first: your pledge was not started."), 409)
    if pledge.status != "pending" or pledge.stripe_subscription_id:
        return _outcome(db, gw, pledge)  # a second click, after the first one subscribed
    _check_still_chosen(pledge, expected)
    column = Pledge.stripe_setup_intent_id
    current = pledge.stripe_setup_intent_id
    token = None if held(current) else take_lease(db, column, pledge.id, current)
    if token is None:
        return _wait_for_subscription(db, gw, pledge.id)
    # a refusal gives the lease back: a second try may start at once
    with lease_returned_on_refusal(db, column, pledge.id, token, current):
        sub, invoice, card = _create_subscription(gw, pledge, setup_intent_id)

    def write(session: Session) -> Pledge | None:
        end_lease(session, column, pledge.id, token, setup_intent_id)
        return _with_card(records.apply_answer(session, sub, invoice), card)

    stored = store(db, write)
    if stored is None:  # cannot happen for a customer we just wrote; never a 500 for it
        raise PledgeError(_("Your pledge could not be recorded. Please try again."), 502)
    return _next_step(db, gw, stored, sub)


def _check_still_chosen(pledge: Pledge, expected: Choice | None) -> None:
    """The pledge was started (it has a customer), at the amount the page showed."""
    if not pledge.stripe_customer_id:
        raise PledgeError(_("Choose an amount first: your pledge was not started."), 409)
    if expected is not None and (expected.currency, expected.amount) != (
        pledge.currency, pledge.amount,
    ):  # fmt: skip
        raise PledgeError(
            _("The amount was changed in another window. Reload this page and try again."), 409
        )


def _with_card(pledge: Pledge | None, card: Card) -> Pledge | None:
    """The pledge, showing what may be shown of its card from now on."""
    if pledge is not None:
        pledge.card_brand, pledge.card_last4 = card.brand[:32], card.last4
    return pledge


def _create_subscription(
    gw: Gateway, pledge: Pledge, setup_intent_id: str
) -> tuple[Subscription, Invoice | None, Card]:
    customer_id = pledge.stripe_customer_id or ""
    with as_pledge_errors():
        method = confirmed_card(gw, setup_intent_id, customer_id)
        card = gw.set_default_card(customer_id, method)
        plan = gw.ensure_plan(pledge.currency, pledge.amount)
        sub = gw.create_subscription(
            customer_id, plan, pledge_id=pledge.id, idempotency_key=f"patrons-pledge-{pledge.id}"
        )
        invoice = gw.retrieve_invoice(sub.latest_invoice_id) if sub.latest_invoice_id else None
    return sub, invoice, card


def confirmed_card(gw: Gateway, setup_intent_id: str, customer_id: str) -> str:
    """The card a SetupIntent of this customer confirmed; a 400 for any other SetupIntent id
    the page may send (unknown, someone else's, not confirmed)."""
    try:
        return gw.confirmed_payment_method(setup_intent_id, customer_id)
    except (NotFound, CardError) as exc:
        raise PledgeError(_("The card was not confirmed. Please enter it again.")) from exc


def _wait_for_subscription(db: Session, gw: Gateway, pledge_id: int) -> Outcome:
    """Another request is creating the subscription: its outcome, once it has one."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(WAIT_STEP)
        pledge = db.get(Pledge, pledge_id, populate_existing=True)
        db.commit()
        if pledge is not None and pledge.stripe_subscription_id:
            return _outcome(db, gw, pledge)
        if pledge is None or not held(pledge.stripe_setup_intent_id):
            break  # it gave up without a subscription: this request has nothing to add
    raise busy()


# -- after 3-D Secure, and when the first payment fails -------------------------------------


def refresh(db: Session, gw: Gateway, user: User) -> Outcome:
    """Read the reader's subscription from Stripe again (after `confirmCardPayment`)."""
    pledge = current_pledge(db, user.id)
    db.commit()
    if pledge is None or not pledge.stripe_subscription_id:
        raise PledgeError(_("There is no pledge to check. Choose an amount to start one."), 409)
    return _outcome(db, gw, pledge)


def _outcome(db: Session, gw: Gateway, pledge: Pledge) -> Outcome:
    with as_pledge_errors():
        sub = gw.retrieve_subscription(pledge.stripe_subscription_id or "")
        invoice = None
        if sub is not None and sub.latest_invoice_id:
            invoice = gw.retrieve_invoice(sub.latest_invoice_id)
    if sub is None:
        raise unknown_to_stripe()
    stored = store(db, lambda session: records.apply_answer(session, sub, invoice)) or pledge
    return _next_step(db, gw, stored, sub)


def _next_step(db: Session, gw: Gateway, pledge: Pledge, sub: Subscription) -> Outcome:
    """What the page does next: nothing (active), authenticate, or show why it failed (the
    failed subscription is ended first, so that a second try starts clean)."""
    if sub.status in ("active", "trialing"):
        return Outcome("active", pledge.id)
    if sub.status == "incomplete" and sub.payment_intent_status == "requires_action":
        return Outcome("requires_action", pledge.id, sub.payment_intent_client_secret)
    if sub.status == "past_due":
        return Outcome("past_due", pledge.id)
    give_up(db, gw, pledge, sub)
    if sub.payment_error and "authentication" in sub.payment_error.lower():
        message = _("The payment was not authenticated, so nothing was charged. Try again, "
                    "or use another card.")  # fmt: skip
    elif sub.payment_error:
        message = _("Your card was declined, so nothing was charged. Try another card.")
    else:
        message = _("The first payment did not go through, so nothing was charged. Try again.")
    raise PledgeError(message, 402)


def give_up(db: Session, gw: Gateway, pledge: Pledge, sub: Subscription | None = None) -> None:
    """End a pledge whose first payment never went through (committed): its subscription is
    canceled at Stripe, and a pending pledge without one is marked abandoned."""
    if sub is not None and sub.status in ("canceled", "incomplete_expired"):
        pass  # already over at Stripe (localstripe cancels on a failed authentication)
    elif pledge.stripe_subscription_id:
        with as_pledge_errors():
            sub = gw.cancel_now(pledge.stripe_subscription_id)
    store(db, lambda session: records.record_end(session, pledge.id, sub, "abandoned"))
