"""Staff's demo-only actions with the offline Stripe: "next month" and "a failed renewal".

localstripe never moves time, so nothing renews unless asked. These routes exist only
offline (STRIPE_API_BASE set): with real keys every one of them is a 404. The staff check
is the blueprint's own (patrons/staff/__init__.py).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from patrons.accounts import audit
from patrons.accounts.second_factor import fresh_second_factor_required
from patrons.core.db import session as db
from patrons.pledges.billing import gateway
from patrons.pledges.errors import PledgeError
from patrons.pledges.gateway import Gateway
from patrons.pledges.simulations import simulate_failed_renewal, simulate_renewals
from patrons.pledges.stripe_objects import GatewayError
from patrons.staff import queries
from patrons.staff.forms import ActionForm

bp = Blueprint("simulate", __name__)  # under /staff, behind its staff check (staff/__init__.py)


@bp.app_context_processor
def simulations() -> dict[str, object]:
    """`offline_stripe()` for the staff navigation: whether the simulations exist."""

    def offline_stripe() -> bool:
        gw = gateway()
        return gw is not None and gw.offline

    return {"offline_stripe": offline_stripe}


def _offline_gateway() -> Gateway:
    gw = gateway()
    if gw is None or not gw.offline:
        abort(404)
    return gw


@bp.get("/simulate")
def index() -> ResponseReturnValue:
    _offline_gateway()
    rows = queries.open_subscriptions(db)
    return render_template("staff/simulate.html", rows=rows, form=ActionForm())


@bp.post("/simulate/renewal")
@fresh_second_factor_required  # charges (offline) and renews every active pledge
def renewal() -> ResponseReturnValue:
    gw = _offline_gateway()
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        count = simulate_renewals(db, gw)
    except GatewayError as exc:
        db.rollback()
        flash(exc.message, "error")
    else:
        audit.record(db, "staff.simulate_renewal", actor=current_user, detail={"count": count})
        db.commit()
        flash(_("Next month simulated: %(count)d active pledges renewed.", count=count), "success")
    return redirect(url_for("staff.simulate.index"), code=303)


@bp.post("/simulate/failed-renewal/<int:pledge_id>")
@fresh_second_factor_required  # a pledge's renewal refused: it goes past due
def failed_renewal(pledge_id: int) -> ResponseReturnValue:
    gw = _offline_gateway()
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        pledge = simulate_failed_renewal(db, gw, pledge_id)
    except PledgeError as exc:
        db.rollback()
        if exc.status == 404:
            abort(404)
        flash(exc.message, "error")
    except GatewayError as exc:
        db.rollback()
        flash(exc.message, "error")
    else:
        audit.record(db, "staff.simulate_failed_renewal", actor=current_user,
                     user=pledge.user_id, detail={"pledge": pledge.id})  # fmt: skip
        db.commit()
        flash(_("A failed renewal was simulated: pledge %(id)d is now %(status)s.",
                id=pledge.id, status=pledge.status), "success")  # fmt: skip
    return redirect(url_for("staff.simulate.index"), code=303)
