"""The pages a mailed link leads to: the address check, password resets and the
email-change link. Each link works once (email_tokens.py); a GET shows a button or a form
and changes nothing (mail scanners open links), the POST acts. Sign-in is in
login_views.py, the sign-in link in link_views.py, the account page in account_views.py."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from patrons import mail
from patrons.accounts import email_tokens, recovery, service
from patrons.accounts.forms import ConfirmForm, EmailForm, ResetPasswordForm
from patrons.accounts.signing_in import finish_sign_in
from patrons.accounts.view_helpers import absolute, bp, form_email
from patrons.core.db import session as db
from patrons.core.extensions import limiter
from patrons.core.urls import safe_next


def _verify_page(form: ConfirmForm, token: str = "", error: str = "") -> ResponseReturnValue:
    if error:
        return render_template("accounts/verify.html", form=form, error=error), 400
    return render_template("accounts/verify.html", form=form, token=token)


@bp.route("/verify", methods=["GET", "POST"])
def verify() -> ResponseReturnValue:
    """GET shows a button; only the POST confirms. The first use of a link nothing has
    overtaken signs in (and goes on to the token's `next`); a second use confirms nothing
    and signs nobody in."""
    token = request.values.get("token", "")
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            verified = service.verify_email(db, token)
        except email_tokens.TokenUsed:
            db.rollback()
            return render_template("accounts/verify.html", form=form, already=True)
        except email_tokens.TokenError as exc:
            db.rollback()
            return _verify_page(form, error=str(exc))
        target = safe_next(verified.next_url, url_for("accounts.account"))
        db.commit()
        if current_user.is_authenticated:
            response: ResponseReturnValue = redirect(target)
        elif verified.may_sign_in:
            response = finish_sign_in(db, verified.user, remember=False, target=target,
                                      method="verify")  # fmt: skip
        else:
            flash(_("Thank you: your email address is confirmed. Sign in to continue."), "success")
            return redirect(url_for("accounts.login", next=target))
        flash(_("Thank you: your email address is confirmed."), "success")
        return response
    if request.method == "POST":
        abort(400)
    try:
        email_tokens.peek(db, email_tokens.VERIFY, token, any_stamp=True)
    except email_tokens.TokenUsed:
        return render_template("accounts/verify.html", form=form, already=True)
    except email_tokens.TokenError as exc:
        return _verify_page(form, error=str(exc))
    return _verify_page(form, token=token)


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit("5 per minute;20 per hour", methods=["POST"])
@limiter.limit("3 per hour", methods=["POST"], key_func=form_email)
def forgot_password() -> ResponseReturnValue:
    """Ask for a reset link: the same page, work and one queued mail whether or not the
    address has an account (recovery.py)."""
    form = EmailForm()
    if form.validate_on_submit():
        recovery.request_password_reset(
            db, form.email.data or "", absolute("accounts.reset") + "?token=",
            absolute("accounts.signup"),
        )  # fmt: skip
        db.commit()
        mail.send_soon()
        return render_template(
            "accounts/reset_sent.html", email=form.email.data, hours=recovery.RESET_HOURS
        )
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/forgot_password.html", form=form), status


@bp.route("/reset/new", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def reset() -> ResponseReturnValue:
    """GET shows the form (changing nothing); POST sets the password, once, and signs in."""
    form = ResetPasswordForm()
    token = form.token.data or request.args.get("token", "")
    form.token.data = token
    try:
        form.account = email_tokens.peek(db, email_tokens.RESET, token).user
        if form.validate_on_submit():
            user = recovery.reset_password(db, token, form.new_password.data or "")
            db.commit()
            target = url_for("accounts.account")
            response = finish_sign_in(db, user, remember=False, target=target, method="reset")
            mail.send_soon()
            flash(_("Your new password is set."), "success")
            return response
    except email_tokens.TokenError as exc:
        db.rollback()
        return render_template("accounts/reset.html", form=None, error=str(exc)), 400
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/reset.html", form=form), status


@bp.route("/account/email/confirm", methods=["GET", "POST"])
def confirm_email_change() -> ResponseReturnValue:
    """GET shows a button; only the POST switches the address (once)."""
    token = request.values.get("token", "")
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            service.confirm_email_change(db, token)
        except (email_tokens.TokenError, service.EmailTaken) as exc:
            db.rollback()
            return render_template("accounts/confirm_email.html", error=str(exc), form=form), 400
        db.commit()
        flash(_("Your email address is changed."), "success")
        return redirect(url_for("accounts.account"))
    if request.method == "POST":
        abort(400)
    return render_template("accounts/confirm_email.html", token=token, form=form)
