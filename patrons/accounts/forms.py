"""The accounts forms. Every field has an exact message for each way it can be wrong; a
new password is judged by `passwords.password_problem` (length, the address, zxcvbn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, Field, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Optional, StopValidation

from patrons.accounts.passwords import (
    MAX_LENGTH,
    READER_MIN,
    STAFF_MIN,
    password_problem,
    too_long,
)

if TYPE_CHECKING:
    from patrons.models import User

PASSWORD_MIN = READER_MIN
PASSWORD_MAX = MAX_LENGTH
EMAIL_MAX = 254  # users.email
NAME_MAX = 80  # users.display_name


class AtMost:
    """Over `limit` characters: "Use at most 1,024 characters.", and no other message."""

    def __init__(self, limit: int, *, normalise: Any = None) -> None:
        self.limit = limit
        self.normalise = normalise  # e.g. the address as it would be stored (longer: "ß")

    def __call__(self, form: FlaskForm, field: Field) -> None:
        value = field.data or ""
        if self.normalise is not None:
            value = self.normalise(value)
        if len(value) > self.limit:
            raise StopValidation(too_long(self.limit))


def _stored_email(value: str) -> str:
    from patrons.accounts.auth import normalise_email

    return normalise_email(value)


def _email_field(label: LazyString | None = None) -> EmailField:
    return EmailField(
        _l("Email") if label is None else label,
        validators=[
            DataRequired(_l("Enter your email address.")),
            AtMost(EMAIL_MAX, normalise=_stored_email),
            Email(_l("That does not look like an email address.")),
        ],
        render_kw={"autocomplete": "email"},
    )


def _new_password_field(label: LazyString | None = None) -> PasswordField:
    """Judged by the form's `validate_<name>` (password_problem), which knows the account."""
    return PasswordField(
        _l("Password") if label is None else label,
        validators=[DataRequired(_l("Choose a password."))],
        render_kw={"autocomplete": "new-password"},
        description=_l(
            "At least %(num)d characters. A few words you will remember work well.",
            num=PASSWORD_MIN,
        ),
    )


class NewPasswordForm(FlaskForm):
    """A form that sets the password of an existing account. The view sets `account`: a
    staff account needs 12 characters, and no password may be close to its own address."""

    new_password: PasswordField
    _account: User | None = None

    @property
    def account(self) -> User | None:
        return self._account

    @account.setter
    def account(self, user: User | None) -> None:
        self._account = user
        if user is not None and user.is_staff:
            self.new_password.description = _(
                "At least %(num)d characters. A few words you will remember work well.",
                num=STAFF_MIN,
            )

    def validate_new_password(self, field: Field) -> None:
        account = self.account
        problem = password_problem(
            field.data or "",
            email=account.email if account else "",
            name=account.display_name if account else None,
            staff=bool(account and account.is_staff),
        )
        if problem:
            raise StopValidation(problem)


def _current_password_field(label: LazyString, required: LazyString) -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired(required), AtMost(PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )


def _confirm_field() -> PasswordField:
    return PasswordField(
        _l("New password again"),
        validators=[EqualTo("new_password", _l("The two new passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )


def _name_field(label: LazyString, **kw: Any) -> StringField:
    return StringField(label, validators=[Optional(), AtMost(NAME_MAX)], **kw)


class LoginForm(FlaskForm):
    email = _email_field()
    password = _current_password_field(_l("Password"), _l("Enter your password."))
    remember = BooleanField(_l("Keep me signed in on this device"))


class SignupForm(FlaskForm):
    email = _email_field()
    password = _new_password_field()
    display_name = _name_field(
        _l("Name (optional)"),
        description=_l("Shown to the newsroom, never published."),
        render_kw={"autocomplete": "name"},
    )
    website = StringField(_l("Leave this empty"), validators=[Optional()])  # the honeypot

    def validate_password(self, field: Field) -> None:
        problem = password_problem(
            field.data or "", email=self.email.data or "", name=self.display_name.data or None
        )
        if problem:
            raise StopValidation(problem)


class EmailForm(FlaskForm):
    email = _email_field()


class ConfirmForm(FlaskForm):
    """A button that confirms a link: a GET on a link changes nothing (mail scanners open them)."""


class ProfileForm(FlaskForm):
    display_name = _name_field(_l("Name"))


class ChangePasswordForm(NewPasswordForm):
    current_password = _current_password_field(
        _l("Current password"), _l("Enter your current password.")
    )
    new_password = _new_password_field(_l("New password"))
    confirm = _confirm_field()


class ResetPasswordForm(NewPasswordForm):
    token = HiddenField()
    new_password = _new_password_field(_l("New password"))
    confirm = _confirm_field()


class DeleteAccountForm(FlaskForm):
    password = _current_password_field(_l("Your password"), _l("Enter your password to confirm."))


class ChangeEmailForm(FlaskForm):
    new_email = _email_field(_l("New email address"))
    password = _current_password_field(_l("Your password"), _l("Enter your password to confirm."))
