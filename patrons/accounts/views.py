"""Sign in and sign out (the accounts issue adds sign-up, verification and the rest)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from patrons.accounts import auth
from patrons.accounts.forms import LoginForm
from patrons.db import session as db
from patrons.extensions import limiter
from patrons.urls import safe_next

bp = Blueprint("accounts", __name__)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("5 per minute", methods=["POST"], deduct_when=lambda r: r.status_code != 302)
def login():  # type: ignore[no-untyped-def]
    target = safe_next(request.values.get("next"), url_for("articles.index"))
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm()
    if form.validate_on_submit():
        user = auth.authenticate(db, form.email.data or "", form.password.data or "")
        if user is not None:
            db.commit()
            session.clear()  # a fresh session at sign-in: no fixation
            login_user(user, remember=bool(form.remember.data))
            return redirect(target)
        flash("That email and password do not match an account.", "error")
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/login.html", form=form, next=target), status


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("articles.index"))
