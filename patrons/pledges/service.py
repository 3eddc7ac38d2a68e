"""Becoming a patron and managing the pledge: the services the pledge pages call.

Money is never held in a transaction across a Stripe call (STYLE.md 7): each service writes
its local row and commits, calls Stripe with no transaction open, then writes what Stripe
answered in a new transaction, which the view commits. So, unlike other services, these
commit part of their work themselves; the view's single commit stores the final state.

A double click, two tabs or a retried request never make a second Stripe customer or
subscription (security.md threat 12): the customer row and the pledge row are written before
Stripe is called and their ids are the idempotency keys; and because localstripe ignores
idempotency keys, the request that creates a customer or a subscription first takes a short
lease on the row (a compare-and-set of one column, committed at once), so the others wait
for its result instead of calling Stripe again.

The amount and the plan are always chosen here, from the validated (currency, amount) and the
configured options; nothing the browser sends names a price (threat 10).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from patrons import mail
from patrons.core import clock
from patrons.core.config import Settings
from patrons.core.money import CurrencyOption, money
from patrons.models import BillingCustomer, Payment, Pledge, User
from patrons.models.pledges import ENDED_STATUSES
from patrons.pledges import records
from patrons.pledges.gateway import (
    CardError,
    Gateway,
    GatewayError,
    Invoice,
    NotFound,
    Subscription,
    plan_id,
)

LEASE_SECONDS = 60  # a lease older than this was left by a request that died: take it over
WAIT_SECONDS = 8.0  # how long a request waits for another one's Stripe call to finish
WAIT_STEP = 0.1
STORE_ATTEMPTS = 3  # storing Stripe's answer races the webhook on unique keys: run it again
REASON_MAX = 1000
_ATTEMPT = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_AMOUNT = re.compile(r"^\s*(\d{1,9})(?:[.,](\d{1,2}))?\s*$")
# statuses of a subscription whose pledge the reader manages on the pledge page
MANAGEABLE = frozenset({"active", "trialing", "past_due"})


class PledgeError(Exception):
    """What went wrong, in words for the reader, and the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Choice:
    currency: str
    amount: int  # minor units

    @property
    def plan(self) -> str:
        return plan_id(self.currency, self.amount)


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


# -- choosing an amount -----------------------------------------------------------------------


def currency_option(settings: Settings, currency: Any) -> CurrencyOption | None:
    code = currency.strip().upper() if isinstance(currency, str) else ""
    return next((o for o in settings.pledge_options if o.code == code), None)


def parse_major(text: Any) -> int | None:
    """ "7", "7.5", "7,50" → 700, 750, 750; None for anything else."""
    match = _AMOUNT.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    return int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))


def parse_choice(
    settings: Settings, currency: Any, amount: Any, other_amount: Any = None
) -> Choice:
    """The (currency, amount) a reader picked: `amount` in minor units (a suggested amount, or
    "other"), `other_amount` in major units. PledgeError (400) unless it is within the options."""
    option = currency_option(settings, currency)
    if option is None:
        raise PledgeError(_("Choose one of the currencies offered."))
    value: int | None
    if isinstance(amount, int) and not isinstance(amount, bool):
        value = amount
    elif amount in (None, "", "other"):
        value = parse_major(other_amount)
        if value is None:
            raise PledgeError(_("Enter an amount, like 5 or 7.50."))
    else:
        text = amount.strip() if isinstance(amount, str) else ""
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None
        if value is None:
            raise PledgeError(_("Choose one of the amounts, or enter your own."))
    if not option.allows(value):
        raise PledgeError(
            _(
                "A monthly pledge in %(currency)s is between %(min)s and %(max)s.",
                currency=option.code,
                min=money(option.minimum, option.code),
                max=money(option.maximum, option.code),
            )
        )
    return Choice(option.code, value)


def check_plan(choice: Choice, posted_plan: Any) -> None:
    """A plan id the page sent must be the one this choice gives (threat 10)."""
    if posted_plan not in (None, "") and posted_plan != choice.plan:
        raise PledgeError(_("That plan is not one we offer. Choose an amount on this page."))


