"""Sign-up, the address check, password resets and the email-change link (the pages a
mailed link leads to). Sign-in is in login_views.py, the account page in account_views.py."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from patrons import mail
from patrons.accounts import auth, service, tokens
from patrons.accounts.forms import ConfirmForm, EmailForm, ResetPasswordForm
from patrons.accounts.view_helpers import absolute, bp, form_email, secret
from patrons.core.db import session as db
from patrons.core.extensions import limiter


@bp.route("/verify", methods=["GET", "POST"])
def verify() -> ResponseReturnValue:
    """GET shows a button; only the POST confirms (mail scanners follow links)."""
    token = request.values.get("token", "")
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            user = service.verify_email(db, token, secret())
        except tokens.TokenError as exc:
            return render_template("accounts/verify.html", error=str(exc), form=form), 400
        if not current_user.is_authenticated:
            auth.sign_in(db, user, remember=False, user_agent=request.user_agent.string)
        db.commit()
        flash(_("Thank you: your email address is confirmed."), "success")
        return redirect(url_for("accounts.account"))
    if request.method == "POST":
        abort(400)
    return render_template("accounts/verify.html", token=token, form=form)


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit("5 per minute;20 per hour", methods=["POST"])
@limiter.limit("3 per hour", methods=["POST"], key_func=form_email)
def forgot_password() -> ResponseReturnValue:
    """Ask for a reset link; the answer is the same whether or not the address is known."""
    form = EmailForm()
    if form.validate_on_submit():
        service.request_password_reset(
            db, form.email.data or "", absolute("accounts.reset") + "?token=", secret()
        )
        db.commit()
        mail.send_soon()
        return render_template("accounts/reset_sent.html", email=form.email.data)
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/forgot_password.html", form=form), status


@bp.route("/reset/new", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def reset() -> ResponseReturnValue:
    """GET shows the form (changing nothing); POST sets the password and signs in."""
    form = ResetPasswordForm()
    token = form.token.data or request.args.get("token", "")
    form.token.data = token
    try:
        service.user_for_reset(db, token, secret())
    except tokens.TokenError as exc:
        return render_template("accounts/reset.html", form=None, error=str(exc)), 400
    if form.validate_on_submit():
        user = service.reset_password(db, token, form.new_password.data or "", secret())
        auth.sign_in(db, user, remember=False, user_agent=request.user_agent.string)
        db.commit()
        mail.send_soon()
        flash(_("Your new password is set, and you are signed in."), "success")
        return redirect(url_for("accounts.account"))
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/reset.html", form=form), status


@bp.route("/account/email/confirm", methods=["GET", "POST"])
def confirm_email_change() -> ResponseReturnValue:
    """GET shows a button; only the POST switches the address."""
    token = request.values.get("token", "")
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            service.confirm_email_change(db, token, secret())
        except (tokens.TokenError, service.EmailTaken) as exc:
            db.rollback()
            return render_template("accounts/confirm_email.html", error=str(exc), form=form), 400
        db.commit()
        flash(_("Your email address is changed."), "success")
        return redirect(url_for("accounts.account"))
    if request.method == "POST":
        abort(400)
    return render_template("accounts/confirm_email.html", token=token, form=form)
