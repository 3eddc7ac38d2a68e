"""The two-factor forms: enrolment, the sign-in challenge, turning it off, re-authenticating.
Every field has a length limit with its own message (a code is short; a password is at most
1,024 characters, passwords.py)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

CODE_MAX = 40  # a six-digit code or a recovery code, with spaces and dashes
PROOF_MAX = 1024  # a code or a password (passwords.MAX_LENGTH)

_CODE_ATTRS = {"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}


def _code_field(label: Any, description: Any = "") -> StringField:  # lazy strings
    return StringField(
        label,
        validators=[
            DataRequired(_l("Enter the code.")),
            Length(max=CODE_MAX, message=_l("Use at most %(max)d characters.", max=CODE_MAX)),
        ],
        render_kw=dict(_CODE_ATTRS),
        description=description,
    )


class EnrolForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (flask_wtf)
    code = _code_field(_l("The six-digit code your app shows"))
    next = HiddenField()


class ChallengeForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (flask_wtf)
    code = _code_field(
        _l("Code"),
        _l("The six-digit code from your authenticator app, or one of your recovery codes."),
    )
    remember_device = BooleanField(_l("Don’t ask again on this device for 30 days"))


class ProofForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (flask_wtf)
    """Turning two-factor off: a current code or the password."""

    proof = PasswordField(
        _l("A code from your app, or your password"),
        validators=[
            DataRequired(_l("Enter a code or your password.")),
            Length(max=PROOF_MAX, message=_l("Use at most %(max)d characters.", max=PROOF_MAX)),
        ],
        render_kw={"autocomplete": "current-password", "spellcheck": "false"},
    )


class ReauthForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (flask_wtf)
    """Confirm it is you: a code (two-factor on) or the password (off)."""

    proof = PasswordField(  # never shown back (a password may be typed here)
        _l("Code"),
        validators=[
            DataRequired(_l("Enter a code or your password.")),
            Length(max=PROOF_MAX, message=_l("Use at most %(max)d characters.", max=PROOF_MAX)),
        ],
        render_kw={"spellcheck": "false"},
    )
    next = HiddenField()


class ButtonForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (flask_wtf)
    """A button: only the CSRF token travels."""
