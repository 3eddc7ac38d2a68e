"""Becoming a patron: the support page (choose an amount, enter a card) and its card steps,
small JSON endpoints called by static/js/pledge.js (CSRF token in the X-CSRFToken header);
and, for a pledge whose first payment never went through, finishing it or starting over.

Bad input is a 4xx with a message. Each view parses the request, calls one service
(starting.py, finishing.py) and answers; only the POST handlers commit.
"""

from __future__ import annotations

import secrets
from typing import cast

from flask import current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from patrons import attribution
from patrons.core.db import session as db
from patrons.core.extensions import limiter, login_required
from patrons.core.money import CurrencyOption
from patrons.models import Pledge
from patrons.pledges import finishing, queries, starting, templating
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
from patrons.pledges.forms import ActionForm
from patrons.pledges.view_helpers import (
    answer,
    bp,
    gateway_or_404,
    json_step,
    payload,
    reader,
    retry_headers,
    settings,
)

# -- the support page ------------------------------------------------------------------------


@bp.get("/support")
def support() -> ResponseReturnValue:
    config, args = settings(), request.args
    choice, error = None, None
    currency = currency_option(config, args.get("currency"))
    if "show" not in args and (args.get("amount") or args.get("other_amount")):
        try:
            choice = parse_choice(
                config, args.get("currency"), args.get("amount"), args.get("other_amount")
            )
        except PledgeError as exc:
            error = exc.message
    elif currency is None:
        choice = templating.remembered_choice(config, request.cookies)
    # Continue, signed out: the page says why an account is needed and offers one, and the
    # choice is kept (in the links and a cookie) through sign-up, the code and sign-in
    anonymous = not current_user.is_authenticated
    needs_account = bool(choice and "continue" in args and anonymous and gateway() is not None)
    other_text = args.get("other_amount", "")[:12]
    page = _support_page(choice, currency, error, other_text, needs_account=needs_account)
    response = current_app.make_response((page, 400 if error else 200))
    if needs_account and choice is not None:
        templating.remember_choice(response, choice, secure=config.is_production)
    source = attribution.from_link(db, args)  # the banner's or the notice's link
    remembered = attribution.remember(response, source, secure=config.is_production)
    return cast(ResponseReturnValue, remembered)


def _support_page(
    choice: Choice | None,
    currency: CurrencyOption | None,
    error: str | None,
    other_text: str,
    *,
    needs_account: bool = False,
) -> str:
    config = settings()
    pledge = queries.open_pledge(db, reader().id) if current_user.is_authenticated else None
    unfinished = pledge if pledge is not None and pledge.status in queries.UNFINISHED else None
    if choice is None and unfinished is not None:  # finishing it: its amount, preselected
        choice = Choice(unfinished.currency, unfinished.amount)
    option = currency or currency_option(
        config, choice.currency if choice else None
    ) or config.pledge_options[0]  # fmt: skip
    amount = choice.amount if choice and choice.currency == option.code else option.suggested[0]
    gw = gateway()
    waiting = None
    if gw is not None and unfinished is not None and unfinished.stripe_subscription_id:
        subscription_id = unfinished.stripe_subscription_id
        db.rollback()  # no transaction open during the call to Stripe (a read: no commit)
        waiting = finishing.waits_for_the_bank(gw, subscription_id)
    ready = gw is not None and bool(config.stripe_publishable_key)
    # the card only for a confirmed address: receipts and notices must reach the reader
    confirmed = current_user.is_authenticated and reader().email_verified_at is not None
    card_form = ready and confirmed and (pledge is None or bool(unfinished))
    back = url_for("pledges.support", currency=option.code, amount=amount)
    if card_form:
        g.csp_stripe = True  # the card form loads Stripe.js (web.content_security_policy)
    return render_template(
        "pledges/support.html",
        ready=ready,
        card_form=card_form,
        option=option,
        amount=amount,
        error=error,
        pledge=pledge if unfinished is None else None,
        unfinished=unfinished,
        waiting=waiting,
        start_over_form=ActionForm(),
        options_data=templating.options_data(config),
        stripe_js_url=templating.stripe_js_url(config),
        confirmed=confirmed,
        needs_account=needs_account,
        login_next=back,
        signup_url=url_for("accounts.signup", next=back),
        attempt=secrets.token_urlsafe(12),
        other_text=other_text,
    )


