"""The owner's view of the audit log: their account's recent security events, each said in
words (not its kind's name), with the date as people read it, the browser and the address.

Staff actions on the account and the bookkeeping of accepted codes (totp.USED) are not
shown here: staff actions are on staff's own audit page (patrons/staff/audit_log.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.accounts import audit
from patrons.core.formatting import format_date
from patrons.models import AuditEvent, User

SHOWN = 20  # events on the account page
NEW_RECOVERY_CODES = "two_factor.new_codes"

LABELS = {
    audit.SIGN_IN: _l("Signed in"),
    audit.SIGN_IN_FAILED: _l("A sign-in failed: wrong password"),
    audit.SIGN_IN_BLOCKED: _l("Sign-ins paused after several wrong passwords"),
    audit.SIGN_OUT: _l("Signed out"),
    audit.PASSWORD_CHANGED: _l("Password changed"),
    audit.PASSWORD_RESET: _l("Password reset with an emailed link"),
    audit.EMAIL_CHANGED: _l("Email address changed"),
    audit.EMAIL_VERIFIED: _l("Email address confirmed"),
    audit.TOKEN_USED: _l("An emailed link or code was used"),
    audit.TWO_FACTOR_ENABLED: _l("Two-factor sign-in turned on"),
    audit.TWO_FACTOR_DISABLED: _l("Two-factor sign-in turned off"),
    audit.TWO_FACTOR_FAILED: _l("A wrong two-factor code was given"),
    audit.RECOVERY_CODE_USED: _l("A recovery code was used"),
    NEW_RECOVERY_CODES: _l("New recovery codes made"),
}
SIGN_IN_METHODS = {
    "password": _l("Signed in with your password"),
    "link": _l("Signed in with an emailed link"),
    "reset": _l("Signed in after resetting your password"),
    "verify": _l("Signed in by confirming your address"),
}
# browser and system names, the first match wins (Edge and Opera also say "Chrome")
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
             ("Chrome/", "Chrome"), ("Safari/", "Safari"))  # fmt: skip
_SYSTEMS = (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"),
            ("Linux", "Linux"))  # fmt: skip


@dataclass(frozen=True)
class Shown:
    date: str  # "6 December 2026"
    time: str  # "at 14:05 UTC"
    what: str
    browser: str
    address: str
    alarming: bool  # a failure or a change the owner should recognise


def when(event: AuditEvent) -> str:
    """ "6 December 2026 at 14:05 UTC"."""
    return f"{format_date(event.created_at)} {at_time(event)}"


def at_time(event: AuditEvent) -> str:
    return str(_("at %(time)s UTC", time=f"{event.created_at:%H:%M}"))


def browser(user_agent: str) -> str:
    """ "Firefox on Linux" from a User-Agent header, or "Unknown browser"."""
    name = next((n for mark, n in _BROWSERS if mark in user_agent), None)
    system = next((n for mark, n in _SYSTEMS if mark in user_agent), None)
    if name and system:
        return str(_("%(browser)s on %(system)s", browser=name, system=system))
    if name or system:
        return str(name or system)
    if re.search(r"curl|python|wget|bot", user_agent, re.I):
        return str(_("A program, not a browser"))
    return str(_("Unknown browser"))


def describe(event: AuditEvent) -> str:
    label = str(LABELS[event.kind])
    if event.kind == audit.SIGN_IN:
        try:
            method = json.loads(event.detail or "{}").get("method")
        except (ValueError, AttributeError):
            method = None
        label = str(SIGN_IN_METHODS.get(str(method), label))
    return label


def recent(db: Session, user: User, limit: int = SHOWN) -> list[Shown]:
    """`user`'s latest security events, newest first."""
    rows = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.user_id == user.id, AuditEvent.kind.in_(list(LABELS)))
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    calm = {audit.SIGN_IN, audit.SIGN_OUT, audit.EMAIL_VERIFIED, audit.TOKEN_USED}
    return [
        Shown(
            format_date(e.created_at),
            at_time(e),
            describe(e),
            browser(e.user_agent),
            e.ip or _("unknown"),
            e.kind not in calm,
        )  # fmt: skip
        for e in rows
    ]
