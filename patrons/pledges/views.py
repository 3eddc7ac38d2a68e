"""The support page (choose an amount, enter a card) and the patron's pledge page.

The card steps are small JSON endpoints called by static/js/pledge.js (CSRF token in the
X-CSRFToken header); every other change is a plain form. Bad input is a 4xx with a message.
Each view parses the request, calls one service (starting.py, managing.py) and renders; only
the POST handlers commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

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
from flask_login import current_user

from patrons import attribution, mail
from patrons.core.config import Settings
from patrons.core.db import session as db
from patrons.core.extensions import limiter, login_required
from patrons.core.formatting import format_date
from patrons.core.money import CurrencyOption, money
from patrons.models import Pledge, User
from patrons.models.pledges import ENDED_STATUSES
from patrons.pledges import managing, queries, starting, templating
from patrons.pledges.billing import gateway
from patrons.pledges.choice import (
    Choice,
    check_attempt,
    check_plan,
    check_setup_intent,
    currency_option,
    parse_choice,
)
from patrons.pledges.errors import PledgeError
from patrons.pledges.forms import ActionForm, CancelForm, ChangeAmountForm
from patrons.pledges.gateway import Gateway

bp = Blueprint("pledges", __name__)

_View = TypeVar("_View", bound=Callable[..., ResponseReturnValue])


def _reader() -> User:
    """The signed-in reader (Flask-Login's proxy is untyped)."""
    return cast(User, current_user)


def _settings() -> Settings:
    return cast(Settings, current_app.config["SETTINGS"])


# -- the support page ------------------------------------------------------------------------


@bp.get("/support")
def support() -> ResponseReturnValue:
    settings, args = _settings(), request.args
    choice, error = None, None
    currency = currency_option(settings, args.get("currency"))
    if "show" not in args and (args.get("amount") or args.get("other_amount")):
        try:
            choice = parse_choice(
                settings, args.get("currency"), args.get("amount"), args.get("other_amount")
            )
        except PledgeError as exc:
            error = exc.message
    elif currency is None:
        choice = templating.remembered_choice(settings, request.cookies)
    anonymous = not current_user.is_authenticated
    if choice is not None and "continue" in args and anonymous and gateway() is not None:
        back = url_for("pledges.support", currency=choice.currency, amount=choice.amount)
        response = redirect(url_for("accounts.login", next=back), code=303)
        templating.remember_choice(response, choice, secure=settings.is_production)
    else:
        page = _support_page(choice, currency, error, args.get("other_amount", "")[:12])
        response = current_app.make_response((page, 400 if error else 200))
    source = attribution.from_link(db, args)  # the banner's or the notice's link
    remembered = attribution.remember(response, source, secure=settings.is_production)
    return cast(ResponseReturnValue, remembered)


def _support_page(
    choice: Choice | None, currency: CurrencyOption | None, error: str | None, other_text: str
) -> str:
    settings = _settings()
    option = currency or currency_option(
        settings, choice.currency if choice else None
    ) or settings.pledge_options[0]  # fmt: skip
    amount = choice.amount if choice and choice.currency == option.code else option.suggested[0]
    pledge = None
    if current_user.is_authenticated:
        pledge = queries.current_pledge(db, _reader().id)
    gw = gateway()
    ready = gw is not None and bool(settings.stripe_publishable_key)
    if ready and current_user.is_authenticated:
        g.csp_stripe = True  # the card form loads Stripe.js (web.content_security_policy)
    return render_template(
        "pledges/support.html",
        ready=ready,
        option=option,
        amount=amount,
        error=error,
        pledge=pledge if pledge is not None and pledge.is_open else None,
        options_data=templating.options_data(settings),
        stripe_js_url=templating.stripe_js_url(settings),
        login_next=url_for("pledges.support", currency=option.code, amount=amount),
        attempt=secrets.token_urlsafe(12),
        other_text=other_text,
    )


# -- the card steps (JSON) -------------------------------------------------------------------


def _json_step(view: _View) -> _View:
    """A card step: a PledgeError is rolled back and answered as JSON with its message and
    its status, for static/js/pledge.js to show."""

    @wraps(view)
    def step(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        try:
            return view(*args, **kwargs)
        except PledgeError as exc:
            db.rollback()
            return jsonify(ok=False, message=exc.message), exc.status

    return cast(_View, step)


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


def _answer(outcome: starting.Outcome) -> ResponseReturnValue:
    if outcome.status == "requires_action":
        return jsonify(ok=True, status=outcome.status, client_secret=outcome.client_secret)
    db.commit()
    mail.send_soon()
    flash(_("Thank you: you are now a patron."), "success")
    response = jsonify(ok=True, status=outcome.status, redirect=url_for("pledges.pledge"))
    templating.forget_choice(response)
    return response


@bp.post("/pledge/start")
@login_required
@limiter.limit("20 per minute;200 per day")
@_json_step
def start() -> ResponseReturnValue:
    gw = _gateway_or_404()
    data = _payload()
    choice = parse_choice(
        _settings(), data.get("currency"), data.get("amount"), data.get("other_amount")
    )
    check_plan(choice, data.get("plan"))
    attempt = check_attempt(data.get("attempt"))
    setup = starting.start_pledge(db, gw, _reader(), choice, attempt)
    attribution.stamp_pledge(db, setup.pledge_id, _reader(), request.cookies)
    db.commit()
    return jsonify(ok=True, client_secret=setup.client_secret, amount=choice.amount,
                   currency=choice.currency)  # fmt: skip


@bp.post("/pledge/subscribe")
@login_required
@limiter.limit("20 per minute")
@_json_step
def subscribe() -> ResponseReturnValue:
    gw = _gateway_or_404()
    data = _payload()
    setup_intent = check_setup_intent(data.get("setup_intent"))
    expected = None
    if "currency" in data:  # the amount the page showed, as it sent it to start
        expected = parse_choice(
            _settings(), data.get("currency"), data.get("amount"), data.get("other_amount")
        )
    return _answer(starting.subscribe(db, gw, _reader(), setup_intent, expected))


@bp.post("/pledge/refresh")
@login_required
@limiter.limit("30 per minute")
@_json_step
def refresh() -> ResponseReturnValue:
    """After 3-D Secure: the browser's `confirmCardPayment` is done, and what Stripe says of
    the subscription now is recorded (a POST, so it may commit)."""
    return _answer(starting.refresh(db, _gateway_or_404(), _reader()))


@bp.post("/pledge/card")
@login_required
@limiter.limit("20 per minute;100 per day")
@_json_step
def card_start() -> ResponseReturnValue:
    gw = _gateway_or_404()
    attempt = check_attempt(_payload().get("attempt"))
    setup = managing.start_card_update(db, gw, _reader(), attempt)
    db.commit()
    return jsonify(ok=True, client_secret=setup.client_secret)


@bp.post("/pledge/card/confirm")
@login_required
@limiter.limit("20 per minute")
@_json_step
def card_confirm() -> ResponseReturnValue:
    gw = _gateway_or_404()
    setup_intent = check_setup_intent(_payload().get("setup_intent"))
    pledge, retried = managing.finish_card_update(db, gw, _reader(), setup_intent)
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
    current = queries.current_pledge(db, _reader().id)
    manageable = current is not None and current.status in queries.MANAGEABLE
    card_ready = gateway() is not None and bool(settings.stripe_publishable_key)
    if manageable and card_ready:
        g.csp_stripe = True
    return render_template(
        "pledges/pledge.html",
        pledge=current,
        manageable=manageable,
        ended=current is not None and current.status in ENDED_STATUSES,
        payments=queries.payments_of(db, _reader().id),
        option=currency_option(settings, current.currency if current else None),
        amount_form=forms.get("amount_form") or ChangeAmountForm(),
        cancel_form=forms.get("cancel_form") or CancelForm(),
        action_form=ActionForm(),
        stripe_js_url=templating.stripe_js_url(settings),
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
    gw = _gateway_or_404()
    try:
        result = action(gw)
    except PledgeError as exc:
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
    current = queries.open_pledge(db, _reader().id)
    currency = current.currency if current else None

    def action(gw: Gateway) -> Pledge:
        choice = parse_choice(_settings(), currency, form.amount.data, form.other_amount.data)
        return managing.change_amount(db, gw, _reader(), choice)

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
    pledge_url = _settings().site_url + url_for("pledges.pledge")  # for the confirmation mail

    def action(gw: Gateway) -> Pledge:
        return managing.cancel(db, gw, _reader(), form.reason.data or "", pledge_url)

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
        lambda gw: managing.resume(db, gw, _reader()),
        _("Your pledge continues. Thank you for staying with us."),
    )


@bp.get("/pledge/receipts/<int:payment_id>")
@login_required
def receipt(payment_id: int) -> ResponseReturnValue:
    found = queries.receipt(db, _reader().id, payment_id)
    if found is None:
        abort(404)  # someone else's payment looks exactly like no payment
    payment, pledge_row = found
    response = current_app.make_response(
        render_template("pledges/receipt.html", payment=payment, pledge=pledge_row)
    )
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response
