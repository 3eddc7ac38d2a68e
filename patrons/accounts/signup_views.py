"""Sign-up, and the page where the reader types the code from the mail (docs/security.md).

Every sign-up ends on the same code page whether or not the address had an account
(signup.py). The page knows its account from the cookie session only (`CONFIRM`, with the
account's id sealed), never from the URL. A right code confirms the address and signs the
reader in, then goes on to where they were going (`next`: their pledge, with the amount and
currency they chose). A signed-in reader whose address is unconfirmed comes here from the
support page (`confirm_to_pledge`) before the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from flask import flash, redirect, render_template, request, url_for
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from patrons import attribution, mail
from patrons.accounts import auth, email_tokens
from patrons.accounts import signup as signing_up
from patrons.accounts.forms import ConfirmForm, SignupForm
from patrons.accounts.signing_in import finish_sign_in
from patrons.accounts.view_helpers import absolute, bp, form_email, settings
from patrons.core.db import session as db
from patrons.core.extensions import limiter, login_required
from patrons.core.urls import safe_next
from patrons.models import User
from patrons.pledges import templating
from patrons.pledges.choice import parse_choice
from patrons.pledges.errors import PledgeError

CONFIRM = "confirm"  # the cookie session's key: which account the code page is for
CODE_MAX = 20  # a longer "code" is refused before anything else


@dataclass(frozen=True)
class Confirming:
    account: int  # signup.NOBODY for an address that already had an account
    email: str  # as typed: the rate limits' key, and what the page shows
    next: str  # where a right code leads
    tries: int  # wrong codes typed on this page since the last code was sent


def _reader() -> User:
    return cast(User, current_user)


def _confirming() -> Confirming | None:
    """The code page's account: the one in the session, else the signed-in reader's own
    while it is unconfirmed, else none."""
    saved = cookie_session.get(CONFIRM)
    if isinstance(saved, dict):
        tries = saved.get("tries")
        return Confirming(
            signing_up.unseal(saved.get("who")), str(saved.get("email", ""))[:254],
            safe_next(saved.get("next"), url_for("accounts.account")),
            tries if isinstance(tries, int) else 0,
        )  # fmt: skip
    if current_user.is_authenticated and _reader().email_verified_at is None:
        return Confirming(_reader().id, _reader().email, url_for("accounts.account"), 0)
    return None


def _keep(state: Confirming) -> None:
    cookie_session[CONFIRM] = {"who": signing_up.seal(state.account), "email": state.email,
                               "next": state.next, "tries": state.tries}  # fmt: skip


def confirm_key() -> str:
    """Rate-limit key per account on the code page: the address it is for (the same key
    whether or not that address has an account)."""
    state = _confirming()
    return "confirm:" + (state.email if state is not None else form_email())


def _verify_url() -> str:
    return absolute("accounts.verify") + "?token="


# -- sign-up ---------------------------------------------------------------------------------


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("10 per minute;50 per day", methods=["POST"])
@limiter.limit("3 per hour", methods=["POST"], key_func=form_email)
def signup() -> ResponseReturnValue:
    target = safe_next(request.args.get("next"), url_for("accounts.account"))
    if current_user.is_authenticated:
        return redirect(target)
    form = SignupForm()
    if form.validate_on_submit():
        email = auth.normalise_email(form.email.data or "")
        account = signing_up.NOBODY
        if not form.website.data:  # bots fill in the field people never see
            result = signing_up.sign_up(
                db, email, form.password.data or "", form.display_name.data or "",
                _verify_url(), target,
            )  # fmt: skip
            if result.created:
                attribution.stamp_user(db, result.user, request.cookies)
                account = result.user.id
            db.commit()
            mail.send_soon()
        _keep(Confirming(account, email, target, 0))
        return redirect(url_for("accounts.signup_sent"), code=303)
    status = 400 if request.method == "POST" else 200
    returning = target.startswith(url_for("pledges.support"))
    page = render_template("accounts/signup.html", form=form, next=target, returning=returning)
    return page, status


# -- the code page ---------------------------------------------------------------------------


def _code_page(state: Confirming | None, error: str = "", status: int = 200) -> ResponseReturnValue:
    hours = int(email_tokens.LIFETIMES[email_tokens.VERIFY].total_seconds() // 3600)
    page = render_template("accounts/signup_sent.html", state=state, form=ConfirmForm(),
                           error=error, hours=hours)  # fmt: skip
    return page, status


@bp.route("/signup/sent", methods=["GET", "POST"])
@limiter.limit("10 per minute;50 per hour", methods=["POST"])
@limiter.limit("10 per hour", methods=["POST"], key_func=confirm_key)
def signup_sent() -> ResponseReturnValue:
    """GET: type the code from the mail. POST: check it; a right one confirms the address,
    signs in and goes on to `next`."""
    state = _confirming()
    if request.method == "GET":
        return _code_page(state)
    form = ConfirmForm()
    if not form.validate_on_submit():
        return _code_page(state, _("The form expired. Type the code again."), 400)
    if state is None:
        return _code_page(state, _("This page no longer knows which address to confirm. Open "
                                   "the link in the email instead."), 400)  # fmt: skip
    code = "".join(request.form.get("code", "")[:CODE_MAX].split()).replace("-", "")
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return _code_page(state, _("Type the six digits from the email."), 400)
    try:
        used = signing_up.check_code(db, state.account, code, state.tries)
    except email_tokens.TokenError as exc:
        db.commit()  # the try counts
        _keep(Confirming(state.account, state.email, state.next, state.tries + 1))
        return _code_page(state, str(exc), 400)
    cookie_session.pop(CONFIRM, None)
    if current_user.is_authenticated and _reader().id == used.user.id:
        db.commit()
        response: ResponseReturnValue = redirect(state.next, code=303)
    else:
        response = finish_sign_in(db, used.user, remember=False, target=state.next,
                                  method="code")  # fmt: skip
    flash(_("Thank you: your email address is confirmed."), "success")
    return response


@bp.post("/verify/resend")
@limiter.limit("5 per hour")
@limiter.limit("3 per hour", key_func=confirm_key)
def resend_verification() -> ResponseReturnValue:
    """The code page's "Send a new code" (and the account page's): a new code and link for
    the page's account; for a taken address, its owner hears of it again instead."""
    state = _confirming()
    if not ConfirmForm().validate_on_submit() or state is None:
        return _code_page(state, _("This page no longer knows which address to confirm. Open "
                                   "the link in the email instead."), 400)  # fmt: skip
    user = db.get(User, state.account) if state.account != signing_up.NOBODY else None
    if user is not None and user.email_verified_at is not None:  # by the link, meanwhile
        cookie_session.pop(CONFIRM, None)
        flash(_("Your email address is already confirmed."), "info")
        return redirect(state.next if current_user.is_authenticated else url_for(
            "accounts.login", next=state.next), code=303)  # fmt: skip
    if user is not None:
        signing_up.send_code(db, user, _verify_url(), state.next)
    else:
        signing_up.remind_owner(db, state.email)
    db.commit()
    mail.send_soon()
    _keep(Confirming(state.account, state.email, state.next, 0))
    flash(_("A new code is on its way. The earlier one no longer works."), "info")
    return redirect(url_for("accounts.signup_sent"), code=303)


