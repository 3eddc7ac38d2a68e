"""The patron's pledge page and its changes: a new card (JSON steps of static/js/pledge.js),
the amount, cancelling and resuming (plain forms), and the receipts. Each view parses the
request, calls one service (managing.py) and renders; only the POST handlers commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from flask import abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_date as babel_date
from flask_babel import gettext as _

from patrons import mail
from patrons.core.db import session as db
from patrons.core.extensions import limiter, login_required
from patrons.core.formatting import format_date
from patrons.core.money import money
from patrons.models import Pledge
from patrons.models.pledges import ENDED_STATUSES
from patrons.pledges import entitlement, managing, queries, templating
from patrons.pledges.billing import gateway
from patrons.pledges.choice import check_attempt, check_setup_intent, currency_option, parse_choice
from patrons.pledges.errors import PledgeError
from patrons.pledges.forms import ActionForm, CancelForm, ChangeAmountForm
from patrons.pledges.gateway import Gateway
from patrons.pledges.view_helpers import (
    bp,
    gateway_or_404,
    json_step,
    payload,
    reader,
    retry_headers,
    settings,
)

# -- a new card (JSON) -------------------------------------------------------------------------


@bp.post("/pledge/card")
@login_required
@limiter.limit("20 per minute;100 per day")
@json_step
def card_start() -> ResponseReturnValue:
    gw = gateway_or_404()
    attempt = check_attempt(payload().get("attempt"))
    setup = managing.start_card_update(db, gw, reader(), attempt)
    db.commit()
    return jsonify(ok=True, client_secret=setup.client_secret)


@bp.post("/pledge/card/confirm")
@login_required
@limiter.limit("20 per minute")
@json_step
def card_confirm() -> ResponseReturnValue:
    gw = gateway_or_404()
    setup_intent = check_setup_intent(payload().get("setup_intent"))
    pledge, retried = managing.finish_card_update(db, gw, reader(), setup_intent)
    db.commit()
    mail.send_soon()
    if retried is True:
        flash(_("Your new card is saved, and the missed payment went through. Thank you!"),
              "success")  # fmt: skip
    elif retried is False or pledge.status == "past_due":
        flash(_("Your new card is saved. The missed payment did not go through yet; the next "
                "attempt to collect it will use the new card."), "error")  # fmt: skip
    else:
        flash(_("Your new card is saved and will be used from your next payment."), "success")
    return jsonify(ok=True, redirect=url_for("pledges.pledge"))


# -- the pledge page -------------------------------------------------------------------------


@bp.get("/pledge")
@login_required
def pledge() -> ResponseReturnValue:
    return _pledge_page()


def _pledge_page(**forms: Any) -> str:
    config = settings()
    current = queries.current_pledge(db, reader().id)
    manageable = current is not None and current.status in queries.MANAGEABLE
    card_ready = gateway() is not None and bool(config.stripe_publishable_key)
    if manageable and card_ready:
        g.csp_stripe = True
    rights_until = None
    if current is not None:
        until = entitlement.rights_until(db, current, config.pledge_grace_days)
        rights_until = babel_date(until, format="long") if until is not None else None
    return render_template(
        "pledges/pledge.html",
        pledge=current,
        manageable=manageable,
        ended=current is not None and current.status in ENDED_STATUSES,
        unfinished=current is not None and current.status in queries.UNFINISHED,
        rights_until=rights_until,
        payments=queries.payments_of(db, reader().id),
        option=currency_option(config, current.currency if current else None),
        amount_form=forms.get("amount_form") or ChangeAmountForm(),
        cancel_form=forms.get("cancel_form") or CancelForm(),
        action_form=ActionForm(),
        stripe_js_url=templating.stripe_js_url(config),
        card_ready=card_ready,
        attempt=secrets.token_urlsafe(12),
    )


def _change(
    action: Callable[[Gateway], Pledge],
    success: str | Callable[[Pledge], str],
    form: ChangeAmountForm | CancelForm | None = None,
    field: str = "",
) -> ResponseReturnValue:
    """Run one pledge change; flash its message, or show the page again with the error."""
    gw = gateway_or_404()
    try:
        result = action(gw)
    except PledgeError as exc:
        db.rollback()
        if form is not None:
            form[field].errors = [exc.message]
            name = "amount_form" if isinstance(form, ChangeAmountForm) else "cancel_form"
            return _pledge_page(**{name: form}), exc.status, retry_headers(exc)
        flash(exc.message, "error")
        return _pledge_page(), exc.status, retry_headers(exc)
    db.commit()
    mail.send_soon()
    flash(success if isinstance(success, str) else success(result), "success")
    return redirect(url_for("pledges.pledge"), code=303)


@bp.post("/pledge/amount")
@login_required
@limiter.limit("20 per hour")
def change_amount() -> ResponseReturnValue:
    form = ChangeAmountForm(formdata=request.form)  # a form post, never JSON (Flask-WTF reads it)
    if not form.validate_on_submit():
        return _pledge_page(amount_form=form), 400
    current = queries.open_pledge(db, reader().id)
    currency = current.currency if current else None

    def action(gw: Gateway) -> Pledge:
        choice = parse_choice(settings(), currency, form.amount.data, form.other_amount.data)
        return managing.change_amount(db, gw, reader(), choice)

    return _change(action, _amount_changed, form, "amount")


def _amount_changed(pledge: Pledge) -> str:
    return str(
        _(
            "Your pledge is now %(amount)s a month, from today. The difference for the rest of "
            "this period is added to your next payment, on %(date)s.",
            amount=money(pledge.amount, pledge.currency),
            date=format_date(pledge.current_period_end),
        )
    )


@bp.post("/pledge/cancel")
@login_required
@limiter.limit("20 per hour")
def cancel() -> ResponseReturnValue:
    form = CancelForm(formdata=request.form)
    if not form.validate_on_submit():
        return _pledge_page(cancel_form=form), 400
    pledge_url = settings().site_url + url_for("pledges.pledge")  # for the confirmation mail

    def action(gw: Gateway) -> Pledge:
        return managing.cancel(db, gw, reader(), form.reason.data or "", pledge_url)

    return _change(action, _canceled, form, "reason")


def _canceled(pledge: Pledge) -> str:
    return str(
        _(
            "Your pledge will end on %(date)s. Nothing more will be charged. We have sent you an "
            "email to confirm it.",
            date=format_date(pledge.current_period_end),
        )
    )


@bp.post("/pledge/resume")
@login_required
@limiter.limit("20 per hour")
def resume() -> ResponseReturnValue:
    form = ActionForm(formdata=request.form)
    if not form.validate_on_submit():
        abort(400)
    return _change(
        lambda gw: managing.resume(db, gw, reader()),
        _("Your pledge continues. Thank you for staying with us."),
    )


@bp.get("/pledge/receipts/<int:payment_id>")
@login_required
def receipt(payment_id: int) -> ResponseReturnValue:
    found = queries.receipt(db, reader().id, payment_id)
    if found is None:
        abort(404)  # someone else's payment looks exactly like no payment
    payment, pledge_row = found
    response = current_app.make_response(
        render_template("pledges/receipt.html", payment=payment, pledge=pledge_row)
    )
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response
