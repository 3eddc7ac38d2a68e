"""Sign in with an emailed link: ask for it with the address, open it, press "Sign in".

The link works once, for 15 minutes, and by default only in the browser that asked for it
(SIGN_IN_LINK_SAME_BROWSER): the asking browser keeps a random nonce in its cookie session
and the token is bound to it (email_tokens.py), so a link read from a forwarded mail, a
mailbox or a server log opens nothing elsewhere. Asking answers the same page, with the same
work and one queued mail, whether or not the address has an account (recovery.py). It is
the owner's way in while someone is guessing at the password: no per-account backoff
applies here, and signing in clears it (signing_in.finish_sign_in).
"""

from __future__ import annotations

import secrets

from flask import abort, redirect, render_template, request, url_for
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField

from patrons import mail
from patrons.accounts import email_tokens, recovery
from patrons.accounts.forms import EmailForm
from patrons.accounts.signing_in import finish_sign_in
from patrons.accounts.view_helpers import absolute, bp, form_email, settings
from patrons.core.db import session as db
from patrons.core.extensions import limiter
from patrons.core.urls import safe_next

BROWSER_KEY = "sign_in_link_browser"  # the cookie session's nonce naming this browser


class OpenLinkForm(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no types
    remember = BooleanField(_l("Keep me signed in on this device"))


def _browser() -> str | None:
    """This browser's nonce, when links are bound to the browser that asked."""
    return cookie_session.get(BROWSER_KEY) if settings().sign_in_link_same_browser else None


@bp.route("/login/link", methods=["GET", "POST"])
@limiter.limit("5 per minute;20 per hour", methods=["POST"])
@limiter.limit("3 per hour", methods=["POST"], key_func=form_email)
def login_link() -> ResponseReturnValue:
    """Ask for a sign-in link (the same answer for every address)."""
    target = safe_next(request.values.get("next"), url_for("articles.index"))
    if current_user.is_authenticated:
        return redirect(target)
    form = EmailForm()
    if form.validate_on_submit():
        nonce = cookie_session.get(BROWSER_KEY) or secrets.token_urlsafe(32)
        cookie_session[BROWSER_KEY] = nonce
        recovery.request_sign_in_link(
            db, form.email.data or "", absolute("accounts.login_link_open") + "?token=",
            absolute("accounts.signup"), browser=_browser(),
            next_url=target if target != url_for("articles.index") else None,
        )  # fmt: skip
        db.commit()
        mail.send_soon()
        return render_template(
            "accounts/login_link_sent.html", email=form.email.data,
            minutes=recovery.SIGN_IN_MINUTES, next=target,
        )  # fmt: skip
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/login_link.html", form=form, next=target), status


@bp.route("/login/link/open", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login_link_open() -> ResponseReturnValue:
    """GET shows a "Sign in" button (mail scanners open links); the POST signs in, once."""
    token = request.values.get("token", "")
    form = OpenLinkForm()
    try:
        found = email_tokens.peek(db, email_tokens.SIGN_IN, token, browser=_browser())
        if form.validate_on_submit():
            used = recovery.use_sign_in_link(db, token, _browser())
            db.commit()
            next_url = used.data.get("next")
            target = safe_next(next_url if isinstance(next_url, str) else None,
                               url_for("articles.index"))  # fmt: skip
            return finish_sign_in(db, used.user, remember=bool(form.remember.data),
                                  target=target, method="link")  # fmt: skip
    except email_tokens.TokenError as exc:
        db.rollback()
        return render_template("accounts/login_link_open.html", form=None, error=str(exc)), 400
    if request.method == "POST":
        abort(400)
    return render_template(
        "accounts/login_link_open.html", form=form, token=token, email=found.user.email
    )
