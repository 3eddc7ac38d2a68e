"""After the subscription of a new pledge exists: read it again after 3-D Secure (`refresh`),
say what the page does next (`next_step`), and, when the first payment did not go through
(a card declined at the first charge, a 3-D Secure step failed or left unfinished), let the
reader finish the pledge or start over. A failed start never locks anyone out:

- `finish`: if the first payment waits for the bank's confirmation, the page opens it again;
  if the card was refused, a SetupIntent for another card, which `finish_with_card` makes the
  default before paying the open first invoice again (as managing.py does for a past-due
  patron's missed payment);
- `start_over`: the incomplete subscription is canceled at Stripe and the pledge ends
  `abandoned`, in its history with the source "reader" (`give_up`).

Like starting.py: no transaction is open during a call to Stripe; the view commits last.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from patrons.models import Pledge, User
from patrons.pledges import records
from patrons.pledges.concurrency import (
    lease_held,
    release_lease,
    released_on_failure,
    store,
    subscription_lease,
    take_lease,
)
from patrons.pledges.errors import PledgeError, as_pledge_errors, busy, unknown_to_stripe
from patrons.pledges.gateway import Gateway
from patrons.pledges.queries import UNFINISHED, current_pledge, open_pledge
from patrons.pledges.stripe_objects import CardError, GatewayError, Invoice, NotFound, Subscription

_OVER = ("canceled", "incomplete_expired")


@dataclass(frozen=True)
class Outcome:
    """Where a pledge stands after the server's part: `active`; `requires_action` with the
    PaymentIntent's client secret for `confirmCardPayment`; `needs_card` with a SetupIntent's
    client secret for `confirmCardSetup`; `processing` while another request creates it."""

    status: str
    pledge_id: int
    client_secret: str | None = None


def confirmed_card(gw: Gateway, setup_intent_id: str, customer_id: str) -> str:
    """The card a SetupIntent of this customer confirmed; a 400 for any other SetupIntent id
    the page may send (unknown, someone else's, not confirmed)."""
    try:
        return gw.confirmed_payment_method(setup_intent_id, customer_id)
    except (NotFound, CardError) as exc:
        raise PledgeError(_("The card was not confirmed. Please enter it again.")) from exc


def refresh(db: Session, gw: Gateway, user: User) -> Outcome:
    """Read the reader's subscription from Stripe again (after `confirmCardPayment`, or while
    another request creates it: then `processing`)."""
    pledge = current_pledge(db, user.id)
    creating = pledge is not None and not pledge.stripe_subscription_id
    if pledge is not None and creating and lease_held(db, subscription_lease(pledge.id)):
        db.commit()
        return Outcome("processing", pledge.id)
    db.commit()
    if pledge is None or not pledge.stripe_subscription_id:
        raise PledgeError(_("There is no pledge to check. Choose an amount to start one."), 409)
    return outcome(db, gw, pledge)


def _read(gw: Gateway, pledge: Pledge) -> tuple[Subscription, Invoice | None]:
    with as_pledge_errors():
        sub = gw.retrieve_subscription(pledge.stripe_subscription_id or "")
        invoice = None
        if sub is not None and sub.latest_invoice_id:
            invoice = gw.retrieve_invoice(sub.latest_invoice_id)
    if sub is None:
        raise unknown_to_stripe()
    return sub, invoice


def outcome(db: Session, gw: Gateway, pledge: Pledge) -> Outcome:
    """The pledge's subscription as Stripe has it now, recorded; what the page does next."""
    sub, invoice = _read(gw, pledge)
    stored = store(db, lambda session: records.apply_answer(session, sub, invoice)) or pledge
    return next_step(db, gw, stored, sub)


def next_step(db: Session, gw: Gateway, pledge: Pledge, sub: Subscription) -> Outcome:
    """What the page does next: nothing (active), authenticate, or show why the first payment
    failed. A subscription Stripe already ended is given up; an incomplete one is kept, for
    the reader to finish with another card or to start over (`/support` offers both)."""
    if sub.status in ("active", "trialing"):
        return Outcome("active", pledge.id)
    if sub.status == "incomplete" and sub.payment_intent_status == "requires_action":
        return Outcome("requires_action", pledge.id, sub.payment_intent_client_secret)
    if sub.status == "past_due":
        return Outcome("past_due", pledge.id)
    if sub.status in _OVER:
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
    canceled at Stripe (unless Stripe ended it already), and the pledge ends `abandoned`."""
    if pledge.stripe_subscription_id and (sub is None or sub.status not in _OVER):
        with as_pledge_errors():
            gw.cancel_now(pledge.stripe_subscription_id)
    store(db, lambda session: records.record_end(session, pledge.id, None, "abandoned"))


# -- the reader's choices on /support -----------------------------------------------------


def waits_for_the_bank(gw: Gateway, subscription_id: str) -> bool | None:
    """For the support page's words: whether the unfinished pledge's first payment waits for
    the bank's confirmation (True) or was refused (False); None when Stripe cannot say now.
    A read only: the caller has no transaction open."""
    try:
        sub = gw.retrieve_subscription(subscription_id)
    except GatewayError:
        return None
    if sub is None or sub.status != "incomplete":
        return None
    return sub.payment_intent_status == "requires_action"


def _unfinished(db: Session, user: User) -> Pledge:
    """The reader's pledge whose first payment never went through (the read is ended)."""
    pledge = open_pledge(db, user.id)
    held = pledge is not None and lease_held(db, subscription_lease(pledge.id))
    db.commit()
    if pledge is None or pledge.status not in UNFINISHED:
        raise PledgeError(_("You have no unfinished pledge."), 409)
    if held:
        raise busy()
    return pledge


def start_over(db: Session, gw: Gateway, user: User) -> Pledge:
    """Give up the reader's unfinished pledge, so that they choose an amount again."""
    pledge = _unfinished(db, user)
    give_up(db, gw, pledge)
    return pledge


def finish(db: Session, gw: Gateway, user: User, attempt: str) -> Outcome:
    """The next step of an unfinished pledge: the bank's confirmation again
    (`requires_action`), or another card (`needs_card`, with a SetupIntent)."""
    pledge = _unfinished(db, user)
    if not pledge.stripe_subscription_id:  # nothing subscribed yet: the card form does it
        raise PledgeError(_("Enter your card below to finish your pledge."), 409)
    sub, invoice = _read(gw, pledge)
    stored = store(db, lambda session: records.apply_answer(session, sub, invoice)) or pledge
    if sub.status in _OVER:
        give_up(db, gw, stored, sub)
        raise PledgeError(_("This pledge can no longer be finished, and nothing was charged. "
                            "Reload the page to start again."), 409)  # fmt: skip
    if sub.status != "incomplete" or sub.payment_intent_status == "requires_action":
        return next_step(db, gw, stored, sub)
    with as_pledge_errors():
        _id, secret = gw.create_setup_intent(
            pledge.stripe_customer_id or "",
            idempotency_key=f"patrons-pledge-{pledge.id}-finish-{attempt}",
        )
    return Outcome("needs_card", pledge.id, secret)


def finish_with_card(db: Session, gw: Gateway, user: User, setup_intent_id: str) -> Outcome:
    """Make the card the browser confirmed the default, and pay the open first invoice with
    it; then what the page does next (a second decline is a 402, and the pledge stays
    unfinished)."""
    pledge = _unfinished(db, user)
    if not pledge.stripe_subscription_id:
        raise PledgeError(_("Enter your card below to finish your pledge."), 409)
    name = subscription_lease(pledge.id)
    token = take_lease(db, name)
    if token is None:
        raise busy()
    customer_id = pledge.stripe_customer_id or ""
    with released_on_failure(db, name, token):
        with as_pledge_errors():
            card = gw.set_default_card(
                customer_id, confirmed_card(gw, setup_intent_id, customer_id)
            )
        _pay_first_invoice(gw, pledge.stripe_subscription_id)
        sub, invoice = _read(gw, pledge)

    def write(session: Session) -> Pledge | None:
        release_lease(session, name, token)
        stored = records.apply_answer(session, sub, invoice)
        if stored is not None:
            stored.card_brand, stored.card_last4 = card.brand[:32], card.last4
        return stored

    return next_step(db, gw, store(db, write) or pledge, sub)


def _pay_first_invoice(gw: Gateway, subscription_id: str) -> None:
    """Try the open invoice again; a refusal is read back from the subscription afterwards
    (its PaymentIntent says why, and next_step tells the reader)."""
    with as_pledge_errors(), suppress(CardError):
        gw.pay_open_invoices(subscription_id)
