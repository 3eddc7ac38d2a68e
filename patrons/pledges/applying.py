"""Applying a Stripe event: re-read what it is about from Stripe, then write it.

Never trust, always re-read (docs/security.md, threat 41). An event contributes only its type
and the ids it names; every effect comes from the objects as Stripe has them when the event
is applied, read through the gateway with no transaction open:

    dispute → its charge;  refund → its charge;  charge → its invoice (and the charge's
    refunds and disputes);  invoice → its subscription, and its charge once paid.

So the order events arrive in does not matter: a refund or a dispute that comes before its
invoice event fetches the invoice and the subscription and records them all; a late
`invoice.payment_failed` for an invoice paid since then records it paid. An object Stripe does
not know has no effect (`Unknown`: logged, the event is marked ignored). A charge whose invoice
Stripe cannot name yet, or a subscription of a customer not yet known here, is `NotYet`:
the event is tried again later (inbox.py), never dropped.

`fetch` + `write` are also what `sync-stripe` does for every subscription (sync.py), so the
webhook and the nightly reconciliation build the same rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from patrons.core.db import lock_for_write_on_sqlite
from patrons.core.money import money
from patrons.models import Payment, Pledge
from patrons.pledges import ledger, notices, records
from patrons.pledges.gateway import Gateway
from patrons.pledges.stripe_objects import Charge, Dispute, Invoice, Subscription

log = logging.getLogger(__name__)

SUBSCRIPTION_EVENTS = frozenset(
    f"customer.subscription.{what}"
    for what in ("created", "updated", "deleted", "paused", "resumed")
)
# invoice.paid and invoice.payment_succeeded state the same fact; real Stripe sends both
INVOICE_EVENTS = frozenset(
    f"invoice.{what}"
    for what in ("paid", "payment_succeeded", "payment_failed", "voided", "marked_uncollectible")
)
CHARGE_EVENTS = frozenset({"charge.refunded", "charge.refund.updated", "refund.updated"})
DISPUTE_EVENTS = frozenset(
    f"charge.dispute.{what}"
    for what in ("created", "updated", "closed", "funds_withdrawn", "funds_reinstated")
)
HANDLED_EVENTS = SUBSCRIPTION_EVENTS | INVOICE_EVENTS | CHARGE_EVENTS | DISPUTE_EVENTS


class Unknown(Exception):
    """Stripe does not know the object the event is about: nothing to apply."""


class NotYet(Exception):
    """What the event needs is not there yet (Stripe cannot name the charge's invoice, or
    the customer has no row here): try the event again later."""


class Refused(Exception):
    """The object is one this app refuses for good (a plan that is not ours)."""


@dataclass(frozen=True)
class Target:
    """What an event is about, by id: the one kind of object its type names."""

    kind: str  # subscription, invoice, charge, dispute
    id: str

    @classmethod
    def of(cls, event_type: str, object_id: str, charge_id: str | None) -> Target:
        if event_type in SUBSCRIPTION_EVENTS:
            return cls("subscription", object_id)
        if event_type in INVOICE_EVENTS:
            return cls("invoice", object_id)
        if event_type in DISPUTE_EVENTS:
            return cls("dispute", object_id)
        # a refund event's object is the refund: its charge is what changed
        return cls("charge", charge_id or object_id)


@dataclass
class Remote:
    """Stripe's objects for one subscription's change, read before the transaction."""

    subscription: Subscription | None = None
    invoices: list[Invoice] = field(default_factory=list)
    charges: dict[str, tuple[Charge, list[Dispute]]] = field(default_factory=dict)  # by invoice


# -- reading (no transaction open) -------------------------------------------------------


def fetch(gw: Gateway, target: Target) -> Remote:
    """Read the target and what it belongs to from Stripe."""
    remote = Remote()
    invoice_id: str | None = target.id if target.kind == "invoice" else None
    if target.kind in ("charge", "dispute"):
        invoice_id = _fetch_charge_chain(gw, target, remote)
    if invoice_id is not None:
        invoice = gw.retrieve_invoice(invoice_id)
        if invoice is None:
            raise Unknown(f"Stripe does not know invoice {invoice_id}")
        remote.invoices.append(invoice)
        if invoice.id not in remote.charges:
            fetch_charge_of(gw, invoice, remote)
        subscription_id = invoice.subscription_id
    else:
        subscription_id = target.id
    if subscription_id is not None:
        remote.subscription = gw.retrieve_subscription(subscription_id)
        if remote.subscription is None and target.kind == "subscription":
            raise Unknown(f"Stripe does not know subscription {subscription_id}")
    return remote


def _fetch_charge_chain(gw: Gateway, target: Target, remote: Remote) -> str:
    """The charge (and disputes) a charge or dispute event is about; its invoice's id."""
    charge_id = target.id
    if target.kind == "dispute":
        dispute = gw.retrieve_dispute(target.id)
        if dispute is None or dispute.charge_id is None:
            raise Unknown(f"Stripe does not know dispute {target.id} or its charge")
        charge_id = dispute.charge_id
    charge = gw.retrieve_charge(charge_id)
    if charge is None:
        raise Unknown(f"Stripe does not know charge {charge_id}")
    invoice_id = charge.invoice_id
    if invoice_id is None and charge.payment_intent_id:
        invoice_id = gw.invoice_id_for_payment_intent(charge.payment_intent_id)
    if invoice_id is None:
        raise NotYet(f"Stripe names no invoice for charge {charge.id} (yet)")
    remote.charges[invoice_id] = (charge, gw.disputes_of_charge(charge.id))
    return invoice_id


