"""The support page (choose an amount, enter a card) and the patron's pledge page.

The card steps are small JSON endpoints called by static/js/pledge.js (CSRF token in the
X-CSRFToken header); every other change is a plain form. Bad input is a 4xx with a message.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from patrons import attribution, mail
from patrons.core.config import Settings
from patrons.core.db import session as db
from patrons.core.extensions import limiter
from patrons.core.money import major_units, money
from patrons.models.pledges import ENDED_STATUSES
from patrons.pledges import service
from patrons.pledges.billing import gateway
from patrons.pledges.forms import ActionForm, CancelForm, ChangeAmountForm
from patrons.pledges.gateway import Gateway

bp = Blueprint("pledges", __name__)

# What a reader chose before signing up or in ("EUR:500"): a cookie of its own, because
# signing in starts a new session (session fixation) and the mailed confirmation link
# carries no `next`. It only preselects the choice, which is validated again every time.
CHOICE_COOKIE = "pledge_choice"
CHOICE_DAYS = 7


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


def stripe_js_url(settings: Settings) -> str:
    if settings.stripe_api_base:  # offline: localstripe's fake Stripe.js
        return f"{settings.stripe_api_base}/js.stripe.com/v3/"
    return "https://js.stripe.com/v3/"


@bp.app_context_processor
def pledge_helpers() -> dict[str, Any]:
    return {
        "money": money,
        "pledge_summary": _pledge_summary,
        "amount_label": amount_label,
        "major_units": major_units,
    }


def amount_label(amount: int, option: Any) -> str:
    """500, EUR → "€5": the short form of the amount chooser (money() is for statements)."""
    return f"{option.symbol}{major_units(amount)}"


def _pledge_summary() -> dict[str, Any]:
    """For the account page: the reader's pledge, and a choice made before signing up."""
    if not current_user.is_authenticated:
        return {}
    return {
        "pledge": service.current_pledge(db, current_user.id),
        "choice": _remembered_choice(),
    }


def _remembered_choice() -> service.Choice | None:
    currency, _sep, amount = request.cookies.get(CHOICE_COOKIE, "")[:20].partition(":")
    try:
        return service.parse_choice(_settings(), currency, amount)
    except service.PledgeError:
        return None


# -- the support page ------------------------------------------------------------------------


@bp.get("/support")
def support() -> ResponseReturnValue:
    settings, args = _settings(), request.args
    choice, error = None, None
    currency = service.currency_option(settings, args.get("currency"))
    if "show" not in args and (args.get("amount") or args.get("other_amount")):
        try:
            choice = service.parse_choice(
                settings, args.get("currency"), args.get("amount"), args.get("other_amount")
            )
        except service.PledgeError as exc:
            error = exc.message
    elif currency is None:
        choice = _remembered_choice()
    anonymous = not current_user.is_authenticated
    if choice is not None and "continue" in args and anonymous and gateway() is not None:
        back = url_for("pledges.support", currency=choice.currency, amount=choice.amount)
        response = redirect(url_for("accounts.login", next=back), code=303)
        response.set_cookie(
            CHOICE_COOKIE, f"{choice.currency}:{choice.amount}", max_age=CHOICE_DAYS * 86400,
            httponly=True, samesite="Lax", secure=_settings().is_production,
        )  # fmt: skip
    else:
        page = _support_page(choice, currency, error, args.get("other_amount", "")[:12])
        response = current_app.make_response((page, 400 if error else 200))
    source = attribution.from_link(db, args)  # the banner's or the notice's link
    return attribution.remember(response, source, secure=settings.is_production)


def _support_page(
    choice: service.Choice | None, currency: Any, error: str | None, other_text: str = ""
) -> str:
    settings = _settings()
    option = currency or service.currency_option(
        settings, choice.currency if choice else None
    ) or settings.pledge_options[0]  # fmt: skip
    amount = choice.amount if choice and choice.currency == option.code else option.suggested[0]
    pledge = None
    if current_user.is_authenticated:
        pledge = service.current_pledge(db, current_user.id)
    gw = gateway()
    ready = gw is not None and bool(settings.stripe_publishable_key)
    if ready and current_user.is_authenticated:
        g.csp_stripe = True  # the card form loads Stripe.js (web.content_security_policy)
    login_next = url_for("pledges.support", currency=option.code, amount=amount)
    return render_template(
        "pledges/support.html",
        ready=ready,
        option=option,
        amount=amount,
        error=error,
        pledge=pledge if pledge is not None and pledge.is_open else None,
        options_data=_options_data(settings),
        stripe_js_url=stripe_js_url(settings),
        login_next=login_next,
        attempt=secrets.token_urlsafe(12),
        other_text=other_text,
    )


