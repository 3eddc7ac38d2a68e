"""The account page: profile, password, address, two-factor (turning it off, new recovery
codes; enrolment is two_factor_views.py), recent security events, export and deletion."""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask import session as cookie_session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from patrons import mail
from patrons.accounts import (  # two_factor_views: its pages join this blueprint
    audit,
    auth,
    second_factor,
    security_log,
    service,
    totp,
    two_factor_views,
)
from patrons.accounts.forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    DeleteAccountForm,
    EmailForm,
    ProfileForm,
)
from patrons.accounts.passwords import verify_password
from patrons.accounts.two_factor_forms import ButtonForm, ProofForm
from patrons.accounts.view_helpers import absolute, bp, secret
from patrons.core.db import session as db
from patrons.core.extensions import limiter, login_required
from patrons.pledges.billing import gateway
from patrons.pledges.errors import PledgeError
from patrons.pledges.managing import end_for_erasure
from patrons.pledges.queries import open_pledge


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
        two_factor_form=forms.get("two_factor_form") or ProofForm(),
        button_form=ButtonForm(),
        recovery_left=totp.recovery_codes_left(db, current_user),
        events=security_log.recent(db, current_user),
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
    form.account = current_user  # staff need 12 characters (passwords.py)
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
        confirm_url = absolute("accounts.confirm_email_change") + "?token="
        ok = service.request_email_change(
            db, current_user, form.password.data or "", form.new_email.data or "", confirm_url,
            secret(),
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


@bp.post("/account/two-factor/off")
@login_required
@limiter.limit("5 per minute;20 per hour", deduct_when=two_factor_views.refused)
def two_factor_disable() -> ResponseReturnValue:
    """Turning two-factor off asks for a current code (or recovery code) or the password."""
    form = ProofForm()
    if form.validate_on_submit():
        if not second_factor.required_at_all(current_user):
            abort(400, _("Two-factor sign-in is not on for your account."))
        proof = form.proof.data or ""
        if totp.verify(db, current_user, proof, "disable") or verify_password(
            current_user.password_hash, proof
        ):
            totp.disable(db, current_user)
            db.commit()
            flash(_("Two-factor sign-in is off. Signing in asks for your password only."), "info")
            return redirect(url_for("accounts.account"))
        audit.record(db, audit.TWO_FACTOR_FAILED, user=current_user, detail={"where": "disable"})
        db.commit()
        form.proof.errors = [_("That is neither a current code nor your password.")]
    return _account_page(two_factor_form=form), 400


@bp.post("/account/two-factor/recovery-codes")
@login_required
@second_factor.fresh_second_factor_required
def two_factor_new_codes() -> ResponseReturnValue:
    """Ten new recovery codes (the old ones stop working), shown once."""
    if not ButtonForm().validate_on_submit():
        abort(400)
    if not second_factor.required_at_all(current_user):
        abort(400, _("Two-factor sign-in is not on for your account."))
    codes = totp.make_recovery_codes(db, current_user)
    audit.record(db, security_log.NEW_RECOVERY_CODES, user=current_user)
    db.commit()
    return two_factor_views.codes_page(codes, url_for("accounts.account"))
