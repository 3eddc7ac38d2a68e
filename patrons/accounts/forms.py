from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, ValidationError

PASSWORD_MIN = 10
PASSWORD_MAX = 1024


def _email_field(label: LazyString | None = None) -> EmailField:
    return EmailField(
        _l("Email") if label is None else label,
        validators=[
            DataRequired(_l("Enter your email address.")),
            Email(_l("That does not look like an email address.")),
            Length(max=254),
        ],
        render_kw={"autocomplete": "email"},
    )


def _new_password_field(label: LazyString | None = None) -> PasswordField:
    return PasswordField(
        _l("Password") if label is None else label,
        validators=[
            DataRequired(_l("Choose a password.")),
            Length(
                min=PASSWORD_MIN,
                max=PASSWORD_MAX,
                message=_l("Use at least %(num)d characters.", num=PASSWORD_MIN),
            ),
        ],
        render_kw={"autocomplete": "new-password"},
        description=_l(
            "At least %(num)d characters. A few words you will remember work well.",
            num=PASSWORD_MIN,
        ),
    )


class LoginForm(FlaskForm):
    email = _email_field()
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(_l("Enter your password.")), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField(_l("Keep me signed in on this device"))


class SignupForm(FlaskForm):
    email = _email_field()
    password = _new_password_field()
    display_name = StringField(
        _l("Name (optional)"),
        validators=[Optional(), Length(max=80)],
        description=_l("Shown to the newsroom, never published."),
        render_kw={"autocomplete": "name"},
    )
    website = StringField(_l("Leave this empty"), validators=[Optional()])  # the honeypot

    def validate_password(self, field: PasswordField) -> None:
        if self.email.data and field.data and field.data.strip().lower() == self.email.data.lower():
            raise ValidationError(_("Your password cannot be your email address."))


class EmailForm(FlaskForm):
    email = _email_field()


class ConfirmForm(FlaskForm):
    """A button that confirms a link: a GET on a link changes nothing (mail scanners open them)."""


class ProfileForm(FlaskForm):
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=80)])


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[DataRequired(_l("Enter your current password.")), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = _new_password_field(_l("New password"))
    confirm = PasswordField(
        _l("New password again"),
        validators=[EqualTo("new_password", _l("The two new passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )


class ResetPasswordForm(FlaskForm):
    token = HiddenField()
    new_password = _new_password_field(_l("New password"))
    confirm = PasswordField(
        _l("New password again"),
        validators=[EqualTo("new_password", _l("The two new passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )


class DeleteAccountForm(FlaskForm):
    password = PasswordField(
        _l("Your password"),
        validators=[DataRequired(_l("Enter your password to confirm.")), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )


class ChangeEmailForm(FlaskForm):
    new_email = _email_field(_l("New email address"))
    password = PasswordField(
        _l("Your password"),
        validators=[DataRequired(_l("Enter your password to confirm.")), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )
