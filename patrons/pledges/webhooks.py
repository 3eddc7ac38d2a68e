"""`POST /stripe/webhook`: Stripe's events, the source of truth for pledges and payments.

The order of the checks is the defence (docs/security.md, section 5: threats 1-9 and 15):
1. a body over 64 KiB → 413, before anything reads it;
2. the signature on the raw bytes (`Gateway.parse_event`, 300 s tolerance) → 400 on failure;
3. an event of the other mode (test vs live) → 400;
4. a type this app does not handle → 200, nothing written.

An event id already stored is answered at once (a redelivery costs no call to Stripe). Then,
for a subscription or invoice event, the subscription is re-read from Stripe first, with
no transaction open (events come in any order; what Stripe says now is what counts; if Stripe
no longer knows the subscription, the event's own snapshot is used). One transaction follows:
the event id goes into `stripe_events` with INSERT ... ON CONFLICT DO NOTHING (a duplicate
inserts nothing: commit, 200), and the effects are written beside it, so a failure rolls back
both and Stripe's retry finds a clean slate. Effects are keyed by Stripe's own ids (subscription,
invoice, charge), so two different events about one change still make one row.

Answers: 200 done (or duplicate, or nothing to do); 400 refused for good (bad signature, wrong
mode, a plan that is not ours); 503 not yet (the customer is unknown here: Stripe retries, and
`sync-stripe` catches up); 500 our failure (rolled back; Stripe retries). Bad input never
gets a 5xx. No session cookie is ever set on these responses, and CSRF does not apply: the
signature is the authentication (this is the only CSRF-exempt route).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar, cast

from flask import Blueprint, Response, g, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from patrons import mail
from patrons.core import clock
from patrons.core.db import insert_or_ignore
from patrons.core.db import session as db
from patrons.core.extensions import csrf
from patrons.core.money import money
from patrons.models import Pledge, StripeEvent, User
from patrons.models.pledges import ENDED_STATUSES
from patrons.pledges import records
from patrons.pledges.billing import gateway
from patrons.pledges.gateway import Gateway
from patrons.pledges.stripe_objects import (
    Charge,
    Event,
    GatewayError,
    Invoice,
    SignatureError,
    Subscription,
)

bp = Blueprint("stripe", __name__)
log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 64 * 1024  # Stripe's events are a few KiB; anything larger is not one

SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)
# invoice.paid and invoice.payment_succeeded state the same fact; real Stripe sends both
INVOICE_EVENTS = frozenset({"invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"})
CHARGE_EVENTS = frozenset({"charge.refunded", "charge.dispute.created"})
HANDLED_EVENTS = SUBSCRIPTION_EVENTS | INVOICE_EVENTS | CHARGE_EVENTS

# A transaction that lost a race on a unique key (two events about one new pledge or
# payment at once), or a PostgreSQL serialization failure or deadlock, is simply run again:
# the winner's rows are then visible and the loser updates them instead of inserting.
TRANSACTION_ATTEMPTS = 3
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


class UnknownCustomer(Exception):
    """The subscription's customer has no row here (yet): answer so that Stripe retries."""


@dataclass(frozen=True)
class Outcome:
    status: int
    text: str


@dataclass
class _Fetched:
    """What was read from Stripe before the transaction."""

    subscription: Subscription | None = None
    from_snapshot: bool = False  # Stripe no longer knows it: the event's copy is used
    invoice: Invoice | None = None
    charge: Charge | None = None
    disputed: bool = False


def _plain(status: int, text: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain",
                    headers={"Cache-Control": "no-store"})  # fmt: skip


_View = TypeVar("_View", bound=Callable[..., ResponseReturnValue])


def _signed_by_stripe(view: _View) -> _View:
    """Exempt from CSRF, because Stripe's signature is this route's authentication (Flask-WTF's
    `csrf.exempt`, typed: Flask-WTF ships no type information)."""
    return cast(_View, csrf.exempt(view))


