"""Stripe's state → our rows, the one way every path writes a pledge: the webhook's events and
`sync-stripe` (applying.py), the pledge pages after their own Stripe calls (`apply_answer`,
`record_end`). Nothing here calls Stripe or commits: the caller read Stripe first (no
transaction is held open across a Stripe call) and commits once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import inspect, or_, select, update
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import BillingCustomer, Payment, Pledge, PledgeStatusChange
from patrons.models.pledges import (
    ENDED_STATUSES,
    SETTLED_PAYMENT_STATUSES,
    PaymentStatus,
    PledgeStatus,
)
from patrons.pledges import ledger, notices
from patrons.pledges.notices import InvoiceEffect
from patrons.pledges.stripe_objects import Invoice, Subscription, parse_plan_id


class TamperedPlan(ValueError):
    """A subscription whose plan is not ours or whose amount differs from its plan id."""


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
            # an ended subscription is inserted ended: as `pending` it would count as the
            # reader's open pledge for a moment and break the one-open rule
            status=sub.status if sub.status in ENDED_STATUSES else PledgeStatus.PENDING,
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
    given_up = pledge.status == PledgeStatus.ABANDONED and sub.status in ENDED_STATUSES
    if not given_up:  # the reader's "Start over" stays the reason it ended
        set_status(db, pledge, sub.status, now=now, source=source, event_id=event_id)
    _give_back_reader(db, sub.customer_id)
    return pledge


def _give_back_reader(db: Session, customer_id: str | None) -> None:
    """A pledge recorded without its reader (they had another open pledge then) gets them
    back once it has ended, or once that other one has, whatever order the events came in."""
    customer = customer_by_stripe_id(db, customer_id)
    if customer is None or customer.user_id is None:
        return
    db.flush()
    strays = db.scalars(
        select(Pledge)
        .where(Pledge.stripe_customer_id == customer_id, Pledge.user_id.is_(None))
        .order_by(Pledge.id.desc())
    ).all()
    for stray in (p for p in strays if not p.is_open):
        stray.user_id = customer.user_id
    still_open = select(Pledge.id).where(
        Pledge.user_id == customer.user_id, Pledge.status.not_in(ENDED_STATUSES)
    )
    waiting = next((p for p in strays if p.is_open), None)
    if waiting is not None and db.scalar(still_open.limit(1)) is None:
        waiting.user_id = customer.user_id


def _free_for_new_pledge(db: Session, user_id: int | None, sub: Subscription) -> int | None:
    """The reader, unless they already have an open pledge (then the stray subscription is
    recorded without a reader, for staff to see, rather than breaking the one-open rule)."""
    if user_id is None or sub.status in ENDED_STATUSES:
        return user_id
    open_pledge = db.scalar(
        select(Pledge.id).where(
            Pledge.user_id == user_id,
            Pledge.status.not_in(ENDED_STATUSES),
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
    """Record the invoice as a payment of the pledge, keyed by the invoice id. A payment once
    paid is never marked unpaid again (Stripe's invoices only move forward; a slower reader's
    older copy must not undo a newer one); what happened to the money afterwards is the
    ledger's (ledger.apply_charge)."""
    payment = db.scalar(select(Payment).where(Payment.stripe_invoice_id == inv.id))
    if payment is None:
        payment = Payment(
            pledge_id=pledge.id,
            stripe_invoice_id=inv.id,
            amount=max(inv.amount_due, inv.amount_paid, 1),
            currency=inv.currency or pledge.currency,
            status=PaymentStatus.OPEN,
            amount_refunded=0,
            amount_disputed=0,
            dispute_amount=0,
            failure_notified_attempt=0,
            created_at=inv.created or now,
        )
        db.add(payment)
    payment.stripe_payment_intent_id = inv.payment_intent_id or payment.stripe_payment_intent_id
    payment.stripe_charge_id = inv.charge_id or payment.stripe_charge_id
    payment.billing_reason = inv.billing_reason or payment.billing_reason
    effect = InvoiceEffect(payment)
    if payment.status in SETTLED_PAYMENT_STATUSES:
        pass
    elif inv.status == "paid" and inv.amount_paid > 0:
        _paid(pledge, payment, inv, now)
        effect.newly_paid = True
    elif inv.status == "open" and inv.attempt_count > 0:
        payment.status = PaymentStatus.FAILED
        payment.amount = max(inv.amount_due, 1)
        payment.first_failed_at = payment.first_failed_at or inv.finalized_at or inv.created or now
        if inv.attempt_count > payment.failure_notified_attempt:
            payment.failure_notified_attempt = inv.attempt_count
            effect.newly_failed = True
    elif inv.status in ("void", "uncollectible"):
        payment.status = inv.status
    db.flush()
    return effect


def _paid(pledge: Pledge, payment: Payment, inv: Invoice, now: datetime) -> None:
    payment.status = PaymentStatus.PAID
    payment.amount = inv.amount_paid
    payment.paid_at = inv.paid_at or now
    payment.first_failed_at = None  # only an unpaid invoice's failure counts (grace)
    if pledge.started_at is None or payment.paid_at < pledge.started_at:
        pledge.started_at = payment.paid_at  # the first payment, whatever order events came in


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
        # the page reports a refused card at once: no failure mail
        record_invoice(db, pledge, invoice, now=now, source="reader", failure_mail=False)
    return pledge


def record_invoice(
    db: Session,
    pledge: Pledge,
    invoice: Invoice,
    *,
    now: datetime,
    source: str,
    event_id: str | None = None,
    mail: bool = True,
    failure_mail: bool = True,
    grace_days: int = 7,
) -> InvoiceEffect:
    """`apply_invoice`, its line in the ledger's history, and its mails (`mail=False` for
    sync's repairs; `failure_mail=False` where the reader sees the refusal on the page)."""
    payment = db.scalar(select(Payment).where(Payment.stripe_invoice_id == invoice.id))
    before = ledger.Snapshot.of(payment) if payment is not None else None
    effect = apply_invoice(db, pledge, invoice, now=now)
    effect.changed = ledger.record_change(
        db, effect.payment, before, now=now, source=source, event_id=event_id
    )
    effect.newly_failed = effect.newly_failed and failure_mail
    if mail:
        notices.send_invoice_mail(db, pledge, effect, now=now, grace_days=grace_days)
    return effect


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
