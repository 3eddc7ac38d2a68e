"""Signed, expiring links (itsdangerous): email verification, password reset, email change.

Each purpose has its own salt, so a token for one can never be used as another. A reset
token also carries a fingerprint of the current password hash: once the password changes,
every earlier reset link is dead (one-time without storing anything). The signing key is
the app's SECRET_KEY, passed in by the caller (the views take it from the settings).
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

VERIFY_HOURS = 48
RESET_HOURS = 2
EMAIL_CHANGE_HOURS = 24
_MAX_AGE = {"verify": VERIFY_HOURS, "reset": RESET_HOURS, "email-change": EMAIL_CHANGE_HOURS}


class TokenError(ValueError):
    """The link is malformed, tampered with, for another purpose, or expired."""


def _serializer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=f"patrons-{purpose}")


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def make_token(secret_key: str, purpose: str, **payload: Any) -> str:
    return _serializer(secret_key, purpose).dumps(payload)


def read_token(secret_key: str, purpose: str, token: str) -> dict[str, Any]:
    if not token or len(token) > 1000:
        raise TokenError(_("That link is not valid."))
    try:
        data = _serializer(secret_key, purpose).loads(token, max_age=_MAX_AGE[purpose] * 3600)
    except SignatureExpired:
        raise TokenError(_("That link has expired. Ask for a new one.")) from None
    except BadSignature:
        message = _("That link is not valid. Copy the whole address from the email.")
        raise TokenError(message) from None
    if not isinstance(data, dict):
        raise TokenError(_("That link is not valid."))
    return data
