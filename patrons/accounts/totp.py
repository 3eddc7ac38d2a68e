"""The second factor's codes: TOTP (RFC 6238, pyotp) and one-time recovery codes.

A TOTP code is accepted for the current 30-second step or one step either side (a phone's
clock drifts), and never twice: every accepted code's step is written to the audit log
(`two_factor.used`, detail {"step": n}) in the same transaction, and a code for that step
or an earlier one is refused afterwards (the row lock on the user makes two requests with
one code wait for each other on PostgreSQL). The log is shared by every worker and
machine, which a per-browser record (the cookie session) would not be.

Recovery codes: ten per enrolment, ten random characters each, stored as keyed hashes
(SHA-256 HMAC with the secret key, like the emailed six-digit codes), shown once, each
used at most once (a conditional UPDATE: two requests cannot both use one).
"""

from __future__ import annotations

import hmac
import json
import secrets
from datetime import datetime
from typing import Any, cast

import pyotp
import segno
from markupsafe import Markup
from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from patrons.accounts import audit
from patrons.accounts.email_tokens import rotate_stamp
from patrons.core import clock, signing
from patrons.models import AuditEvent, KnownDevice, RecoveryCode, User

STEP_SECONDS = 30
DRIFT_STEPS = 1  # accepted either side of the current step
USED = "two_factor.used"  # an accepted code, with its step (audit log)
RECOVERY_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
RECOVERY_LENGTH = 10
CODE = "code"
RECOVERY = "recovery"


def new_secret() -> str:
    """A fresh base32 secret (160 bits)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def qr_svg(uri: str, title: str) -> Markup:
    """The QR code as an inline <svg> element: nothing loaded from anywhere (the CSP's
    img-src never comes into it). segno escapes the title."""
    qr = segno.make(uri, error="m")
    svg = qr.svg_inline(scale=5, dark="#000", light="#fff", omitsize=True, title=title,
                        svgclass="qr-code")  # fmt: skip
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704  (segno's own markup, the title escaped)


def grouped(secret: str) -> str:
    """The secret in groups of four, as people type it."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _digits(code: str) -> str | None:
    code = "".join(code.split())
    return code if len(code) == 6 and code.isascii() and code.isdigit() else None


def matching_step(secret: str, code: str, at: datetime) -> int | None:
    """The time step `code` belongs to, within the drift allowed around `at`, or None."""
    digits = _digits(code)
    if digits is None:
        return None
    totp, now_step = pyotp.TOTP(secret), int(at.timestamp()) // STEP_SECONDS
    found = None
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), digits):
            found = step  # no early exit: the same work whichever step matches
    return found


def last_used_step(db: Session, user: User) -> int:
    detail = db.scalar(
        select(AuditEvent.detail)
        .where(AuditEvent.user_id == user.id, AuditEvent.kind == USED)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(1)
    )
    try:
        return int(json.loads(detail or "{}").get("step", -1))
    except (ValueError, TypeError, AttributeError):
        return -1


def note_used(db: Session, user: User, step: int, where: str) -> None:
    audit.record(db, USED, user=user, detail={"step": step, "where": where})


def use_code(db: Session, user: User, code: str, where: str) -> bool:
    """True when `code` is right for `user`'s secret now and was not used before; the use
    is recorded (the caller commits)."""
    if not user.totp_secret:
        return False
    db.execute(select(User.id).where(User.id == user.id).with_for_update())  # one at a time
    step = matching_step(user.totp_secret, code, clock.now())
    if step is None or step <= last_used_step(db, user):
        return False
    note_used(db, user, step, where)
    return True


def _recovery_hash(user_id: int, code: str) -> str:
    return signing.keyed_hash(f"{user_id}:recovery:{code}".encode())


def _recovery_hashes(user_id: int, code: str) -> list[str]:
    """Under SECRET_KEY and each of SECRET_KEY_FALLBACKS (a code made before a rotation)."""
    return signing.keyed_hashes(f"{user_id}:recovery:{code}".encode())


def _normal_recovery(code: str) -> str | None:
    code = "".join(c for c in code.lower() if c not in " -\t")
    ok = len(code) == RECOVERY_LENGTH and all(c in RECOVERY_ALPHABET for c in code)
    return code if ok else None


def make_recovery_codes(db: Session, user: User) -> list[str]:
    """Ten new codes (the old ones stop working); only their hashes are kept."""
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes, now = [], clock.now()
    for _ in range(RECOVERY_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        db.add(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(user.id, raw),
                            created_at=now))  # fmt: skip
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def recovery_codes_left(db: Session, user: User) -> int:
    return (
        db.scalar(
            select(func.count()).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
            )
        )
        or 0
    )


def use_recovery_code(db: Session, user: User, code: str) -> bool:
    normal = _normal_recovery(code)
    if normal is None:
        return False
    # read first: a wrong code (the usual refusal) writes nothing; the UPDATE's own condition
    # still spends a code once when two requests race for it
    found = db.scalar(
        select(RecoveryCode.id)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None),
               RecoveryCode.code_hash.in_(_recovery_hashes(user.id, normal)))
        .limit(1)
    )  # fmt: skip
    if found is None:
        return False
    used = cast(CursorResult[Any], db.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == found, RecoveryCode.used_at.is_(None))
        .values(used_at=clock.now())
    ))  # fmt: skip
    if used.rowcount != 1:
        return False
    audit.record(db, audit.RECOVERY_CODE_USED, user=user,
                 detail={"left": recovery_codes_left(db, user)})  # fmt: skip
    return True


def verify(db: Session, user: User, text: str, where: str) -> str | None:
    """CODE or RECOVERY for an accepted code of either kind (now used up), else None."""
    if _digits(text) is not None:
        return CODE if use_code(db, user, text, where) else None
    return RECOVERY if use_recovery_code(db, user, text) else None


def enable(db: Session, user: User, secret: str, step: int) -> list[str]:
    """Turn two-factor on with a confirmed `secret` (its code's `step` counts as used);
    returns the recovery codes to show once. Every emailed link dies (the stamp)."""
    user.totp_secret, user.two_factor_enabled_at = secret, clock.now()
    rotate_stamp(user)
    _forget_devices(db, user)
    audit.record(db, audit.TWO_FACTOR_ENABLED, user=user)
    note_used(db, user, step, "enrol")
    return make_recovery_codes(db, user)


def disable(db: Session, user: User) -> None:
    user.totp_secret, user.two_factor_enabled_at = None, None
    rotate_stamp(user)
    _forget_devices(db, user)
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit.record(db, audit.TWO_FACTOR_DISABLED, user=user)


def _forget_devices(db: Session, user: User) -> None:
    """No device skips the second factor any more (a remembered one asks again)."""
    db.execute(
        update(KnownDevice).where(KnownDevice.user_id == user.id).values(two_factor_until=None)
    )
