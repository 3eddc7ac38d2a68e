"""Staff page for the Stripe events that could not be applied: those that failed for good
(`failed`, after the worker's last attempt) and those still waiting (`pending`) for longer
than a few minutes, with the reason; a "Retry" button puts one back in the queue, and the
worker (patrons/pledges/inbox.py) applies it. Staff-only by the parent blueprint's check
(patrons/staff/__init__.py); the retry is a POST with the CSRF token (docs/security.md
threat 27), and the list only reads.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from patrons.accounts import audit
from patrons.accounts.second_factor import fresh_second_factor_required
from patrons.core import clock
from patrons.core.db import session as db
from patrons.models import StripeEvent
from patrons.models.pledges import EventState
from patrons.pledges import inbox
from patrons.staff.forms import ActionForm

bp = Blueprint("stripe_events", __name__)  # under /staff, behind its staff check
STUCK_AFTER = timedelta(minutes=5)  # a pending event older than this is listed as stuck
LIMIT = 500
EVENT_ID_MAX = 255  # StripeEvent.id's length


def stuck_events(session: Session, now: datetime) -> list[StripeEvent]:
    """Failed events, and pending ones received more than STUCK_AFTER ago; oldest first."""
    return list(
        session.scalars(
            select(StripeEvent)
            .where(
                or_(
                    StripeEvent.state == EventState.FAILED,
                    and_(
                        StripeEvent.state == EventState.PENDING,
                        StripeEvent.received_at < now - STUCK_AFTER,
                    ),
                )
            )
            .order_by(StripeEvent.received_at, StripeEvent.id)
            .limit(LIMIT)
        )
    )


@bp.get("/stripe-events")
def index() -> ResponseReturnValue:
    now = clock.now()
    return render_template(
        "staff/stripe_events.html",
        events=stuck_events(db, now),
        stuck_minutes=int(STUCK_AFTER.total_seconds() // 60),
        form=ActionForm(),
    )


@bp.post("/stripe-events/<event_id>/retry")
@fresh_second_factor_required  # applying a payment event changes pledges and payments
def retry_event(event_id: str) -> ResponseReturnValue:
    if len(event_id) > EVENT_ID_MAX:
        abort(404)
    event = db.get(StripeEvent, event_id) or abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    if event.state not in (EventState.FAILED, EventState.PENDING):
        flash(_("Event %(id)s was applied already; nothing to retry.", id=event.id), "error")
        return redirect(url_for("staff.stripe_events.index"), code=303)
    inbox.retry(db, event.id)  # attempts start again from 0: a fresh set of tries
    detail = {"event": event.id, "type": event.type}
    audit.record(db, "staff.stripe_retry", actor=current_user, detail=detail)
    db.commit()
    flash(_("Event %(id)s is queued to be applied again.", id=event.id), "success")
    return redirect(url_for("staff.stripe_events.index"), code=303)