def check_attempt(attempt: Any) -> str:
    """The page's id for one try at entering a card (idempotency of that try's SetupIntent)."""
    if not isinstance(attempt, str) or not _ATTEMPT.match(attempt):
        raise PledgeError(_("The page sent an incomplete request. Reload it and try again."))
    return attempt


# -- reading ---------------------------------------------------------------------------------


def open_pledge(db: Session, user_id: int) -> Pledge | None:
    return db.scalar(
        select(Pledge)
        .where(Pledge.user_id == user_id, Pledge.status.not_in(ENDED_STATUSES))
        .execution_options(populate_existing=True)
    )


def current_pledge(db: Session, user_id: int) -> Pledge | None:
    """The open pledge, else the most recent one that had a subscription."""
    return open_pledge(db, user_id) or db.scalar(
        select(Pledge)
        .where(Pledge.user_id == user_id, Pledge.stripe_subscription_id.is_not(None))
        .order_by(Pledge.created_at.desc(), Pledge.id.desc())
        .limit(1)
    )


def payments_of(db: Session, user_id: int) -> Sequence[Payment]:
    """Every payment of every pledge of this reader, newest first."""
    return db.scalars(
        select(Payment)
        .join(Pledge, Payment.pledge_id == Pledge.id)
        .where(Pledge.user_id == user_id)
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    ).all()


def receipt(db: Session, user_id: int, payment_id: int) -> tuple[Payment, Pledge] | None:
    """The payment and its pledge, only if the pledge is this reader's (else None: a 404)."""
    row = db.execute(
        select(Payment, Pledge)
        .join(Pledge, Payment.pledge_id == Pledge.id)
        .where(Payment.id == payment_id, Pledge.user_id == user_id)
    ).first()
    return (row[0], row[1]) if row else None


# -- leases: one request calls Stripe, the others wait for its answer ------------------------


def _is_lease(value: str | None) -> bool:
    return bool(value) and str(value).startswith("lease:")


def _held(value: str | None) -> bool:
    """A lease some request holds right now (not one left by a request that died)."""
    return _is_lease(value) and not _lease_expired(str(value), clock.now())


def _lease_expired(value: str, now: datetime) -> bool:
    try:
        taken = int(value.split(":")[1])
    except (IndexError, ValueError):
        return True
    return now.timestamp() - taken > LEASE_SECONDS


def _take_lease(
    db: Session, column: InstrumentedAttribute[Any], row_id: int, current: str | None
) -> str | None:
    """Set the column to a new lease token if it still holds `current`; the token, or None
    if another request got there first. Committed at once."""
    model = column.class_
    token = f"lease:{int(clock.now().timestamp())}:{secrets.token_hex(6)}"
    condition = column.is_(None) if current is None else column == current
    result = db.execute(update(model).where(model.id == row_id, condition).values({column: token}))
    db.commit()
    return token if result.rowcount == 1 else None  # type: ignore[attr-defined]


def _end_lease(
    db: Session, column: InstrumentedAttribute[Any], row_id: int, token: str, value: str | None
) -> None:
    model = column.class_
    db.execute(update(model).where(model.id == row_id, column == token).values({column: value}))


def _read(db: Session, column: InstrumentedAttribute[Any], row_id: int) -> str | None:
    value = db.scalar(select(column).where(column.class_.id == row_id))
    db.commit()  # end the read transaction before anything else happens
    return value


def _busy() -> PledgeError:
    return PledgeError(
        _("Your pledge is being set up in another window. Wait a moment, then reload this page."),
        409,
    )


def _failure(exc: GatewayError) -> PledgeError:
    """What the reader is told when Stripe said no: a card's refusal in Stripe's words (which
    Stripe translates), anything else in ours."""
    if isinstance(exc, CardError):
        return PledgeError(exc.message, 402)
    return PledgeError(
        _("The payment service did not answer as expected. Nothing was charged; please try "
          "again in a moment."),
        502,
    )  # fmt: skip


def _store(db: Session, write: Any) -> Any:
    """Run `write(db)` and commit, again if it lost a race on a unique key (e.g. with the
    webhook recording the same invoice at the same moment)."""
    for attempt in range(STORE_ATTEMPTS):
        try:
            result = write(db)
            db.commit()
            return result
        except (IntegrityError, DBAPIError):
            db.rollback()
            if attempt == STORE_ATTEMPTS - 1:
                raise
    return None