# -- the card steps (JSON) -------------------------------------------------------------------


@bp.post("/pledge/start")
@login_required
@limiter.limit("30 per minute;200 per day")
@json_step
def start() -> ResponseReturnValue:
    gw = gateway_or_404()
    if reader().email_verified_at is None:  # receipts and notices must reach the reader
        raise PledgeError(
            _("Confirm your email address before you pledge: reload this page to get a code."),
            403,
        )
    data = payload()
    choice = parse_choice(
        settings(), data.get("currency"), data.get("amount"), data.get("other_amount")
    )
    check_plan(choice, data.get("plan"))
    attempt = check_attempt(data.get("attempt"))
    setup = starting.start_pledge(db, gw, reader(), choice, attempt)
    attribution.stamp_pledge(db, setup.pledge_id, reader(), request.cookies)
    db.commit()
    return jsonify(ok=True, client_secret=setup.client_secret, amount=choice.amount,
                   currency=choice.currency)  # fmt: skip


@bp.post("/pledge/subscribe")
@login_required
@limiter.limit("20 per minute")
@json_step
def subscribe() -> ResponseReturnValue:
    gw = gateway_or_404()
    data = payload()
    setup_intent = check_setup_intent(data.get("setup_intent"))
    expected = None
    if "currency" in data:  # the amount the page showed, as it sent it to start
        expected = parse_choice(
            settings(), data.get("currency"), data.get("amount"), data.get("other_amount")
        )
    return answer(starting.subscribe(db, gw, reader(), setup_intent, expected))


@bp.post("/pledge/refresh")
@login_required
@limiter.limit("60 per minute")
@json_step
def refresh() -> ResponseReturnValue:
    """After 3-D Secure, or while another request creates the subscription: what Stripe
    says of it now is recorded (a POST, so it may commit)."""
    return answer(finishing.refresh(db, gateway_or_404(), reader()))


# -- an unfinished pledge: finish it, or start over ------------------------------------------


@bp.post("/pledge/finish")
@login_required
@limiter.limit("20 per minute;100 per day")
@json_step
def finish() -> ResponseReturnValue:
    gw = gateway_or_404()
    attempt = check_attempt(payload().get("attempt"))
    return answer(finishing.finish(db, gw, reader(), attempt))


@bp.post("/pledge/finish/card")
@login_required
@limiter.limit("20 per minute")
@json_step
def finish_card() -> ResponseReturnValue:
    gw = gateway_or_404()
    setup_intent = check_setup_intent(payload().get("setup_intent"))
    return answer(finishing.finish_with_card(db, gw, reader(), setup_intent))


@bp.post("/pledge/start-over")
@login_required
@limiter.limit("20 per hour")
def start_over() -> ResponseReturnValue:
    form = ActionForm(formdata=request.form)
    if not form.validate_on_submit():
        return _support_refusal(PledgeError(_("The form expired. Reload the page."), 400))
    try:
        pledge: Pledge = finishing.start_over(db, gateway_or_404(), reader())
    except PledgeError as exc:
        db.rollback()
        return _support_refusal(exc)
    db.commit()
    flash(_("Your unfinished pledge was canceled, and nothing was charged. Choose an amount "
            "to start again."), "success")  # fmt: skip
    back = url_for("pledges.support", currency=pledge.currency, amount=pledge.amount)
    return redirect(back, code=303)


def _support_refusal(exc: PledgeError) -> ResponseReturnValue:
    flash(exc.message, "error")
    page = _support_page(None, None, None, "")
    return page, exc.status, retry_headers(exc)
