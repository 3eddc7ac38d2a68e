"""Sign-in and sign-out (every way in ends in signing_in.finish_sign_in)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from patrons.accounts import audit, auth
from patrons.accounts.forms import LoginForm
from patrons.accounts.signing_in import finish_sign_in
from patrons.accounts.view_helpers import bp, failed, form_email
from patrons.core.db import session as db
from patrons.core.extensions import limiter
from patrons.core.urls import safe_next


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("5 per minute", methods=["POST"], deduct_when=failed)
@limiter.limit("5 per minute", methods=["POST"], key_func=form_email, deduct_when=failed)
def login() -> ResponseReturnValue:
    target = safe_next(request.values.get("next"), url_for("articles.index"))
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm()
    if form.validate_on_submit():
        user = auth.authenticate(db, form.email.data or "", form.password.data or "")
        if user is not None:
            remember = bool(form.remember.data)
            return finish_sign_in(db, user, remember=remember, target=target, method="password")
        flash(_("That email and password do not match an account."), "error")
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/login.html", form=form, next=target), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    if current_user.is_authenticated:
        audit.record(db, audit.SIGN_OUT, user=current_user)
    auth.sign_out(db)
    db.commit()
    flash(_("You are signed out."), "info")
    return redirect(url_for("articles.index"))
