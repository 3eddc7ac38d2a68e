from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, ValidationError

PASSWORD_MIN = 10
PASSWORD_MAX = 1024


def _email_field(label: str = "Email") -> EmailField:
    return EmailField(
        label,
        validators=[
            DataRequired("Enter your email address."),
            Email("That does not look like an email address."),
            Length(max=254),
        ],
        render_kw={"autocomplete": "email"},
    )


def _new_password_field(label: str = "Password") -> PasswordField:
    return PasswordField(
        label,
        validators=[
            DataRequired("Choose a password."),
            Length(
                min=PASSWORD_MIN,
                max=PASSWORD_MAX,
                message=f"Use at least {PASSWORD_MIN} characters.",
            ),
        ],
        render_kw={"autocomplete": "new-password"},
        description=f"At least {PASSWORD_MIN} characters. A few words you will remember work well.",
    )


class LoginForm(FlaskForm):
    email = _email_field()
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField("Keep me signed in on this device")


class SignupForm(FlaskForm):
    email = _email_field()
    password = _new_password_field()
    display_name = StringField(
        "Name (optional)",
        validators=[Optional(), Length(max=80)],
        description="Shown to the newsroom, never published.",
        render_kw={"autocomplete": "name"},
    )
    website = StringField("Leave this empty", validators=[Optional()])  # the honeypot

    def validate_password(self, field: PasswordField) -> None:
        if self.email.data and field.data and field.data.strip().lower() == self.email.data.lower():
            raise ValidationError("Your password cannot be your email address.")


class EmailForm(FlaskForm):
    email = _email_field()


class ConfirmForm(FlaskForm):
    """A button that confirms a link: a GET on a link changes nothing (mail scanners open them)."""


class ProfileForm(FlaskForm):
    display_name = StringField("Name", validators=[Optional(), Length(max=80)])


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = _new_password_field("New password")
    confirm = PasswordField(
        "New password again",
        validators=[EqualTo("new_password", "The two new passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


class ResetPasswordForm(FlaskForm):
    token = HiddenField()
    new_password = _new_password_field("New password")
    confirm = PasswordField(
        "New password again",
        validators=[EqualTo("new_password", "The two new passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


class DeleteAccountForm(FlaskForm):
    password = PasswordField(
        "Your password",
        validators=[DataRequired("Enter your password to confirm."), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )


class ChangeEmailForm(FlaskForm):
    new_email = _email_field("New email address")
    password = PasswordField(
        "Your password",
        validators=[DataRequired("Enter your password to confirm."), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )
