"""Sign-up, email verification, sign-in and sign-out, the account page."""

from __future__ import annotations

from typing import cast

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from patrons import attribution, mail
from patrons.accounts import auth, service, tokens
from patrons.accounts.forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    ConfirmForm,
    DeleteAccountForm,
    EmailForm,
    LoginForm,
    ProfileForm,
    ResetPasswordForm,
    SignupForm,
)
from patrons.core.config import Settings
from patrons.core.db import session as db
from patrons.core.extensions import limiter, login_required
from patrons.core.urls import safe_next
from patrons.pledges.billing import gateway
from patrons.pledges.errors import PledgeError
from patrons.pledges.managing import end_for_erasure
from patrons.pledges.queries import open_pledge

bp = Blueprint("accounts", __name__)


def _form_email() -> str:
    """Rate-limit key per account: the address typed into the form."""
    return "email:" + auth.normalise_email(request.form.get("email", ""))[:254]


def _failed(response: Response) -> bool:
    return response.status_code != 302


def _settings() -> Settings:
    return cast(Settings, current_app.config["SETTINGS"])


def _secret() -> str:
    """The key the signed links are made and read with (tokens.py)."""
    return _settings().secret_key


def _absolute(endpoint: str) -> str:
    return _settings().site_url + url_for(endpoint)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("5 per minute", methods=["POST"], deduct_when=_failed)
