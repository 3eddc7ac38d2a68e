"""`flask --app patrons sync-stripe`: bring every pledge in line with Stripe, after missed
webhooks (docs/security.md, threat 7: an endpoint down for days, an event never generated).

Every subscription of the account is listed (ended ones too) and written through the same
`records` functions as the webhook, with its invoices; a row changes only where it differs
from Stripe, and each change is reported in words. A subscription whose customer is unknown
here, or whose plan is not ours, is reported and skipped: one bad subscription never stops
the rest. All Stripe calls are made first; the writes follow in one transaction.

It repairs the record and mails nobody: a receipt weeks late, or one for every old invoice
the first time it runs on an account, would only confuse readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.core.money import money
from patrons.models import Payment, Pledge
from patrons.pledges import records
from patrons.pledges.gateway import Gateway
from patrons.pledges.stripe_objects import Invoice, Subscription

# Pledge fields whose change is worth a line in the report
_PLEDGE_FIELDS = ("status", "amount", "currency", "cancel_at_period_end", "current_period_end")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _Remote:
    subscription: Subscription
    invoices: list[Invoice]


def _describe(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return "none" if value is None else str(value)


def _pledge_state(pledge: Pledge | None) -> dict[str, object]:
    if pledge is None:
        return {}
    return {name: getattr(pledge, name) for name in _PLEDGE_FIELDS}


def _payment_state(db: Session, invoice_id: str) -> str | None:
    return db.scalar(select(Payment.status).where(Payment.stripe_invoice_id == invoice_id))


def fetch(gw: Gateway) -> list[_Remote]:
    """Every subscription and its invoices, as Stripe has them (no transaction open)."""
    return [_Remote(sub, gw.list_invoices(sub.id)) for sub in gw.list_subscriptions()]


def sync_stripe(db: Session, gw: Gateway, *, now: datetime) -> list[str]:
    """Repair the pledges and payments that differ from Stripe; the caller commits.

    Returns one human-readable line per change (and per subscription that was skipped).
    """
    changes: list[str] = []
    for remote in fetch(gw):
        pledge = _sync_subscription(db, remote.subscription, now, changes)
        if pledge is not None:
            _sync_invoices(db, pledge, remote.invoices, now, changes)
    return changes


def _sync_subscription(
    db: Session, sub: Subscription, now: datetime, changes: list[str]
) -> Pledge | None:
    """Write the subscription to its pledge, saying what changed; None if it was skipped."""
    before_pledge = records.find_pledge(db, sub)
    before = _pledge_state(before_pledge)
    touched = before_pledge.updated_at if before_pledge is not None else None
    try:
        pledge = records.apply_subscription(db, sub, now=now, source="sync")
    except records.TamperedPlan as exc:
        changes.append(f"Skipped subscription {sub.id}: its plan is not ours ({exc}).")
        return None
    if pledge is None:
        changes.append(
            f"Skipped subscription {sub.id}: its customer {sub.customer_id} is not known here."
        )
        return None
    if before_pledge is None:
        changes.append(
            f"Recorded pledge {pledge.id} ({sub.id}): {pledge.status}, "
            f"{money(pledge.amount, pledge.currency)} a month."
        )
        return pledge
    after = _pledge_state(pledge)
    differs = [name for name in _PLEDGE_FIELDS if before[name] != after[name]]
    if not differs:
        pledge.updated_at = touched  # nothing changed: leave the row as it was
    for name in differs:
        changes.append(
            f"Pledge {pledge.id} ({sub.id}): {name.replace('_', ' ')} "
            f"{_describe(before[name])} -> {_describe(after[name])}."
        )
    return pledge


def _sync_invoices(
    db: Session, pledge: Pledge, invoices: list[Invoice], now: datetime, changes: list[str]
) -> None:
    """Write the subscription's invoices to their payments, oldest first, saying what changed."""
    for invoice in sorted(invoices, key=lambda inv: inv.created or _EPOCH):
        if invoice.status == "draft":
            continue  # not yet an invoice the reader owes
        was = _payment_state(db, invoice.id)
        effect = records.apply_invoice(db, pledge, invoice, now=now)
        status = effect.payment.status
        if was is None:
            changes.append(
                f"Recorded payment {invoice.id} of pledge {pledge.id}: {status}, "
                f"{money(effect.payment.amount, effect.payment.currency)}."
            )
        elif was != status:
            changes.append(f"Payment {invoice.id} of pledge {pledge.id}: {was} -> {status}.")