def fetch_charge_of(gw: Gateway, invoice: Invoice, remote: Remote) -> None:
    """A paid invoice's charge and its disputes (refunds made before we heard of it)."""
    if invoice.status != "paid" or invoice.amount_paid <= 0:
        return
    charge_id = invoice.charge_id
    if charge_id is None and invoice.payment_intent_id:
        charge_id = gw.charge_for_payment_intent(invoice.payment_intent_id)
    charge = gw.retrieve_charge(charge_id) if charge_id else None
    if charge is not None:
        remote.charges[invoice.id] = (charge, gw.disputes_of_charge(charge.id))


# -- writing (one transaction, committed by the caller) ------------------------------------


@dataclass(frozen=True)
class Context:
    now: datetime
    source: str  # webhook, sync
    event_id: str | None = None
    notify: bool = True  # receipts and failure mails (not for sync's repairs)
    grace_days: int = 7


def write(db: Session, remote: Remote, ctx: Context) -> list[str]:
    """Write the subscription, its invoices and their charges; a line per change."""
    changes: list[str] = []
    pledge = _write_subscription(db, remote, ctx, changes)
    if pledge is None:
        return changes
    for invoice in remote.invoices:
        if invoice.status == "draft" or invoice.subscription_id != pledge.stripe_subscription_id:
            continue
        payment = _write_invoice(db, pledge, invoice, ctx, changes)
        charge = remote.charges.get(invoice.id)
        if charge is not None:
            _write_charge(db, payment, charge, ctx, changes)
    return changes


def _write_subscription(
    db: Session, remote: Remote, ctx: Context, changes: list[str]
) -> Pledge | None:
    sub = remote.subscription
    if sub is None:
        invoice = remote.invoices[0] if remote.invoices else None
        subscription_id = invoice.subscription_id if invoice else None
        pledge = lock_pledges(db, subscription_id, None) if subscription_id else None
        if pledge is None:
            log.info("nothing to apply: no pledge mirrors subscription %s", subscription_id)
        return pledge
    lock_pledges(db, sub.id, sub.metadata.get("patrons_pledge"))
    found = records.find_pledge(db, sub)
    before = {name: getattr(found, name) for name in _PLEDGE_FIELDS} if found else None
    try:
        pledge = records.apply_subscription(
            db, sub, now=ctx.now, source=ctx.source, event_id=ctx.event_id
        )
    except records.TamperedPlan as exc:
        raise Refused(str(exc)) from exc
    if pledge is None:
        raise NotYet(f"the customer {sub.customer_id} of subscription {sub.id} is unknown here")
    changes.extend(_pledge_changes(pledge, before))
    if ctx.notify:
        notices.queue_ended_mail(db, pledge, before["status"] if before else None)
    return pledge


