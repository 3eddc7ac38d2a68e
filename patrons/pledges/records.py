"""Stripe's state → our rows. Used by the webhook, by `sync-stripe` and by the pledge pages
after their own Stripe calls (`apply_answer`, `record_end`), so every path writes a pledge the
same way.

Nothing here calls Stripe or commits: the caller fetched the state first (no transaction
is held open across a Stripe call) and commits once, together with the event row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import inspect, or_, select, update
from sqlalchemy.orm import Session

from patrons import mail
from patrons.core import clock, signals
from patrons.core.money import money
from patrons.models import BillingCustomer, Payment, Pledge, PledgeStatusChange, User
from patrons.models.pledges import ENDED_STATUSES
from patrons.pledges.stripe_objects import Charge, Invoice, Subscription, parse_plan_id

# Payment statuses a later, older-looking snapshot must not undo.
_SETTLED = frozenset({"paid", "refunded", "partially_refunded", "disputed"})


class TamperedPlan(ValueError):
    """A subscription whose plan is not ours or whose amount differs from its plan id."""


@dataclass
class InvoiceEffect:
    payment: Payment
    newly_paid: bool = False
    newly_failed: bool = False


def checked_plan(sub: Subscription) -> tuple[str, int]:
    """(currency, amount) of the subscription, refused unless plan id, amount and currency
    all agree: the plan id is ours, so a price edited elsewhere cannot change a pledge."""
    parsed = parse_plan_id(sub.plan_id)
    if parsed is None or parsed != (sub.currency, sub.amount):
        raise TamperedPlan(
            f"subscription {sub.id}: plan {sub.plan_id!r} with {sub.amount} {sub.currency}"
        )
    return parsed


def customer_by_stripe_id(db: Session, stripe_customer_id: str | None) -> BillingCustomer | None:
    if not stripe_customer_id:
        return None
    return db.scalar(
        select(BillingCustomer).where(BillingCustomer.stripe_customer_id == stripe_customer_id)
    )


def find_pledge(db: Session, sub: Subscription) -> Pledge | None:
    """The pledge a subscription mirrors: by subscription id, else by the pledge id we put in
    its metadata (the webhook may arrive before the create call's answer was stored)."""
    pledge = db.scalar(select(Pledge).where(Pledge.stripe_subscription_id == sub.id))
    if pledge is not None:
        return pledge
    local = sub.metadata.get("patrons_pledge", "")
    if local.isdigit():
        candidate = db.get(Pledge, int(local))
        if (
            candidate is not None
            and candidate.stripe_subscription_id is None
            and candidate.stripe_customer_id == sub.customer_id
        ):
            return candidate
    return None


def apply_subscription(
    db: Session,
    sub: Subscription,
    *,
    now: datetime,
    source: str,
    event_id: str | None = None,
) -> Pledge | None:
    """Bring the pledge in line with the subscription as Stripe has it now.

    Returns None when the subscription's customer is unknown here (the caller answers so
    that Stripe retries, and `sync-stripe` picks it up later). A subscription made outside
    the app for a known customer becomes a pledge of that reader.
    """
    currency, amount = checked_plan(sub)
    pledge = find_pledge(db, sub)
    created = pledge is None
    if pledge is None:
        customer = customer_by_stripe_id(db, sub.customer_id)
        if customer is None:
            return None
        pledge = Pledge(
            user_id=_free_for_new_pledge(db, customer.user_id, sub),
            amount=amount,
            currency=currency,
            status="pending",
            stripe_customer_id=sub.customer_id,
            created_at=sub.created or now,
        )
        db.add(pledge)
    amount_changed = not created and pledge.amount != amount
    pledge.stripe_subscription_id = sub.id
    pledge.stripe_customer_id = sub.customer_id
    pledge.amount, pledge.currency, pledge.plan_id = amount, currency, sub.plan_id
    pledge.current_period_end = sub.current_period_end
    pledge.cancel_at_period_end = sub.cancel_at_period_end
    if sub.status in ("canceled", "incomplete_expired"):
        pledge.ended_at = pledge.ended_at or sub.ended_at or sub.canceled_at or now
    if amount_changed and pledge.status == sub.status:
        # an amount change within a status: a history row of its own (from = to), so that
        # MRR month by month sees the new amount from the day it applies
        db.add(
            PledgeStatusChange(
                pledge_id=pledge.id, from_status=pledge.status, to_status=pledge.status,
                changed_at=now, stripe_event_id=event_id, source=source, amount=amount,
            )
        )  # fmt: skip
    set_status(db, pledge, sub.status, now=now, source=source, event_id=event_id)
    return pledge


def _free_for_new_pledge(db: Session, user_id: int | None, sub: Subscription) -> int | None:
    """The reader, unless they already have an open pledge (then the stray subscription is
    recorded without a reader, for staff to see, rather than breaking the one-open rule)."""
    if user_id is None or sub.status in ("canceled", "incomplete_expired"):
        return user_id
    open_pledge = db.scalar(
        select(Pledge.id).where(
            Pledge.user_id == user_id,
            Pledge.status.not_in(("canceled", "incomplete_expired", "abandoned")),
        )
    )
    return None if open_pledge is not None else user_id


def set_status(
    db: Session,
    pledge: Pledge,
    status: str,
    *,
    now: datetime,
    source: str,
    event_id: str | None = None,
) -> None:
    """Change the status and append the change to the pledge's history."""
    unsaved = not inspect(pledge).has_identity  # a pledge created just now: no id yet
    if pledge.status == status and not unsaved:
        pledge.updated_at = now
        return
    if unsaved:
        db.flush()
    db.add(
        PledgeStatusChange(
            pledge_id=pledge.id,
            from_status=None if pledge.status == status else pledge.status,
            to_status=status,
            changed_at=now,
            stripe_event_id=event_id,
            source=source,
            amount=pledge.amount,
        )
    )
    pledge.status = status
    pledge.updated_at = now


def apply_invoice(db: Session, pledge: Pledge, inv: Invoice, *, now: datetime) -> InvoiceEffect:
    """Record the invoice as a payment of the pledge, keyed by the invoice id; a payment once
    paid is never marked failed or open again by an older snapshot."""
    payment = db.scalar(select(Payment).where(Payment.stripe_invoice_id == inv.id))
    if payment is None:
        payment = Payment(
            pledge_id=pledge.id,
            stripe_invoice_id=inv.id,
            amount=max(inv.amount_due, inv.amount_paid, 1),
            currency=inv.currency or pledge.currency,
            status="open",
            amount_refunded=0,
            failure_notified_attempt=0,
            created_at=inv.created or now,
        )
        db.add(payment)
    payment.stripe_payment_intent_id = inv.payment_intent_id or payment.stripe_payment_intent_id
    payment.stripe_charge_id = inv.charge_id or payment.stripe_charge_id
    effect = InvoiceEffect(payment)
    if inv.status == "paid" and inv.amount_paid > 0:
        if payment.status not in _SETTLED:
            payment.status = "paid"
            payment.amount = inv.amount_paid
            payment.paid_at = inv.paid_at or now
            effect.newly_paid = True
            if pledge.started_at is None:
                pledge.started_at = payment.paid_at
    elif payment.status not in _SETTLED and inv.attempt_count > 0 and inv.status == "open":
        payment.status = "failed"
        if inv.attempt_count > payment.failure_notified_attempt:
            payment.failure_notified_attempt = inv.attempt_count
            effect.newly_failed = True
    elif payment.status not in _SETTLED and inv.status in ("void", "uncollectible"):
        payment.status = inv.status
    db.flush()
    return effect


def apply_charge(db: Session, charge: Charge, *, disputed: bool = False) -> Payment | None:
    """A refund or a dispute on the charge of one of our payments (None if not ours)."""
    clauses = [Payment.stripe_charge_id == charge.id]
    if charge.payment_intent_id:
        clauses.append(Payment.stripe_payment_intent_id == charge.payment_intent_id)
    if charge.invoice_id:
        clauses.append(Payment.stripe_invoice_id == charge.invoice_id)
    payment = db.scalar(select(Payment).where(or_(*clauses)))
    if payment is None:
        return None
    payment.stripe_charge_id = payment.stripe_charge_id or charge.id
    payment.amount_refunded = max(
        payment.amount_refunded, min(charge.amount_refunded, payment.amount)
    )
    if disputed:
        payment.status = "disputed"
    elif payment.amount_refunded >= payment.amount:
        payment.status = "refunded"
    elif payment.amount_refunded > 0 and payment.status != "disputed":
        payment.status = "partially_refunded"
    if payment.status in ("refunded", "disputed"):  # money taken back: so are the votes
        pledge = db.get(Pledge, payment.pledge_id)
        if pledge is not None and pledge.user_id is not None:
            signals.payment_taken_back.send(db, user_id=pledge.user_id, now=clock.now())
    return payment


def send_invoice_mail(db: Session, pledge: Pledge, effect: InvoiceEffect, *, now: datetime) -> None:
    """Thanks on the first payment, a receipt for each, a notice when a payment fails; each
    at most once per invoice (and per attempt for failures)."""
    user = db.get(User, pledge.user_id) if pledge.user_id else None
    if user is None:
        return
    payment = effect.payment
    if effect.newly_paid and payment.receipt_sent_at is None:
        # the first is the one no other paid invoice of the pledge came before (not "paid at
        # the pledge's start": two invoices can be paid within one second)
        earlier = select(Payment.id).where(
            Payment.pledge_id == pledge.id, Payment.id != payment.id, Payment.paid_at.is_not(None)
        )
        first = db.scalar(earlier.limit(1)) is None
        mail.queue_message(
            db,
            user.email,
            "pledge_thanks" if first else "pledge_receipt",
            _("Thank you for becoming a patron") if first else _("Your receipt"),
            pledge=pledge,
            payment=payment,
            amount=money(payment.amount, payment.currency),
        )
        payment.receipt_sent_at = now
    if effect.newly_failed:
        mail.queue_message(
            db,
            user.email,
            "pledge_payment_failed",
            _("Your monthly pledge could not be charged"),
            pledge=pledge,
            payment=payment,
            amount=money(payment.amount, payment.currency),
        )


def apply_answer(db: Session, sub: Subscription, invoice: Invoice | None) -> Pledge | None:
    """Record what Stripe answered a reader's own call (the subscription, and its invoice)
    as the webhook would. The pledge's row is locked first by a no-op UPDATE (a row lock on
    PostgreSQL, the write lock on SQLite), so this and a webhook about the same pledge take
    turns and mail a receipt once."""
    now = clock.now()
    clauses = [Pledge.stripe_subscription_id == sub.id]
    local = sub.metadata.get("patrons_pledge", "")
    if local.isdigit() and len(local) < 10:
        clauses.append(Pledge.id == int(local))
    db.execute(update(Pledge).where(or_(*clauses)).values(updated_at=Pledge.updated_at))
    pledge = apply_subscription(db, sub, now=now, source="reader")
    if pledge is not None and invoice is not None and invoice.subscription_id == sub.id:
        effect = apply_invoice(db, pledge, invoice, now=now)
        send_invoice_mail(db, pledge, effect, now=now)
    return pledge


def record_end(
    db: Session, pledge_id: int, sub: Subscription | None, status: str, reason: str = ""
) -> None:
    """Write down that the reader's pledge ended: Stripe's last word on it when there is
    one, else `status`; the end time, and the reason unless one was given already."""
    stored = db.get(Pledge, pledge_id, populate_existing=True)
    if stored is None:
        return
    if sub is not None:
        apply_subscription(db, sub, now=clock.now(), source="reader")
    if stored.status not in ENDED_STATUSES:
        set_status(db, stored, status, now=clock.now(), source="reader")
    stored.ended_at = stored.ended_at or clock.now()
    stored.cancel_reason = stored.cancel_reason or reason or None
