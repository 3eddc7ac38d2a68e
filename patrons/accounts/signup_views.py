"""Sign-up and the page that says what to do next (confirm the address)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from patrons import attribution, mail
from patrons.accounts import auth
from patrons.accounts import signup as signing_up
from patrons.accounts.forms import EmailForm, SignupForm
from patrons.accounts.view_helpers import absolute, bp, form_email, secret
from patrons.core.db import session as db
from patrons.core.extensions import limiter


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("10 per minute;50 per day", methods=["POST"])
@limiter.limit("3 per hour", methods=["POST"], key_func=form_email)
def signup() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("accounts.account"))
    form = SignupForm()
    if form.validate_on_submit():
        if not form.website.data:  # bots fill in the field people never see
            result = signing_up.sign_up(
                db, form.email.data or "", form.password.data or "",
                form.display_name.data or "", absolute("accounts.verify") + "?token=", secret(),
            )  # fmt: skip
            if result.created:
                attribution.stamp_user(db, result.user, request.cookies)
            db.commit()
            mail.send_soon()
        cookie_session["signup_email"] = auth.normalise_email(form.email.data or "")
        return redirect(url_for("accounts.signup_sent"), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/signup.html", form=form), status


@bp.get("/signup/sent")
def signup_sent() -> ResponseReturnValue:
    email = cookie_session.get("signup_email", "")
    return render_template("accounts/signup_sent.html", email=email, form=EmailForm(email=email))


@bp.post("/verify/resend")
@limiter.limit("5 per hour")
@limiter.limit("3 per hour", key_func=form_email)
def resend_verification() -> ResponseReturnValue:
    form = EmailForm()
    if form.validate_on_submit():
        user = auth.find_user_by_email(db, form.email.data or "")
        if user is not None and user.email_verified_at is None:
            verify_url = absolute("accounts.verify") + "?token="
            signing_up.queue_verification(db, user, verify_url, secret())
            db.commit()
            mail.send_soon()
        flash(
            _("If that address has an account waiting for confirmation, a new link is on its way."),
            "info",
        )
        return redirect(url_for("accounts.signup_sent"), code=303)
    return render_template("accounts/signup_sent.html", email="", form=form), 400