# -- becoming a patron -----------------------------------------------------------------------


def start_pledge(db: Session, gw: Gateway, user: User, choice: Choice, attempt: str) -> Setup:
    """Write the customer and pledge rows, make sure the Stripe customer exists, and open a
    SetupIntent for the card. Safe to call again (and concurrently): it reuses what exists."""
    customer = _billing_customer(db, user.id)
    pledge = _pending_pledge(db, gw, user.id, choice)
    customer_id = _stripe_customer(db, gw, customer, user)
    if pledge.stripe_customer_id != customer_id:
        pledge.stripe_customer_id = customer_id
        db.commit()
    try:
        setup_id, secret = gw.create_setup_intent(
            customer_id, idempotency_key=f"patrons-pledge-{pledge.id}-setup-{attempt}"
        )
    except GatewayError as exc:
        raise _failure(exc) from exc
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
    raise _busy()


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
        if pledge is not None and pledge.status != "pending":
            db.rollback()
            raise PledgeError(
                _("You already have a monthly pledge. You can change it on your pledge page."),
                409,
            )
        if pledge is not None:
            if _held(pledge.stripe_setup_intent_id):
                db.rollback()
                raise _busy()
            pledge.amount, pledge.currency = choice.amount, choice.currency
            pledge.plan_id = choice.plan
            db.commit()
            return pledge
        pledge = Pledge(user_id=user_id, amount=choice.amount, currency=choice.currency,
                        plan_id=choice.plan, status="pending", created_at=clock.now())  # fmt: skip
        db.add(pledge)
        try:
            db.commit()  # the partial unique index allows one open pledge per reader
            return pledge
        except IntegrityError:
            db.rollback()
    raise _busy()


def _stripe_customer(db: Session, gw: Gateway, row: BillingCustomer, user: User) -> str:
    """The Stripe customer id of the row, creating the customer if none exists yet: one
    request takes the lease and calls Stripe (idempotency key: the row id), others wait."""
    deadline = time.monotonic() + WAIT_SECONDS
    column = BillingCustomer.stripe_customer_id
    while True:
        value = _read(db, column, row.id)
        if value and not _is_lease(value):
            return value
        if value is None or _lease_expired(value, clock.now()):
            token = _take_lease(db, column, row.id, value)
            if token is not None:
                return _create_customer(db, gw, row.id, user, token)
        if time.monotonic() > deadline:
            raise _busy()
        time.sleep(WAIT_STEP)


def _create_customer(db: Session, gw: Gateway, row_id: int, user: User, token: str) -> str:
    column = BillingCustomer.stripe_customer_id
    try:
        customer_id = gw.create_customer(
            email=user.email,
            name=user.display_name or None,
            local_id=row_id,
            idempotency_key=f"patrons-customer-{row_id}",
        )
    except GatewayError as exc:
        _end_lease(db, column, row_id, token, None)
        db.commit()
        raise _failure(exc) from exc
    _end_lease(db, column, row_id, token, customer_id)
    db.commit()
    return customer_id


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
    if pledge.status != "pending":
        return _outcome(db, gw, pledge)  # a second click, after the first one subscribed
    if not pledge.stripe_customer_id:
        raise PledgeError(_("Choose an amount first: your pledge was not started."), 409)
    if expected is not None and (expected.currency, expected.amount) != (
        pledge.currency, pledge.amount,
    ):  # fmt: skip
        raise PledgeError(
            _("The amount was changed in another window. Reload this page and try again."), 409
        )
    column = Pledge.stripe_setup_intent_id
    current = pledge.stripe_setup_intent_id
    token = None if _held(current) else _take_lease(db, column, pledge.id, current)
    if token is None:
        return _wait_for_subscription(db, gw, pledge.id)
    try:
        sub, invoice, card = _create_subscription(gw, pledge, setup_intent_id)
    except (GatewayError, PledgeError) as exc:
        _end_lease(db, column, pledge.id, token, current)  # a second try may start at once
        db.commit()
        if isinstance(exc, PledgeError):
            raise
        raise _failure(exc) from exc

    def write(session: Session) -> Pledge | None:
        _end_lease(session, column, pledge.id, token, setup_intent_id)
        stored = _apply(session, sub, invoice)
        if stored is not None:
            stored.card_brand, stored.card_last4 = card.brand[:32], card.last4
        return stored

    stored = _store(db, write)
    if stored is None:  # cannot happen for a customer we just wrote; never a 500 for it
        raise PledgeError(_("Your pledge could not be recorded. Please try again."), 502)
    return _next_step(db, gw, stored, sub)


