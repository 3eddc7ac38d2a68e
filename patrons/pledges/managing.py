"""Managing an existing pledge from the pledge page: change its amount, cancel it at the end of
the period or keep it after all, save a new card (and retry a missed payment with it); and
end it at once when the reader's account is erased.

Like starting.py, each service commits what it read, calls Stripe with no transaction open,
and writes Stripe's answer through records.py (`store`); the view commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from patrons import mail
from patrons.core import clock
from patrons.core.formatting import format_date
from patrons.core.money import money
from patrons.models import Pledge, User
from patrons.pledges import records
from patrons.pledges.choice import Choice
from patrons.pledges.concurrency import store
from patrons.pledges.errors import PledgeError, as_pledge_errors, unknown_to_stripe
from patrons.pledges.gateway import Gateway
from patrons.pledges.queries import MANAGEABLE, open_pledge
from patrons.pledges.starting import Setup, confirmed_card
from patrons.pledges.stripe_objects import Card, CardError, GatewayError, Invoice, Subscription

REASON_MAX = 1000


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
    with as_pledge_errors():
        plan = gw.ensure_plan(choice.currency, choice.amount)
        current = gw.retrieve_subscription(pledge.stripe_subscription_id or "")
        if current is None:
            raise unknown_to_stripe()
        sub = gw.change_plan(current, plan)
    return store(db, lambda session: records.apply_answer(session, sub, None)) or pledge


# -- cancelling, and changing one's mind ---------------------------------------------------


def cancel(db: Session, gw: Gateway, user: User, reason: str, pledge_url: str) -> Pledge:
    """Stop the pledge at the end of the period already paid for, and confirm it by email
    (with a link to `pledge_url`, the pledge page's absolute address)."""
    pledge = _manageable(db, user.id)
    if pledge.cancel_at_period_end:
        raise PledgeError(_("Your pledge is already set to end."), 409)
    with as_pledge_errors():
        sub = gw.set_cancel_at_period_end(pledge.stripe_subscription_id or "", True)
    kept_reason = " ".join(reason.split())[:REASON_MAX] or None

    def write(session: Session) -> Pledge | None:
        stored = records.apply_answer(session, sub, None)
        if stored is not None:
            stored.cancel_reason = kept_reason
            _queue_canceled_mail(session, user, stored, pledge_url)
        return stored

    return store(db, write) or pledge


def _queue_canceled_mail(db: Session, user: User, pledge: Pledge, pledge_url: str) -> None:
    mail.queue_message(
        db,
        user.email,
        "pledge_canceled",
        _("Your pledge will end on %(date)s", date=_date(pledge.current_period_end)),
        pledge=pledge,
        amount=money(pledge.amount, pledge.currency),
        ends_on=_date(pledge.current_period_end),
        pledge_url=pledge_url,
    )


def _date(value: datetime | None) -> str:
    return format_date(value) if value else _("the end of this month")


def resume(db: Session, gw: Gateway, user: User) -> Pledge:
    """Keep a pledge that was set to end, before the period ends."""
    pledge = _manageable(db, user.id)
    if not pledge.cancel_at_period_end:
        raise PledgeError(_("Your pledge is not set to end."), 409)
    with as_pledge_errors():
        sub = gw.set_cancel_at_period_end(pledge.stripe_subscription_id or "", False)

    def write(session: Session) -> Pledge | None:
        stored = records.apply_answer(session, sub, None)
        if stored is not None:
            stored.cancel_reason = None
        return stored

    return store(db, write) or pledge


# -- a new card -------------------------------------------------------------------------


def start_card_update(db: Session, gw: Gateway, user: User, attempt: str) -> Setup:
    """A SetupIntent for a new card on the reader's pledge."""
    pledge = _manageable(db, user.id)
    with as_pledge_errors():
        _id, secret = gw.create_setup_intent(
            pledge.stripe_customer_id or "",
            idempotency_key=f"patrons-pledge-{pledge.id}-card-{attempt}",
        )
    return Setup(pledge.id, secret)


@dataclass
class _Retry:
    """A past-due pledge's missed payment tried again with the new card: whether that worked
    (None: not known, or nothing to retry), and Stripe's subscription and invoices after it."""

    worked: bool | None = None
    subscription: Subscription | None = None
    invoices: list[Invoice] = field(default_factory=list)


def finish_card_update(
    db: Session, gw: Gateway, user: User, setup_intent_id: str
) -> tuple[Pledge, bool | None]:
    """Make the card the browser confirmed the default for the pledge's next invoices. A
    past-due pledge's missed payment is tried again with it at once: (pledge, whether that
    worked), None when there was nothing to retry."""
    pledge = _manageable(db, user.id)
    customer_id = pledge.stripe_customer_id or ""
    with as_pledge_errors():
        card = gw.set_default_card(customer_id, confirmed_card(gw, setup_intent_id, customer_id))
    retry = _retry_missed_payment(gw, pledge) if pledge.status == "past_due" else _Retry()
    stored = store(db, partial(_write_card_update, pledge_id=pledge.id, card=card, retry=retry))
    return (stored or pledge), retry.worked


def _retry_missed_payment(gw: Gateway, pledge: Pledge) -> _Retry:
    """Pay the open invoices now, then read the subscription and those invoices back (a
    failure to read them only leaves the record to the webhook)."""
    subscription_id = pledge.stripe_subscription_id or ""
    retry = _Retry()
    try:
        retry.invoices = gw.pay_open_invoices(subscription_id)
        retry.worked = all(inv.status == "paid" for inv in retry.invoices)
    except CardError:
        retry.worked = False
    except GatewayError:
        retry.worked = None  # the next scheduled retry will use the card
    try:
        retry.subscription = gw.retrieve_subscription(subscription_id)
        if retry.subscription is not None:
            ids = _invoice_ids(retry.subscription, retry.invoices)
            retry.invoices = [i for i in map(gw.retrieve_invoice, ids) if i]
    except GatewayError:
        retry.subscription = None
    return retry


def _invoice_ids(sub: Subscription, invoices: list[Invoice]) -> list[str]:
    ids = [inv.id for inv in invoices]
    if sub.latest_invoice_id and sub.latest_invoice_id not in ids:
        ids.append(sub.latest_invoice_id)
    return ids


def _write_card_update(
    session: Session, *, pledge_id: int, card: Card, retry: _Retry
) -> Pledge | None:
    stored = session.get(Pledge, pledge_id, populate_existing=True)
    if stored is None:
        return None
    stored.card_brand, stored.card_last4 = card.brand[:32], card.last4
    stored.updated_at = clock.now()
    if retry.subscription is not None:
        records.apply_answer(session, retry.subscription, None)
        for invoice in retry.invoices:  # the page reports a refusal: no failure mail
            records.record_invoice(session, stored, invoice, now=clock.now(), source="reader",
                                   failure_mail=False)  # fmt: skip
    return stored


# -- the account is erased -------------------------------------------------------------------


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
    records.record_end(db, pledge.id, sub, "canceled", "account deleted")


def _cannot_stop_message() -> str:
    return str(_("Your monthly pledge could not be stopped just now, so your account was not "
                 "deleted. Please try again in a few minutes."))  # fmt: skip
