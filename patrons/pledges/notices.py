"""The mails a change of a pledge brings: thanks for the first payment, a receipt for each
later one, a notice when a renewal fails (saying until when the patron's rights last), and a
note when the pledge ends. Each at most once: per invoice, per failed attempt, per end.

A first payment refused in the browser gets no mail: the page said so at once, and the
reader may well succeed with another card a minute later. Only a renewal's refusal is mailed
about: the subscription is then `past_due` (a refused first payment leaves it `incomplete`),
and the invoice is still unpaid as Stripe has it now (the effect comes from the re-read
invoice and subscription: applying.py), so no mail goes for a payment that has succeeded
since, nor for a pledge that has ended meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons import mail
from patrons.core.money import money
from patrons.models import Payment, Pledge, User
from patrons.models.pledges import PledgeStatus
from patrons.pledges.entitlement import rights_until


@dataclass
class InvoiceEffect:
    """What recording an invoice changed: a payment newly paid, or newly refused."""

    payment: Payment
    newly_paid: bool = False
    newly_failed: bool = False
    changed: bool = False  # anything in the ledger's history


def _earlier_paid(db: Session, pledge: Pledge, payment: Payment) -> bool:
    """Whether another payment of the pledge was paid (so this one is not the first)."""
    earlier = select(Payment.id).where(
        Payment.pledge_id == pledge.id, Payment.id != payment.id, Payment.paid_at.is_not(None)
    )
    return db.scalar(earlier.limit(1)) is not None


def send_invoice_mail(
    db: Session, pledge: Pledge, effect: InvoiceEffect, *, now: datetime, grace_days: int
) -> None:
    user = db.get(User, pledge.user_id) if pledge.user_id else None
    if user is None:
        return
    payment = effect.payment
    amount = money(payment.amount, payment.currency)
    if effect.newly_paid and payment.receipt_sent_at is None:
        first = not _earlier_paid(db, pledge, payment)
        mail.queue_message(
            db,
            user.email,
            "pledge_thanks" if first else "pledge_receipt",
            _("Thank you for becoming a patron") if first else _("Your receipt"),
            pledge=pledge,
            payment=payment,
            amount=amount,
        )
        payment.receipt_sent_at = now
    if effect.newly_failed and pledge.status == PledgeStatus.PAST_DUE:
        mail.queue_message(
            db,
            user.email,
            "pledge_payment_failed",
            _("Your monthly pledge could not be charged"),
            pledge=pledge,
            payment=payment,
            amount=amount,
            rights_until=rights_until(db, pledge, grace_days),
        )


def queue_ended_mail(db: Session, pledge: Pledge, before: str | None) -> None:
    """Tell the reader their pledge has ended, on the one change into `canceled`."""
    if pledge.status != PledgeStatus.CANCELED or before == PledgeStatus.CANCELED:
        return
    user = db.get(User, pledge.user_id) if pledge.user_id else None
    if user is None:
        return
    mail.queue_message(
        db,
        user.email,
        "pledge_ended",
        _("Your pledge has ended"),
        pledge=pledge,
        amount=money(pledge.amount, pledge.currency),
    )