def _options_data(settings: Settings) -> dict[str, Any]:
    return {
        o.code: {
            "symbol": o.symbol,
            "suggested": list(o.suggested),
            "min": o.minimum,
            "max": o.maximum,
        }
        for o in settings.pledge_options
    }


# -- the card steps (JSON) -------------------------------------------------------------------


def _json_error(message: str, status: int) -> tuple[Any, int]:
    return jsonify(ok=False, message=message), status


def _payload() -> dict[str, Any]:
    try:
        data = request.get_json(silent=True)  # `silent` covers ValueError, not this:
    except RecursionError:  # JSON nested deeper than Python's recursion limit
        return {}  # answered like any body without the fields: a clear 4xx
    if isinstance(data, dict):
        return data
    return request.form.to_dict()


def _gateway_or_404() -> Gateway:
    gw = gateway()
    if gw is None:
        abort(404)
    return gw


def _answer(outcome: service.Outcome) -> Any:
    if outcome.status == "requires_action":
        return jsonify(ok=True, status=outcome.status, client_secret=outcome.client_secret)
    db.commit()
    mail.send_soon()
    flash(_("Thank you: you are now a patron."), "success")
    response = jsonify(ok=True, status=outcome.status, redirect=url_for("pledges.pledge"))
    response.delete_cookie(CHOICE_COOKIE)
    return response


@bp.post("/pledge/start")
@login_required
@limiter.limit("20 per minute;200 per day")
def start() -> ResponseReturnValue:
    gw = _gateway_or_404()
    data = _payload()
    try:
        choice = service.parse_choice(
            _settings(), data.get("currency"), data.get("amount"), data.get("other_amount")
        )
        service.check_plan(choice, data.get("plan"))
        attempt = service.check_attempt(data.get("attempt"))
        setup = service.start_pledge(db, gw, current_user, choice, attempt)
    except service.PledgeError as exc:
        db.rollback()
        return _json_error(exc.message, exc.status)
    attribution.stamp_pledge(db, setup.pledge_id, current_user, request.cookies)
    db.commit()
    return jsonify(ok=True, client_secret=setup.client_secret, amount=choice.amount,
                   currency=choice.currency)  # fmt: skip


def _setup_intent_id(data: dict[str, Any]) -> str:
    value = data.get("setup_intent")
    if not isinstance(value, str) or not value.startswith("seti_") or len(value) > 255:
        raise service.PledgeError(_("The card was not confirmed. Please enter it again."))
    return value


@bp.post("/pledge/subscribe")
@login_required
@limiter.limit("20 per minute")
def subscribe() -> ResponseReturnValue:
    gw = _gateway_or_404()
    data = _payload()
    try:
        setup_intent = _setup_intent_id(data)
        expected = None
        if "currency" in data:  # the amount the page showed, as it sent it to start
            expected = service.parse_choice(
                _settings(), data.get("currency"), data.get("amount"), data.get("other_amount")
            )
        outcome = service.subscribe(db, gw, current_user, setup_intent, expected)
    except service.PledgeError as exc:
        db.rollback()
        return _json_error(exc.message, exc.status)
    return _answer(outcome)


@bp.post("/pledge/refresh")
@login_required
@limiter.limit("30 per minute")
def refresh() -> ResponseReturnValue:
    gw = _gateway_or_404()
    try:
        outcome = service.refresh(db, gw, current_user)
    except service.PledgeError as exc:
        db.rollback()
        return _json_error(exc.message, exc.status)
    return _answer(outcome)


@bp.post("/pledge/card")
@login_required
@limiter.limit("20 per minute;100 per day")
def card_start() -> ResponseReturnValue:
    gw = _gateway_or_404()
    try:
        attempt = service.check_attempt(_payload().get("attempt"))
        setup = service.start_card_update(db, gw, current_user, attempt)
    except service.PledgeError as exc:
        db.rollback()
        return _json_error(exc.message, exc.status)
    db.commit()
    return jsonify(ok=True, client_secret=setup.client_secret)