@bp.post("/stripe/webhook")
@_signed_by_stripe
def webhook() -> Response:
    g.public_page = True  # no session cookie is read into or written onto this response
    if (request.content_length or 0) > MAX_EVENT_BYTES:
        return _plain(413, "Too large.")
    request.max_content_length = MAX_EVENT_BYTES  # also a cap on a body without a length
    try:
        payload = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _plain(413, "Too large.")
    gw = gateway()
    if gw is None:
        log.warning("stripe webhook: Stripe is not configured; event refused")
        return _plain(400, "Not configured.")
    try:
        event = gw.parse_event(payload, request.headers.get("Stripe-Signature"))
    except SignatureError as exc:
        log.info("stripe webhook: refused (%s)", exc)
        return _plain(400, "Invalid signature.")
    except RecursionError:  # correctly signed, but nested too deeply for json.loads
        log.warning("stripe webhook: refused a signed body nested too deeply to read")
        return _plain(400, "Unreadable event.")
    if event.livemode != gw.livemode:
        log.warning("stripe webhook: event %s is livemode=%s, this deployment is livemode=%s",
                    event.id, event.livemode, gw.livemode)  # fmt: skip
        return _plain(400, "Environment mismatch.")
    if event.type not in HANDLED_EVENTS:
        return _plain(200, "Ignored.")
    outcome = handle_event(db, gw, event)
    if outcome.status == 200:
        mail.send_soon(db)  # what this event queued, if anything, after the commit
    return _plain(outcome.status, outcome.text)


def handle_event(session: Session, gw: Gateway, event: Event) -> Outcome:
    """Fetch, then record the event and its effects in one transaction (committed here)."""
    if _already_recorded(session, event.id):
        return Outcome(200, "Duplicate.")  # a retry or a replay costs no call to Stripe
    try:
        fetched = _fetch(gw, event)
    except GatewayError as exc:
        log.warning("stripe webhook: event %s: Stripe did not answer (%s); will be retried",
                    event.id, exc.message)  # fmt: skip
        return Outcome(503, "Stripe unavailable; retry.")
    except (KeyError, TypeError, ValueError) as exc:  # a signed event we cannot read
        log.warning("stripe webhook: event %s (%s) unreadable: %r", event.id, event.type, exc)
        return Outcome(400, "Unreadable event.")
    now = clock.now()
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            outcome = _record(session, event, fetched, now)
            session.commit()
            return outcome
        except UnknownCustomer as exc:
            session.rollback()
            log.warning("stripe webhook: event %s: unknown customer %s; nothing stored, "
                        "Stripe will retry", event.id, exc)  # fmt: skip
            return Outcome(503, "Unknown customer; retry later.")
        except records.TamperedPlan as exc:
            session.rollback()
            log.warning("stripe webhook: event %s refused: %s", event.id, exc)
            return Outcome(400, "Plan refused.")
        except (IntegrityError, DBAPIError) as exc:
            session.rollback()
            retryable = isinstance(exc, IntegrityError) or (
                getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES
            )
            if not retryable or attempt == TRANSACTION_ATTEMPTS:
                log.exception("stripe webhook: event %s failed; rolled back", event.id)
                return Outcome(500, "Internal error; retry.")
            log.info("stripe webhook: event %s lost a race (%s); trying again", event.id,
                     type(exc).__name__)  # fmt: skip
        except Exception:
            session.rollback()
            log.exception("stripe webhook: event %s failed; rolled back", event.id)
            return Outcome(500, "Internal error; retry.")
    raise AssertionError("unreachable")  # pragma: no cover


# -- before the transaction: what Stripe says ------------------------------------------------


def _already_recorded(session: Session, event_id: str) -> bool:
    """A cheap early answer for a redelivery; the unique insert below stays the real guard."""
    try:
        return session.scalar(select(StripeEvent.id).where(StripeEvent.id == event_id)) is not None
    finally:
        session.rollback()  # no transaction stays open across the call to Stripe


def _fetch(gw: Gateway, event: Event) -> _Fetched:
    obj = event.object
    fetched = _Fetched()
    if event.type in SUBSCRIPTION_EVENTS:
        fetched.subscription = gw.retrieve_subscription(obj["id"])
        if fetched.subscription is None:
            fetched.subscription, fetched.from_snapshot = Subscription.from_dict(obj), True
    elif event.type in INVOICE_EVENTS:
        fetched.invoice = Invoice.from_dict(obj)
        if fetched.invoice.subscription_id:
            fetched.subscription = gw.retrieve_subscription(fetched.invoice.subscription_id)
    elif event.type == "charge.refunded":
        fetched.charge = Charge.from_dict(obj)
    elif event.type == "charge.dispute.created":
        # a dispute names its charge (an id, or the expanded object) and its PaymentIntent
        charge = obj.get("charge")
        data = dict(charge) if isinstance(charge, dict) else {"id": charge}
        if isinstance(data.get("id"), str) and data["id"]:
            data["payment_intent"] = data.get("payment_intent") or obj.get("payment_intent")
            fetched.charge, fetched.disputed = Charge.from_dict(data), True
    if fetched.charge and not fetched.charge.invoice_id and fetched.charge.payment_intent_id:
        invoice_id = gw.invoice_id_for_payment_intent(fetched.charge.payment_intent_id)
        fetched.charge = replace(fetched.charge, invoice_id=invoice_id)
    return fetched