def _create_subscription(
    gw: Gateway, pledge: Pledge, setup_intent_id: str
) -> tuple[Subscription, Invoice | None, Any]:
    customer_id = pledge.stripe_customer_id or ""
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
        if pledge is None or not _held(pledge.stripe_setup_intent_id):
            break  # it gave up without a subscription: this request has nothing to add
    raise _busy()


def _apply(db: Session, sub: Subscription, invoice: Invoice | None) -> Pledge | None:
    """Record the subscription (and its invoice) as the webhook would. The pledge's row is
    locked first by a no-op UPDATE (a row lock on PostgreSQL, the write lock on SQLite), so
    this and a webhook about the same pledge take turns and mail a receipt once."""
    now = clock.now()
    clauses = [Pledge.stripe_subscription_id == sub.id]
    local = sub.metadata.get("patrons_pledge", "")
    if local.isdigit() and len(local) < 10:
        clauses.append(Pledge.id == int(local))
    db.execute(update(Pledge).where(or_(*clauses)).values(updated_at=Pledge.updated_at))
    pledge = records.apply_subscription(db, sub, now=now, source="reader")
    if pledge is not None and invoice is not None and invoice.subscription_id == sub.id:
        effect = records.apply_invoice(db, pledge, invoice, now=now)
        records.send_invoice_mail(db, pledge, effect, now=now)
    return pledge


def refresh(db: Session, gw: Gateway, user: User) -> Outcome:
    """Read the reader's subscription from Stripe again (after `confirmCardPayment`)."""
    pledge = current_pledge(db, user.id)
    db.commit()
    if pledge is None or not pledge.stripe_subscription_id:
        raise PledgeError(_("There is no pledge to check. Choose an amount to start one."), 409)
    return _outcome(db, gw, pledge)


def _outcome(db: Session, gw: Gateway, pledge: Pledge) -> Outcome:
    try:
        sub = gw.retrieve_subscription(pledge.stripe_subscription_id or "")
        invoice = None
        if sub is not None and sub.latest_invoice_id:
            invoice = gw.retrieve_invoice(sub.latest_invoice_id)
    except GatewayError as exc:
        raise _failure(exc) from exc
    if sub is None:
        raise PledgeError(_("The payment service does not know this pledge any more."), 409)
    stored = _store(db, lambda session: _apply(session, sub, invoice)) or pledge
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
        try:
            sub = gw.cancel_now(pledge.stripe_subscription_id)
        except GatewayError as exc:
            raise _failure(exc) from exc

    _store(db, lambda session: _record_end(session, pledge.id, sub, "abandoned"))


def _record_end(
    session: Session, pledge_id: int, sub: Subscription | None, status: str, reason: str = ""
) -> None:
    """Write down that the reader's pledge ended: Stripe's last word on it when there is
    one, else `status`; the end time, and the reason unless one was given already."""
    stored = session.get(Pledge, pledge_id, populate_existing=True)
    if stored is None:
        return
    if sub is not None:
        records.apply_subscription(session, sub, now=clock.now(), source="reader")
    if stored.status not in ENDED_STATUSES:
        records.set_status(session, stored, status, now=clock.now(), source="reader")
    stored.ended_at = stored.ended_at or clock.now()
    stored.cancel_reason = stored.cancel_reason or reason or None


def end_for_erasure(db: Session, gw: Gateway | None, user_id: int) -> None:
    """Before an account is erased: end its open pledge at Stripe now (nobody is left to
    manage it, so not at the period's end) and record that, in the caller's transaction.

    Called with no transaction open (it commits what it read), because the call to Stripe
    must not hold one. PledgeError (503) when the pledge cannot be stopped: the account is
    then kept, rather than leave a card charged every month for an account that is gone."""
    pledge = open_pledge(db, user_id)
    db.commit()
    if pledge is None or not pledge.stripe_subscription_id:
        return
    if gw is None:
        raise PledgeError(_cannot_stop_message(), 503)
    try:
        sub = gw.cancel_now(pledge.stripe_subscription_id)
    except GatewayError as exc:
        raise PledgeError(_cannot_stop_message(), 503) from exc
    _record_end(db, pledge.id, sub, "canceled", "account deleted")