@bp.post("/pledge/card/confirm")
@login_required
@limiter.limit("20 per minute")
def card_confirm() -> ResponseReturnValue:
    gw = _gateway_or_404()
    try:
        setup_intent = _setup_intent_id(_payload())
        pledge, retried = service.finish_card_update(db, gw, current_user, setup_intent)
    except service.PledgeError as exc:
        db.rollback()
        return _json_error(exc.message, exc.status)
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
    settings = _settings()
    current = service.current_pledge(db, current_user.id)
    manageable = current is not None and current.status in service.MANAGEABLE
    if manageable and gateway() is not None and settings.stripe_publishable_key:
        g.csp_stripe = True
    option = service.currency_option(settings, current.currency if current else None)
    return render_template(
        "pledges/pledge.html",
        pledge=current,
        manageable=manageable,
        ended=current is not None and current.status in ENDED_STATUSES,
        payments=service.payments_of(db, current_user.id),
        option=option,
        amount_form=forms.get("amount_form") or ChangeAmountForm(),
        cancel_form=forms.get("cancel_form") or CancelForm(),
        action_form=ActionForm(),
        stripe_js_url=stripe_js_url(settings),
        card_ready=gateway() is not None and bool(settings.stripe_publishable_key),
        attempt=secrets.token_urlsafe(12),
    )


def _change(action: Any, success: Any, form: Any = None, field: str = "") -> Any:
    """Run one pledge change; flash its message, or show the page again with the error."""
    gw = _gateway_or_404()
    try:
        result = action(gw)
    except service.PledgeError as exc:
        db.rollback()
        if form is not None:
            form[field].errors = [exc.message]
            name = "amount_form" if isinstance(form, ChangeAmountForm) else "cancel_form"
            return _pledge_page(**{name: form}), exc.status
        flash(exc.message, "error")
        return _pledge_page(), exc.status
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
    current = service.open_pledge(db, current_user.id)
    currency = current.currency if current else None

    def action(gw: Gateway) -> Any:
        choice = service.parse_choice(_settings(), currency, form.amount.data,
                                      form.other_amount.data)  # fmt: skip
        return service.change_amount(db, gw, current_user, choice)

    return _change(action, _amount_changed, form, "amount")


def _amount_changed(pledge: Any) -> str:
    from patrons.core.formatting import format_date

    return _(
        "Your pledge is now %(amount)s a month, from today. The difference for the rest of "
        "this period is added to your next payment, on %(date)s.",
        amount=money(pledge.amount, pledge.currency),
        date=format_date(pledge.current_period_end),
    )


@bp.post("/pledge/cancel")
@login_required
@limiter.limit("20 per hour")
def cancel() -> ResponseReturnValue:
    form = CancelForm(formdata=request.form)
    if not form.validate_on_submit():
        return _pledge_page(cancel_form=form), 400

    def action(gw: Gateway) -> Any:
        return service.cancel(db, gw, current_user, form.reason.data or "")

    return _change(action, _canceled, form, "reason")


def _canceled(pledge: Any) -> str:
    from patrons.core.formatting import format_date

    return _(
        "Your pledge will end on %(date)s. Nothing more will be charged. We have sent you an "
        "email to confirm it.",
        date=format_date(pledge.current_period_end),
    )


@bp.post("/pledge/resume")
@login_required
@limiter.limit("20 per hour")
def resume() -> ResponseReturnValue:
    form = ActionForm(formdata=request.form)
    if not form.validate_on_submit():
        abort(400)
    return _change(
        lambda gw: service.resume(db, gw, current_user),
        _("Your pledge continues. Thank you for staying with us."),
    )


@bp.get("/pledge/receipts/<int:payment_id>")
@login_required
def receipt(payment_id: int) -> ResponseReturnValue:
    found = service.receipt(db, current_user.id, payment_id)
    if found is None:
        abort(404)  # someone else's payment looks exactly like no payment
    payment, pledge_row = found
    response = current_app.make_response(
        render_template("pledges/receipt.html", payment=payment, pledge=pledge_row)
    )
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response