# -- the transaction ---------------------------------------------------------------------------


def _insert_event(session: Session, event: Event, now: datetime) -> bool:
    """True if this event id is new; False if it was stored before (a duplicate)."""
    values = {"id": event.id, "type": event.type, "created": event.created, "received_at": now}
    statement = insert_or_ignore(session, StripeEvent, values, [StripeEvent.id])
    return session.execute(statement.returning(StripeEvent.id)).first() is not None


def _record(session: Session, event: Event, fetched: _Fetched, now: datetime) -> Outcome:
    if not _insert_event(session, event, now):
        return Outcome(200, "Duplicate.")
    if event.type in SUBSCRIPTION_EVENTS or event.type in INVOICE_EVENTS:
        return Outcome(200, _record_subscription_and_invoice(session, event, fetched, now))
    return Outcome(200, _record_charge(session, event, fetched))


def _record_subscription_and_invoice(
    session: Session, event: Event, fetched: _Fetched, now: datetime
) -> str:
    sub, invoice = fetched.subscription, fetched.invoice
    if sub is None:
        if invoice is None or invoice.subscription_id is None:
            return "Not a subscription's invoice."
        # Stripe no longer knows the subscription: record the invoice on the pledge we have
        pledge = _lock_pledges(session, invoice.subscription_id, None)
        if pledge is None:
            log.warning("stripe webhook: event %s: invoice %s of unknown subscription %s",
                        event.id, invoice.id, invoice.subscription_id)  # fmt: skip
            return "Unknown subscription."
    else:
        pledge = _lock_pledges(session, sub.id, sub.metadata.get("patrons_pledge"))
        ended = pledge is not None and pledge.status in ENDED_STATUSES
        if fetched.from_snapshot and ended and sub.status not in ENDED_STATUSES:
            return "Stale snapshot of an ended pledge."  # an old copy must not reopen it
        before = pledge.status if pledge is not None else None
        applied = records.apply_subscription(
            session, sub, now=now, source="webhook", event_id=event.id
        )
        if applied is None:
            raise UnknownCustomer(sub.customer_id or "(none)")
        pledge = applied
        queue_ended_mail(session, pledge, before)
    if invoice is not None:
        effect = records.apply_invoice(session, pledge, invoice, now=now)
        records.send_invoice_mail(session, pledge, effect, now=now)
    return "Recorded."


def _lock_pledges(session: Session, subscription_id: str, local_id: str | None) -> Pledge | None:
    """Lock the pledge rows this subscription may mirror (PostgreSQL: FOR UPDATE; SQLite
    already holds the database's write lock since the event insert), so concurrent events
    about one pledge take turns; return the one `records.find_pledge` will pick, if any."""
    clauses = [Pledge.stripe_subscription_id == subscription_id]
    if local_id and local_id.isdigit() and len(local_id) < 18:
        clauses.append(Pledge.id == int(local_id))
    rows = session.scalars(
        select(Pledge)
        .where(or_(*clauses))
        .order_by(Pledge.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    by_subscription = [p for p in rows if p.stripe_subscription_id == subscription_id]
    waiting = [p for p in rows if p.stripe_subscription_id is None]
    return next(iter(by_subscription or waiting), None)


def queue_ended_mail(session: Session, pledge: Pledge, before: str | None) -> None:
    """Tell the reader their pledge has ended, on the one change into `canceled`."""
    if pledge.status != "canceled" or before == "canceled" or pledge.user_id is None:
        return
    user = session.get(User, pledge.user_id)
    if user is None:
        return
    mail.queue_message(
        session,
        user.email,
        "pledge_ended",
        _("Your pledge has ended"),
        pledge=pledge,
        amount=money(pledge.amount, pledge.currency),
    )


def _record_charge(session: Session, event: Event, fetched: _Fetched) -> str:
    if fetched.charge is None:
        return "No charge named."
    payment = records.apply_charge(session, fetched.charge, disputed=fetched.disputed)
    if payment is None:
        log.info("stripe webhook: event %s: charge %s is not one of our payments",
                 event.id, fetched.charge.id)  # fmt: skip
        return "Not our charge."
    return "Recorded."