def _cannot_stop_message() -> str:
    return _("Your monthly pledge could not be stopped just now, so your account was not "
             "deleted. Please try again in a few minutes.")  # fmt: skip


# -- managing the pledge ---------------------------------------------------------------------


def _manageable(db: Session, user_id: int) -> Pledge:
    pledge = open_pledge(db, user_id)
    db.commit()
    if pledge is None or pledge.status not in MANAGEABLE or not pledge.stripe_subscription_id:
        raise PledgeError(_("You have no monthly pledge to change."), 409)
    return pledge


def change_amount(db: Session, gw: Gateway, user: User, choice: Choice) -> Pledge:
    """Move the subscription to the plan of the new amount; Stripe settles the difference
    for the rest of this period on the next invoice."""
    pledge = _manageable(db, user.id)
    if choice.currency != pledge.currency:
        raise PledgeError(_("The currency of a pledge cannot be changed."))
    if choice.amount == pledge.amount:
        raise PledgeError(_("That is already the amount of your pledge."))
    try:
        plan = gw.ensure_plan(choice.currency, choice.amount)
        current = gw.retrieve_subscription(pledge.stripe_subscription_id or "")
        if current is None:
            raise PledgeError(_("The payment service does not know this pledge any more."), 409)
        sub = gw.change_plan(current, plan)
    except GatewayError as exc:
        raise _failure(exc) from exc
    return _store(db, lambda session: _apply(session, sub, None)) or pledge


def cancel(db: Session, gw: Gateway, user: User, reason: str) -> Pledge:
    """Stop the pledge at the end of the period already paid for, and confirm it by email."""
    pledge = _manageable(db, user.id)
    if pledge.cancel_at_period_end:
        raise PledgeError(_("Your pledge is already set to end."), 409)
    try:
        sub = gw.set_cancel_at_period_end(pledge.stripe_subscription_id or "", True)
    except GatewayError as exc:
        raise _failure(exc) from exc
    reason = " ".join(reason.split())[:REASON_MAX] or None

    def write(session: Session) -> Pledge | None:
        stored = _apply(session, sub, None)
        if stored is not None:
            stored.cancel_reason = reason
            _queue_canceled_mail(session, user, stored)
        return stored

    return _store(db, write) or pledge


def _queue_canceled_mail(db: Session, user: User, pledge: Pledge) -> None:
    settings: Settings = current_app.config["SETTINGS"]
    mail.queue_message(
        db,
        user.email,
        "pledge_canceled",
        _("Your pledge will end on %(date)s", date=_date(pledge.current_period_end)),
        pledge=pledge,
        amount=money(pledge.amount, pledge.currency),
        ends_on=_date(pledge.current_period_end),
        pledge_url=settings.site_url + "/pledge",
    )


def _date(value: datetime | None) -> str:
    from patrons.core.formatting import format_date

    return format_date(value) if value else _("the end of this month")


def resume(db: Session, gw: Gateway, user: User) -> Pledge:
    """Keep a pledge that was set to end, before the period ends."""
    pledge = _manageable(db, user.id)
    if not pledge.cancel_at_period_end:
        raise PledgeError(_("Your pledge is not set to end."), 409)
    try:
        sub = gw.set_cancel_at_period_end(pledge.stripe_subscription_id or "", False)
    except GatewayError as exc:
        raise _failure(exc) from exc

    def write(session: Session) -> Pledge | None:
        stored = _apply(session, sub, None)
        if stored is not None:
            stored.cancel_reason = None
        return stored

    return _store(db, write) or pledge


def start_card_update(db: Session, gw: Gateway, user: User, attempt: str) -> Setup:
    """A SetupIntent for a new card on the reader's pledge."""
    pledge = _manageable(db, user.id)
    try:
        _id, secret = gw.create_setup_intent(
            pledge.stripe_customer_id or "",
            idempotency_key=f"patrons-pledge-{pledge.id}-card-{attempt}",
        )
    except GatewayError as exc:
        raise _failure(exc) from exc
    return Setup(pledge.id, secret)


