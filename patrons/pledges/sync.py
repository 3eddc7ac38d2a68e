"""`flask --app patrons sync-stripe`: bring every pledge and payment in line with Stripe,
after missed webhooks (docs/security.md, threat 7: an endpoint down for days, an event never
generated), and nightly from `flask stripe-worker --sync-every 24`.

Every subscription of the account is listed (ended ones too) with its invoices, and each
paid invoice's charge with its refunds and disputes, including objects the app never heard
of through a webhook; they are written through the same code as the webhook's events
(applying.write), so both build the same rows. A row changes only where it differs from
Stripe, and each change is reported in words; a second run reports nothing. A subscription
whose customer is unknown here, or whose plan is not ours, is reported and skipped: one bad
subscription never stops the rest. All Stripe calls are made first; the writes follow in one
transaction.

It repairs the record and mails nobody: a receipt weeks late, or one for every old invoice
the first time it runs on an account, would only confuse readers.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from patrons.pledges import applying
from patrons.pledges.gateway import Gateway

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fetch(gw: Gateway) -> list[applying.Remote]:
    """Every subscription with its invoices and charges, as Stripe has them."""
    remotes = []
    for sub in gw.list_subscriptions():
        invoices = sorted(gw.list_invoices(sub.id), key=lambda inv: inv.created or _EPOCH)
        remote = applying.Remote(subscription=sub, invoices=invoices)
        for invoice in invoices:
            applying.fetch_charge_of(gw, invoice, remote)
        remotes.append(remote)
    return remotes


def sync_stripe(db: Session, gw: Gateway, *, now: datetime, grace_days: int = 7) -> list[str]:
    """Repair the pledges and payments that differ from Stripe; the caller commits.

    Returns one human-readable line per change (and per subscription that was skipped).
    """
    changes: list[str] = []
    ctx = applying.Context(now, "sync", None, False, grace_days)
    for remote in fetch(gw):
        sub = remote.subscription
        assert sub is not None  # listed, so known
        try:  # both refusals come before anything is written
            changes.extend(applying.write(db, remote, ctx))
        except applying.Refused as exc:
            changes.append(f"Skipped subscription {sub.id}: its plan is not ours ({exc}).")
        except applying.NotYet:
            changes.append(
                f"Skipped subscription {sub.id}: its customer {sub.customer_id} is not known here."
            )
    return changes
