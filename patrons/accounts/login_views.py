"""Sign-in and sign-out (every way in ends in signing_in.finish_sign_in).

How much guessing a password sign-in allows is throttle.py's: checked here, inside the
view, so the rules are exact (the owner's known device is counted apart, and a refusal
says for how long)."""

from __future__ import annotations

import math
from datetime import timedelta

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.routing import BuildError

from patrons.accounts import audit, auth, throttle
from patrons.accounts.forms import LoginForm
from patrons.accounts.signing_in import finish_sign_in
from patrons.accounts.view_helpers import bp
from patrons.core.db import session as db
from patrons.core.urls import safe_next


def login_link_url() -> str | None:
    """The "Email me a sign-in link" page, once it exists (link_views.py)."""
    try:
        return url_for("accounts.login_link")
    except BuildError:
        return None


def _page(form: LoginForm, target: str, status: int, **refusal: object) -> tuple[str, int]:
    page = render_template(
        "accounts/login.html", form=form, next=target, login_link=login_link_url(), **refusal
    )
    return page, status


def _refused(form: LoginForm, target: str, verdict: throttle.Verdict) -> ResponseReturnValue:
    # whole seconds, rounded up, in the words and in Retry-After alike ("1 minute", never a
    # "59 seconds" that differs from another answer by how long the request took)
    seconds = math.ceil((verdict.wait or timedelta(minutes=1)).total_seconds())
    wait = timedelta(seconds=seconds)
    if verdict.by_ip:
        message = _(
            "Too many failed sign-ins from your network. Try again in %(wait)s.",
            wait=format_timedelta(wait, threshold=1),
        )
    else:
        message = _(
            "Too many failed sign-ins with this address. Try again in %(wait)s.",
            wait=format_timedelta(wait, threshold=1),
        )
    body, status = _page(form, target, 429, refusal=message)
    return body, status, {"Retry-After": str(seconds)}


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    target = safe_next(request.values.get("next"), url_for("articles.index"))
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm()
    if form.validate_on_submit():
        verdict = throttle.check(db, form.email.data or "")
        if verdict.wait is not None:
            return _refused(form, target, verdict)
        user = verdict.user
        if auth.password_matches(user, form.password.data or "") and user is not None:
            throttle.succeeded(user)
            db.commit()  # also when a second factor comes first (finish_sign_in)
            remember = bool(form.remember.data)
            return finish_sign_in(db, user, remember=remember, target=target, method="password")
        throttle.failed(db, verdict)
        flash(_("That email and password do not match an account."), "error")
    return _page(form, target, 400 if request.method == "POST" else 200)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    if current_user.is_authenticated:
        audit.record(db, audit.SIGN_OUT, user=current_user)
    auth.sign_out(db)
    db.commit()
    flash(_("You are signed out."), "info")
    return redirect(url_for("articles.index"))
