"""Offline only: what time would do, for staff's demo actions (patrons/staff/simulate.py).

localstripe never moves time, so nothing renews unless asked: these invoice and charge the
next month now, or make a renewal fail, and record the outcome as the webhook would.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import Pledge
from patrons.pledges import records
from patrons.pledges.concurrency import store
from patrons.pledges.errors import PledgeError, unknown_to_stripe
from patrons.pledges.gateway import Gateway
from patrons.pledges.queries import active_subscription_ids
from patrons.pledges.stripe_objects import Invoice


def simulate_renewals(db: Session, gw: Gateway) -> int:
    """Invoice and charge next month for every active pledge; the number renewed."""
    ids = active_subscription_ids(db)
    db.commit()
    renewed = 0
    for subscription_id in ids:
        sub = gw.retrieve_subscription(subscription_id or "")
        if sub is None or sub.status not in ("active", "trialing"):
            continue
        invoice = gw.simulate_renewal(sub)
        _record_renewal(db, gw, sub.id, invoice)
        renewed += 1
    return renewed


def simulate_failed_renewal(db: Session, gw: Gateway, pledge_id: int) -> Pledge:
    """A renewal of this pledge whose payment fails; PledgeError (404) unless it is an open
    pledge with a subscription."""
    pledge = db.get(Pledge, pledge_id)
    db.commit()
    if pledge is None or not pledge.stripe_subscription_id or not pledge.is_open:
        raise PledgeError(_("Choose an open pledge with a subscription."), 404)
    sub = gw.retrieve_subscription(pledge.stripe_subscription_id)
    if sub is None:
        raise unknown_to_stripe()
    invoice = gw.simulate_failed_renewal(sub)
    return _record_renewal(db, gw, sub.id, invoice) or pledge


def _record_renewal(
    db: Session, gw: Gateway, subscription_id: str, invoice: Invoice
) -> Pledge | None:
    """localstripe sends no subscription.updated: read the subscription again and record it
    with the new invoice, as the webhook would."""
    sub = gw.retrieve_subscription(subscription_id)
    if sub is None:
        return None

    def write(session: Session) -> Pledge | None:
        now = clock.now()
        pledge = records.apply_subscription(session, sub, now=now, source="staff")
        if pledge is not None:
            records.record_invoice(session, pledge, invoice, now=now, source="staff")
        return pledge

    return store(db, write)
