"""Becoming a patron: the card steps of the support page. `start_pledge` writes the customer
and pledge rows and opens a SetupIntent; after the browser confirmed the card, `subscribe`
creates the subscription. What comes after (3-D Secure, a declined first charge, finishing or
starting over) is in finishing.py.

Money is never held in a transaction across a Stripe call (docs/architecture.md, "How a
Stripe event flows"): each service writes its local row and commits, calls Stripe with no
transaction open, then writes what Stripe answered in a new transaction, which the view
commits. So, unlike other services, these commit part of their work themselves; the view's
single commit stores the final state. The leases that keep a double click from making two
customers or subscriptions are in concurrency.py: a request that finds one held answers
"in progress" (`in_progress`, a 202) instead of waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import BillingCustomer, Pledge, User
from patrons.models.pledges import PledgeStatus
from patrons.pledges import records
from patrons.pledges.choice import Choice
from patrons.pledges.concurrency import (
    STORE_ATTEMPTS,
    customer_lease,
    lease_held,
    release_lease,
    released_on_failure,
    store,
    subscription_lease,
    take_lease,
)
from patrons.pledges.errors import PledgeError, as_pledge_errors, busy, in_progress
from patrons.pledges.finishing import Outcome, confirmed_card, give_up, next_step, outcome
from patrons.pledges.gateway import Gateway
from patrons.pledges.queries import open_pledge
from patrons.pledges.stripe_objects import Card, Invoice, Subscription

__all__ = ["Outcome", "Setup", "confirmed_card", "start_pledge", "subscribe"]


@dataclass(frozen=True)
class Setup:
    """A SetupIntent the browser confirms with the card."""

    pledge_id: int
    client_secret: str


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
    db.execute(  # kept for the record
        update(Pledge).where(Pledge.id == pledge.id).values(stripe_setup_intent_id=setup_id)
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

    A pledge whose first payment never went through (`incomplete`) is given up first (its
    subscription canceled at Stripe): a new try from the card form starts over."""
    for _attempt in range(STORE_ATTEMPTS):
        pledge = open_pledge(db, user_id)
        if pledge is not None and pledge.status == PledgeStatus.INCOMPLETE:
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
    if pledge.status != PledgeStatus.PENDING:
        db.rollback()
        raise PledgeError(
            _("You already have a monthly pledge. You can change it on your pledge page."), 409
        )
    if lease_held(db, subscription_lease(pledge.id)):
        db.rollback()
        raise busy()
    pledge.amount, pledge.currency = choice.amount, choice.currency
    pledge.plan_id = choice.plan
    db.commit()
    return pledge


def _stripe_customer(db: Session, gw: Gateway, row: BillingCustomer, user: User) -> str:
    """The Stripe customer id of the row, creating the customer if none exists yet: one
    request takes the lease and calls Stripe (idempotency key: the row id); another one that
    comes meanwhile is answered "in progress"."""
    existing = _customer_id(db, row.id)
    if existing:
        return existing
    name = customer_lease(row.id)
    token = take_lease(db, name)
    if token is None:
        raise in_progress()
    with released_on_failure(db, name, token):
        existing = _customer_id(db, row.id)  # made while this request took the lease?
        if existing:
            release_lease(db, name, token)
            db.commit()
            return existing
        with as_pledge_errors():
            customer_id = gw.create_customer(
                email=user.email,
                name=user.display_name or None,
                local_id=row.id,
                idempotency_key=f"patrons-customer-{row.id}",
            )
        db.execute(
            update(BillingCustomer)
            .where(BillingCustomer.id == row.id)
            .values(stripe_customer_id=customer_id)
        )
        release_lease(db, name, token)
        db.commit()
    return customer_id


def _customer_id(db: Session, row_id: int) -> str | None:
    """The row's Stripe customer id as committed now (the read transaction is ended)."""
    value = db.scalar(
        select(BillingCustomer.stripe_customer_id).where(BillingCustomer.id == row_id)
    )
    db.commit()
    return value


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
    if pledge.status != PledgeStatus.PENDING or pledge.stripe_subscription_id:
        return outcome(db, gw, pledge)  # a second click, after the first one subscribed
    _check_still_chosen(pledge, expected)
    with as_pledge_errors():  # a SetupIntent that is not this reader's writes nothing at all
        method = confirmed_card(gw, setup_intent_id, pledge.stripe_customer_id or "")
    name = subscription_lease(pledge.id)
    token = take_lease(db, name)
    if token is None:
        return Outcome("processing", pledge.id)  # the page asks /pledge/refresh again
    with released_on_failure(db, name, token):
        current = db.get(Pledge, pledge.id, populate_existing=True)
        db.commit()
        if current is None or current.stripe_subscription_id or not current.is_open:
            release_lease(db, name, token)  # another request finished while this one came
            db.commit()
            return outcome(db, gw, current or pledge)
        sub, invoice, card = _create_subscription(gw, pledge, method)

    def write(session: Session) -> Pledge | None:
        release_lease(session, name, token)
        stored = _with_card(records.apply_answer(session, sub, invoice), card)
        if stored is not None:
            stored.stripe_setup_intent_id = setup_intent_id
        return stored

    stored = store(db, write)
    if stored is None:  # cannot happen for a customer we just wrote; never a 500 for it
        raise PledgeError(_("Your pledge could not be recorded. Please try again."), 502)
    return next_step(db, gw, stored, sub)


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
    gw: Gateway, pledge: Pledge, method: str
) -> tuple[Subscription, Invoice | None, Card]:
    customer_id = pledge.stripe_customer_id or ""
    with as_pledge_errors():
        card = gw.set_default_card(customer_id, method)
        plan = gw.ensure_plan(pledge.currency, pledge.amount)
        sub = gw.create_subscription(
            customer_id, plan, pledge_id=pledge.id, idempotency_key=f"patrons-pledge-{pledge.id}"
        )
        invoice = gw.retrieve_invoice(sub.latest_invoice_id) if sub.latest_invoice_id else None
    return sub, invoice, card
