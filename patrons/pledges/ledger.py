"""The ledger: what happened to the money of each payment, and its history.

A payment is one invoice of a pledge. Once paid, its state follows its charge as Stripe has it
(the amount refunded) and the charge's latest dispute:

    open dispute (needs_response, under_review, warning_*) → disputed   (rights suspended)
    dispute lost                                           → dispute_lost (rights gone)
    refunded in full                                       → refunded     (rights gone)
    dispute won (won, warning_closed, prevented)           → dispute_won  (rights back)
    refunded in part                                       → partially_refunded (rights kept)
    otherwise                                              → paid

What each state means for rights and votes is in entitlement.py; what the newsroom keeps is
`Payment.net` (amount − refunded − lost to a dispute). Every change of state or amounts appends
a `PaymentChange` with its source and Stripe event, so the ledger can be audited.

Amounts only grow (a refund is never undone) and a closed dispute never reopens, so an older
copy of a charge read by a slower worker cannot undo a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import inspect, or_, select
from sqlalchemy.orm import Session

from patrons.models import Payment, PaymentChange
from patrons.models.pledges import SETTLED_PAYMENT_STATUSES, PaymentStatus
from patrons.pledges.stripe_objects import Charge, Dispute

OPEN_DISPUTE = frozenset(
    {"warning_needs_response", "warning_under_review", "needs_response", "under_review"}
)
WON_DISPUTE = frozenset({"won", "warning_closed", "prevented"})
LOST_DISPUTE = frozenset({"lost"})


@dataclass(frozen=True)
class Snapshot:
    """What the history compares: a payment's state and amounts."""

    status: str
    amount: int
    amount_refunded: int
    amount_disputed: int

    @classmethod
    def of(cls, payment: Payment) -> Snapshot:
        return cls(payment.status, payment.amount, payment.amount_refunded or 0,
                   payment.amount_disputed or 0)  # fmt: skip


def settled_state(amount: int, refunded: int, dispute_status: str | None) -> PaymentStatus:
    """The state of a paid payment, from its refunds and its latest dispute."""
    if dispute_status in OPEN_DISPUTE:
        return PaymentStatus.DISPUTED
    if dispute_status in LOST_DISPUTE:
        return PaymentStatus.DISPUTE_LOST
    if refunded >= amount:
        return PaymentStatus.REFUNDED
    if dispute_status in WON_DISPUTE:
        return PaymentStatus.DISPUTE_WON
    if refunded > 0:
        return PaymentStatus.PARTIALLY_REFUNDED
    return PaymentStatus.PAID


def _closed(status: str | None) -> bool:
    return status in WON_DISPUTE or status in LOST_DISPUTE


def latest_dispute(disputes: list[Dispute]) -> Dispute | None:
    if not disputes:
        return None
    return max(disputes, key=lambda d: (d.created.timestamp() if d.created else 0, d.id))


def payment_of_charge(db: Session, charge: Charge) -> Payment | None:
    """The payment a charge paid: by charge id, PaymentIntent or invoice (None if not ours)."""
    clauses = [Payment.stripe_charge_id == charge.id]
    if charge.payment_intent_id:
        clauses.append(Payment.stripe_payment_intent_id == charge.payment_intent_id)
    if charge.invoice_id:
        clauses.append(Payment.stripe_invoice_id == charge.invoice_id)
    return db.scalar(select(Payment).where(or_(*clauses)).limit(1))


def apply_charge(payment: Payment, charge: Charge, disputes: list[Dispute]) -> None:
    """Bring a paid payment's refunds and dispute in line with its charge (not flushed)."""
    payment.stripe_charge_id = payment.stripe_charge_id or charge.id
    if payment.status not in SETTLED_PAYMENT_STATUSES:
        return  # the invoice is not paid (yet): its charge moved no money to keep or return
    payment.amount_refunded = min(
        max(payment.amount_refunded or 0, charge.amount_refunded), payment.amount
    )
    dispute = latest_dispute(disputes)
    reopened = _closed(payment.dispute_status) and not _closed(dispute.status if dispute else None)
    if dispute is not None and not reopened:
        payment.dispute_status = dispute.status
        payment.dispute_amount = min(dispute.amount, payment.amount)
    lost = payment.dispute_status in LOST_DISPUTE
    payment.amount_disputed = payment.dispute_amount if lost else 0
    payment.status = settled_state(payment.amount, payment.amount_refunded, payment.dispute_status)


def record_change(
    db: Session,
    payment: Payment,
    before: Snapshot | None,
    *,
    now: datetime,
    source: str,
    event_id: str | None,
) -> bool:
    """Append the payment's change since `before` (None: it is new) to its history; True if
    anything changed."""
    after = Snapshot.of(payment)
    if before == after:
        return False
    if not inspect(payment).has_identity:
        db.flush()  # a payment created just now: its id first
    db.add(
        PaymentChange(
            payment_id=payment.id,
            pledge_id=payment.pledge_id,
            from_status=before.status if before is not None else None,
            to_status=after.status,
            amount=after.amount,
            amount_refunded=after.amount_refunded,
            amount_disputed=after.amount_disputed,
            changed_at=now,
            source=source,
            stripe_event_id=event_id,
        )
    )
    return True


def taken_back(before: Snapshot | None, payment: Payment) -> bool:
    """Whether this change took the payment's money back (a full refund, a dispute opened
    or lost), for the log and the staff's attention."""
    gone = {PaymentStatus.REFUNDED, PaymentStatus.DISPUTED, PaymentStatus.DISPUTE_LOST}
    return payment.status in gone and (before is None or before.status != payment.status)