@limiter.limit("5 per minute", methods=["POST"], key_func=_form_email, deduct_when=_failed)
def login() -> ResponseReturnValue:
    target = safe_next(request.values.get("next"), url_for("articles.index"))
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm()
    if form.validate_on_submit():
        user = auth.authenticate(db, form.email.data or "", form.password.data or "")
        if user is not None:
            agent = request.user_agent.string
            auth.sign_in(db, user, remember=bool(form.remember.data), user_agent=agent)
            db.commit()
            return redirect(target)
        flash(_("That email and password do not match an account."), "error")
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/login.html", form=form, next=target), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    auth.sign_out(db)
    db.commit()
    flash(_("You are signed out."), "info")
    return redirect(url_for("articles.index"))


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("10 per minute;50 per day", methods=["POST"])
@limiter.limit("3 per hour", methods=["POST"], key_func=_form_email)
def signup() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("accounts.account"))
    form = SignupForm()
    if form.validate_on_submit():
        if not form.website.data:  # bots fill in the field people never see
            result = service.sign_up(
                db, form.email.data or "", form.password.data or "",
                form.display_name.data or "", _absolute("accounts.verify") + "?token=", _secret(),
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


@bp.route("/verify", methods=["GET", "POST"])
def verify() -> ResponseReturnValue:
    """GET shows a button; only the POST confirms (mail scanners follow links)."""
    token = request.values.get("token", "")
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            user = service.verify_email(db, token, _secret())
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


@bp.post("/verify/resend")
@limiter.limit("5 per hour")
@limiter.limit("3 per hour", key_func=_form_email)
def resend_verification() -> ResponseReturnValue:
    form = EmailForm()
    if form.validate_on_submit():
        user = auth.find_user_by_email(db, form.email.data or "")
        if user is not None and user.email_verified_at is None:
            verify_url = _absolute("accounts.verify") + "?token="
            service.queue_verification(db, user, verify_url, _secret())
            db.commit()
            mail.send_soon()
        flash(
            _("If that address has an account waiting for confirmation, a new link is on its way."),
            "info",
        )
        return redirect(url_for("accounts.signup_sent"), code=303)
    return render_template("accounts/signup_sent.html", email="", form=form), 400


@bp.get("/account")
@login_required
def account() -> ResponseReturnValue:
    return _account_page()


def _account_page(**forms: object) -> str:
    """The account page, with any form given (and its errors) in place of a fresh one."""
    return render_template(
        "accounts/account.html",
        profile_form=forms.get("profile_form") or ProfileForm(obj=current_user),
        password_form=forms.get("password_form") or ChangePasswordForm(),
        resend_form=EmailForm(email=current_user.email),
        email_form=forms.get("email_form") or ChangeEmailForm(),
    )


@bp.post("/account/profile")
@login_required
def update_profile() -> ResponseReturnValue:
    form = ProfileForm()
    if not form.validate_on_submit():
        return _account_page(profile_form=form), 400
    service.update_profile(current_user, form.display_name.data or "")
    db.commit()
    flash(_("Your profile is saved."), "success")
    return redirect(url_for("accounts.account"))


@bp.post("/account/password")
@login_required
@limiter.limit("10 per hour")
def change_password() -> ResponseReturnValue:
    form = ChangePasswordForm()
    if form.validate_on_submit():
        token = cookie_session.get(auth.SESSION_TOKEN_KEY)
        changed = service.change_password(
            db, current_user, form.current_password.data or "", form.new_password.data or "", token
        )
        if changed:
            db.commit()
            mail.send_soon()
            flash(_("Your password is changed. Every other device is signed out."), "success")
            return redirect(url_for("accounts.account"))
        form.current_password.errors = [_("That is not your current password.")]
    return _account_page(password_form=form), 400


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit("5 per minute;20 per hour", methods=["POST"])
@limiter.limit("3 per hour", methods=["POST"], key_func=_form_email)
def forgot_password() -> ResponseReturnValue:
    """Ask for a reset link; the answer is the same whether or not the address is known."""
    form = EmailForm()
    if form.validate_on_submit():
        service.request_password_reset(
            db, form.email.data or "", _absolute("accounts.reset") + "?token=", _secret()
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
        service.user_for_reset(db, token, _secret())
    except tokens.TokenError as exc:
        return render_template("accounts/reset.html", form=None, error=str(exc)), 400
    if form.validate_on_submit():
        user = service.reset_password(db, token, form.new_password.data or "", _secret())
        auth.sign_in(db, user, remember=False, user_agent=request.user_agent.string)
        db.commit()
        mail.send_soon()
        flash(_("Your new password is set, and you are signed in."), "success")
        return redirect(url_for("accounts.account"))
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/reset.html", form=form), status


@bp.get("/account/export")
@login_required
def export() -> ResponseReturnValue:
    """Everything stored about me, as a JSON download."""
    response = jsonify(service.export_data(db, current_user))
    response.headers["Content-Disposition"] = 'attachment; filename="my-data.json"'
    response.cache_control.no_store = True
    response.cache_control.private = True
    return response


@bp.route("/account/delete", methods=["GET", "POST"])
@login_required
@limiter.limit("10 per hour", methods=["POST"])
def delete_account() -> ResponseReturnValue:
    form = DeleteAccountForm()
    if form.validate_on_submit():
        user_id = current_user.id

        def stop_pledge() -> None:
            end_for_erasure(db, gateway(), user_id)

        try:
            deleted = service.delete_account(
                db, current_user, form.password.data or "", before_erase=stop_pledge
            )
        except PledgeError as exc:
            db.rollback()
            form.password.errors = [exc.message]
            return _delete_page(form), exc.status
        if deleted:
            auth.sign_out(db)
            db.commit()
            flash(_("Your account is deleted. Thank you for reading us."), "info")
            return redirect(url_for("articles.index"))
        form.password.errors = [_("That is not your password.")]
    return _delete_page(form), 400 if request.method == "POST" else 200


def _delete_page(form: DeleteAccountForm) -> str:
    pledge = open_pledge(db, current_user.id)
    running = pledge if pledge is not None and pledge.stripe_subscription_id else None
    return render_template("accounts/delete.html", form=form, open_pledge=running)


@bp.post("/account/email")
@login_required
@limiter.limit("5 per hour")
def change_email() -> ResponseReturnValue:
    form = ChangeEmailForm()
    if form.validate_on_submit():
        confirm_url = _absolute("accounts.confirm_email_change") + "?token="
        ok = service.request_email_change(
            db, current_user, form.password.data or "", form.new_email.data or "", confirm_url,
            _secret(),
        )  # fmt: skip
        if ok:
            db.commit()
            mail.send_soon()
            flash(
                _("Check the new address: the change happens when you open the link we sent."),
                "info",
            )
            return redirect(url_for("accounts.account"))
        form.password.errors = [_("That is not your password.")]
    return _account_page(email_form=form), 400


@bp.route("/account/email/confirm", methods=["GET", "POST"])
def confirm_email_change() -> ResponseReturnValue:
    """GET shows a button; only the POST switches the address."""
    token = request.values.get("token", "")
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            service.confirm_email_change(db, token, _secret())
        except (tokens.TokenError, service.EmailTaken) as exc:
            db.rollback()
            return render_template("accounts/confirm_email.html", error=str(exc), form=form), 400
        db.commit()
        flash(_("Your email address is changed."), "success")
        return redirect(url_for("accounts.account"))
    if request.method == "POST":
        abort(400)
    return render_template("accounts/confirm_email.html", token=token, form=form)