# Pledge fields whose change is worth a line in sync-stripe's report
_PLEDGE_FIELDS = ("status", "amount", "currency", "cancel_at_period_end", "current_period_end")


def _pledge_changes(pledge: Pledge, before: dict[str, object] | None) -> list[str]:
    label = f"Pledge {pledge.id} ({pledge.stripe_subscription_id})"
    if before is None:
        return [f"Recorded {label[0].lower()}{label[1:]}: {pledge.status}, "
                f"{money(pledge.amount, pledge.currency)} a month."]  # fmt: skip
    return [
        f"{label}: {name.replace('_', ' ')} {_describe(before[name])} -> "
        f"{_describe(getattr(pledge, name))}."
        for name in _PLEDGE_FIELDS
        if before[name] != getattr(pledge, name)
    ]


def _describe(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return "none" if value is None else str(value)


def _write_invoice(
    db: Session, pledge: Pledge, invoice: Invoice, ctx: Context, changes: list[str]
) -> Payment:
    was = db.scalar(select(Payment.status).where(Payment.stripe_invoice_id == invoice.id))
    effect = records.record_invoice(
        db, pledge, invoice, now=ctx.now, source=ctx.source, event_id=ctx.event_id,
        mail=ctx.notify, grace_days=ctx.grace_days,
    )  # fmt: skip
    payment = effect.payment
    if was is None:
        changes.append(f"Recorded payment {invoice.id} of pledge {pledge.id}: {payment.status}, "
                       f"{money(payment.amount, payment.currency)}.")  # fmt: skip
    elif was != payment.status:
        changes.append(f"Payment {invoice.id} of pledge {pledge.id}: {was} -> {payment.status}.")
    return effect.payment


def _write_charge(
    db: Session,
    payment: Payment,
    found: tuple[Charge, list[Dispute]],
    ctx: Context,
    changes: list[str],
) -> None:
    charge, disputes = found
    before = ledger.Snapshot.of(payment)
    ledger.apply_charge(payment, charge, disputes)
    if ledger.record_change(db, payment, before, now=ctx.now, source=ctx.source,
                            event_id=ctx.event_id):  # fmt: skip
        changes.append(
            f"Payment {payment.stripe_invoice_id}: {before.status} -> {payment.status} "
            f"(refunded {payment.amount_refunded}, lost to a dispute {payment.amount_disputed})."
        )
    if ledger.taken_back(before, payment):
        log.warning("payment %s of pledge %s: %s", payment.stripe_invoice_id,
                    payment.pledge_id, payment.status)  # fmt: skip


def lock_pledges(db: Session, subscription_id: str, local_id: str | None) -> Pledge | None:
    """Lock the pledge rows this subscription may mirror (PostgreSQL: FOR UPDATE; SQLite:
    the database's write lock), so concurrent events about one pledge take
    turns; return the one `records.find_pledge` will pick, if any."""
    lock_for_write_on_sqlite(db)
    clauses = [Pledge.stripe_subscription_id == subscription_id]
    if local_id and local_id.isdigit() and len(local_id) < 18:
        clauses.append(Pledge.id == int(local_id))
    rows = db.scalars(
        select(Pledge)
        .where(or_(*clauses))
        .order_by(Pledge.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    by_subscription = [p for p in rows if p.stripe_subscription_id == subscription_id]
    waiting = [p for p in rows if p.stripe_subscription_id is None]
    return next(iter(by_subscription or waiting), None)
