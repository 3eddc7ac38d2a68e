"""The app's keys: SECRET_KEY signs and hashes everything new; SECRET_KEY_FALLBACKS, older
keys, are still accepted, so a key can be rotated without signing everyone out.

- Flask's session cookie: Flask 3.1 reads `SECRET_KEY_FALLBACKS` itself (web.py sets it).
- Flask-WTF's CSRF tokens know one key only: `RotatingCSRFProtect` re-signs, under the
  current key, a submitted token that only an older key had signed, before Flask-WTF checks
  it as usual (the token must still match the one in the session, the referrer check stays).
- Our own keyed hashes (emailed six-digit codes, two-factor recovery codes): `keyed_hashes`
  gives the hash under every key, and the lookups accept any of them.

To rotate: set SECRET_KEY to the new key and put the old one first in SECRET_KEY_FALLBACKS;
drop it once nothing made with it is wanted (sessions: 30 days; recovery codes were hashed
with the key of the day they were made, so keep the old key as long as those should work, or
have staff make new codes).
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app
from flask_wtf.csrf import CSRFProtect
from itsdangerous import BadData, URLSafeTimedSerializer

_CSRF_SALT = "wtf-csrf-token"  # Flask-WTF's


def signing_keys() -> list[bytes]:
    """SECRET_KEY, then each of SECRET_KEY_FALLBACKS, as bytes (the current app's)."""
    config = current_app.config
    keys = [config["SECRET_KEY"], *(config.get("SECRET_KEY_FALLBACKS") or ())]
    return [str(key).encode() for key in keys]


def keyed_hash(message: bytes, key: bytes | None = None) -> str:
    """HMAC-SHA256 of `message` under `key` (default: SECRET_KEY), hex."""
    return hmac.new(key or signing_keys()[0], message, hashlib.sha256).hexdigest()


def keyed_hashes(message: bytes) -> list[str]:
    """The hash under every accepted key, the current one first."""
    return [keyed_hash(message, key) for key in signing_keys()]


class RotatingCSRFProtect(CSRFProtect):  # type: ignore[misc]  # flask_wtf ships no types
    """CSRFProtect that also accepts a token signed with one of SECRET_KEY_FALLBACKS."""

    def _get_csrf_token(self) -> str | None:
        token: str | None = super()._get_csrf_token()
        fallbacks = current_app.config.get("SECRET_KEY_FALLBACKS") or ()
        if not token or not fallbacks or current_app.config.get("WTF_CSRF_SECRET_KEY"):
            return token
        current = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_CSRF_SALT)
        try:
            current.loads(token)
            return token  # the current key's: Flask-WTF checks it as usual
        except BadData:
            pass
        for key in fallbacks:
            try:
                raw = URLSafeTimedSerializer(key, salt=_CSRF_SALT).loads(token)
            except BadData:
                continue
            return str(current.dumps(raw))  # checked next against the session, as any token
        return token