# -- before the card: a signed-in reader confirms their address ------------------------------


@bp.post("/support/confirm")
@login_required
@limiter.limit("10 per hour")
@limiter.limit("5 per hour", key_func=lambda: f"confirm-user:{getattr(current_user, 'id', '')}")
def confirm_to_pledge() -> ResponseReturnValue:
    """The support page's Continue for a reader whose address is unconfirmed: mail a code,
    then the code page, which leads back to the same choice (amount and currency)."""
    form = request.form
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("pledges.support"), code=303)
    try:
        choice = parse_choice(settings(), form.get("currency"), form.get("amount"),
                              form.get("other_amount"))  # fmt: skip
    except PledgeError:  # the support page says what is wrong with it
        args: dict[str, Any] = {
            name: form.get(name, "")[:12] for name in ("currency", "amount", "other_amount")
        }
        return redirect(url_for("pledges.support", **args), code=303)
    back = url_for("pledges.support", currency=choice.currency, amount=choice.amount)
    reader = _reader()
    if reader.email_verified_at is not None:
        return redirect(back, code=303)
    signing_up.send_code(db, reader, _verify_url(), back)
    db.commit()
    mail.send_soon()
    _keep(Confirming(reader.id, reader.email, back, 0))
    response = redirect(url_for("accounts.signup_sent"), code=303)
    templating.remember_choice(response, choice, secure=settings().is_production)
    return response