def finish_card_update(
    db: Session, gw: Gateway, user: User, setup_intent_id: str
) -> tuple[Pledge, bool | None]:
    """Make the card the browser confirmed the default for the pledge's next invoices. A
    past-due pledge's missed payment is tried again with it at once: (pledge, whether that
    worked), None when there was nothing to retry."""
    pledge = _manageable(db, user.id)
    customer_id = pledge.stripe_customer_id or ""
    try:
        card = gw.set_default_card(customer_id, confirmed_card(gw, setup_intent_id, customer_id))
    except GatewayError as exc:
        raise _failure(exc) from exc
    retried: bool | None = None
    invoices: list[Invoice] = []
    sub = None
    if pledge.status == "past_due":
        try:
            invoices = gw.pay_open_invoices(pledge.stripe_subscription_id or "")
            retried = all(inv.status == "paid" for inv in invoices)
        except CardError:
            retried = False
        except GatewayError:
            retried = None  # the next scheduled retry will use the card
        try:
            sub = gw.retrieve_subscription(pledge.stripe_subscription_id or "")
            if sub is not None:
                invoices = [i for i in map(gw.retrieve_invoice, _invoice_ids(sub, invoices)) if i]
        except GatewayError:
            sub = None

    def write(session: Session) -> Pledge | None:
        stored = session.get(Pledge, pledge.id, populate_existing=True)
        if stored is None:
            return None
        stored.card_brand, stored.card_last4 = card.brand[:32], card.last4
        stored.updated_at = clock.now()
        if sub is not None:
            _apply(session, sub, None)
            for invoice in invoices:
                effect = records.apply_invoice(session, stored, invoice, now=clock.now())
                records.send_invoice_mail(session, stored, effect, now=clock.now())
        return stored

    return (_store(db, write) or pledge), retried


def _invoice_ids(sub: Subscription, invoices: list[Invoice]) -> list[str]:
    ids = [inv.id for inv in invoices]
    if sub.latest_invoice_id and sub.latest_invoice_id not in ids:
        ids.append(sub.latest_invoice_id)
    return ids


# -- offline only: what time would do (staff's demo actions) ---------------------------------


def simulate_renewals(db: Session, gw: Gateway) -> int:
    """Invoice and charge next month for every active pledge; the number renewed."""
    ids = db.scalars(
        select(Pledge.stripe_subscription_id).where(
            Pledge.status.in_(("active", "trialing")), Pledge.stripe_subscription_id.is_not(None)
        )
    ).all()
    db.commit()
    renewed = 0
    for subscription_id in ids:
        sub = gw.retrieve_subscription(subscription_id or "")
        if sub is None or sub.status not in ("active", "trialing"):
            continue
        invoice = gw.simulate_renewal(sub)
        _record_renewal(db, gw, sub.id, invoice)
        renewed += 1
    return renewed


def simulate_failed_renewal(db: Session, gw: Gateway, pledge_id: int) -> Pledge:
    pledge = db.get(Pledge, pledge_id)
    db.commit()
    if pledge is None or not pledge.stripe_subscription_id or not pledge.is_open:
        raise PledgeError(_("Choose an open pledge with a subscription."), 404)
    sub = gw.retrieve_subscription(pledge.stripe_subscription_id)
    if sub is None:
        raise PledgeError(_("The payment service does not know this pledge any more."), 409)
    invoice = gw.simulate_failed_renewal(sub)
    return _record_renewal(db, gw, sub.id, invoice) or pledge


def _record_renewal(db: Session, gw: Gateway, subscription_id: str, invoice: Invoice) -> Any:
    """localstripe sends no subscription.updated: read the subscription again and record it
    with the new invoice, as the webhook would."""
    sub = gw.retrieve_subscription(subscription_id)
    if sub is None:
        return None

    def write(session: Session) -> Pledge | None:
        now = clock.now()
        pledge = records.apply_subscription(session, sub, now=now, source="staff")
        if pledge is not None:
            effect = records.apply_invoice(session, pledge, invoice, now=now)
            records.send_invoice_mail(session, pledge, effect, now=now)
        return pledge

    return _store(db, write)
