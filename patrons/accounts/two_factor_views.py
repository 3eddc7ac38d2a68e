"""The two-factor pages: enrolment (QR code and the secret as text), the code asked at
sign-in, and "confirm it is you" before staff actions on money or people. Turning it off
and new recovery codes are on the account page (account_views.py).

The secret being enrolled stays in the cookie session (signed, HttpOnly) until a code
confirms it; only then is it stored (users.totp_secret). Codes are checked in totp.py.
"""

from __future__ import annotations

from typing import cast

from flask import flash, make_response, redirect, render_template, request, url_for
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.wrappers import Response

from patrons.accounts import audit, auth, second_factor, sessions, totp
from patrons.accounts.passwords import verify_password
from patrons.accounts.signing_in import complete
from patrons.accounts.two_factor_forms import ChallengeForm, EnrolForm, ReauthForm
from patrons.accounts.view_helpers import bp, settings
from patrons.core import clock
from patrons.core.db import session as db
from patrons.core.extensions import limiter, login_required
from patrons.core.urls import safe_next
from patrons.models import User

ENROL_KEY = "two_factor_enrol"


def refused(response: Response) -> bool:
    """Only refusals count against the limits (a right code is never slowed)."""
    return response.status_code == 400


def _user() -> User:
    return cast(User, current_user)


def _user_key() -> str:
    return f"reauth:{_user().id if current_user.is_authenticated else None}"


def _token() -> str | None:
    return cast("str | None", cookie_session.get(auth.SESSION_TOKEN_KEY))


def codes_page(codes: list[str], target: str) -> ResponseReturnValue:
    """The recovery codes, shown this once (never stored in a cookie, never cached)."""
    response = make_response(render_template("accounts/two_factor_codes.html",
                                             codes=codes, next=target))  # fmt: skip
    response.cache_control.no_store = True
    response.cache_control.private = True
    return response


def _enrol_secret(user: User) -> str:
    held = cookie_session.get(ENROL_KEY)
    if isinstance(held, dict) and held.get("uid") == user.id and held.get("secret"):
        return str(held["secret"])
    secret = totp.new_secret()
    cookie_session[ENROL_KEY] = {"uid": user.id, "secret": secret}
    return secret


@bp.route("/account/two-factor", methods=["GET", "POST"])
@login_required
@second_factor.fresh_second_factor_required
@limiter.limit("10 per minute;30 per hour", methods=["POST"], deduct_when=refused)
def two_factor_setup() -> ResponseReturnValue:
    user = _user()
    target = safe_next(request.values.get("next"), url_for("accounts.account"))
    if second_factor.required_at_all(user):
        flash(_("Two-factor sign-in is already on for your account."), "info")
        return redirect(target, code=303)
    secret = _enrol_secret(user)
    form = EnrolForm(next=target)
    if form.validate_on_submit():
        step = totp.matching_step(secret, form.code.data or "", clock.now())
        if step is not None:
            codes = totp.enable(db, user, secret, step)
            sessions.end_other_sessions(db, user, keep_token=_token())
            sessions.mark_reauthenticated(db, _token())
            db.commit()
            cookie_session.pop(ENROL_KEY, None)
            return codes_page(codes, target)
        form.code.errors = [_("That code does not match. Check the time on your phone, and "
                              "type the code your app shows now.")]  # fmt: skip
    uri = totp.provisioning_uri(secret, user.email, settings().site_name)
    return render_template(
        "accounts/two_factor_setup.html", form=form, secret=totp.grouped(secret),
        qr=totp.qr_svg(uri, _("QR code for your authenticator app")),
    ), 400 if request.method == "POST" else 200  # fmt: skip


@bp.route("/login/two-factor", methods=["GET", "POST"])
@limiter.limit("10 per minute;50 per hour", methods=["POST"], deduct_when=refused)
@limiter.limit("5 per 10 minutes", methods=["POST"], key_func=second_factor.pending_key,
               deduct_when=refused)  # fmt: skip
@limiter.limit("10 per hour;30 per day", methods=["POST"],
               key_func=second_factor.pending_account_key, deduct_when=refused)  # fmt: skip
def two_factor_challenge() -> ResponseReturnValue:
    """The second step of a sign-in: a code from the app, or a recovery code."""
    pending = second_factor.pending(db)
    if pending is None or not pending.current:
        second_factor.drop_pending()
        if request.method == "GET" and pending is None:
            return redirect(url_for("accounts.login"))
        return render_template("accounts/two_factor_challenge.html", form=None), 400
    form = ChallengeForm()
    if form.validate_on_submit():
        user = pending.user
        used = totp.verify(db, user, form.code.data or "", "sign_in")
        if used is not None:
            complete(db, user, remember=pending.remember, method=pending.method)
            sessions.mark_reauthenticated(db, _token())
            if form.remember_device.data:
                second_factor.remember_device(db, user)
            db.commit()
            if used == totp.RECOVERY:
                left = totp.recovery_codes_left(db, user)
                flash(ngettext("You used a recovery code. %(num)d is left: make new ones on "
                               "your account page.", "You used a recovery code. %(num)d are "
                               "left: make new ones on your account page if you are running "
                               "out.", left), "info")  # fmt: skip
            return redirect(pending.target)
        audit.record(db, audit.TWO_FACTOR_FAILED, user=user, detail={"where": "sign_in"})
        db.commit()
        form.code.errors = [_("That code is not right, or it was used already. Type the "
                              "code your app shows now.")]  # fmt: skip
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/two_factor_challenge.html", form=form), status


def _proved(user: User, proof: str) -> bool:
    if second_factor.required_at_all(user):
        return totp.verify(db, user, proof, "reauth") is not None
    return verify_password(user.password_hash, proof)


@bp.route("/account/confirm", methods=["GET", "POST"])
@login_required
@limiter.limit("5 per minute;30 per hour", methods=["POST"], key_func=_user_key,
               deduct_when=refused)  # fmt: skip
def reauth() -> ResponseReturnValue:
    """Confirm it is you (a code, or the password without two-factor), then go back: to
    the page asked for, or to the form that was sent, to send it again."""
    user = _user()
    form = ReauthForm()
    target = safe_next(form.next.data or request.args.get("next"), url_for("accounts.account"))
    form.next.data = target
    post = request.form.get("then") == "post"
    kept = second_factor.kept_fields(request.form.items(multi=True), "keep-") if post else []
    if form.validate_on_submit():
        if _proved(user, form.proof.data or ""):
            sessions.mark_reauthenticated(db, _token())
            db.commit()
            if post:
                return render_template("accounts/reauth_continue.html", target=target,
                                       kept=kept)  # fmt: skip
            return redirect(target, code=303)
        two_factor = second_factor.required_at_all(user)
        kind = audit.TWO_FACTOR_FAILED if two_factor else audit.SIGN_IN_FAILED
        audit.record(db, kind, user=user, detail={"where": "reauth"})
        db.commit()
        form.proof.errors = [_("That code is not right, or it was used already.") if two_factor
                             else _("That is not your password.")]  # fmt: skip
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/reauth.html", form=form, kept=kept, post=post), status
