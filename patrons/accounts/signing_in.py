"""Every way in ends here: a password, an emailed sign-in link, a reset, a confirmed address.

`finish_sign_in` asks for the second factor when the account needs it (second_factor.py),
then starts the session, makes this browser a known device and writes the audit log.
"""

from __future__ import annotations

from flask import redirect, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from patrons.accounts import audit, auth, devices, second_factor
from patrons.models import User


def finish_sign_in(
    db: Session, user: User, *, remember: bool, target: str, method: str
) -> ResponseReturnValue:
    """Sign `user` in (or send them to the second factor first) and go to `target`; commits.

    `method` says how they proved who they are ("password", "link", "reset", "verify"…),
    for the audit log."""
    if second_factor.required(db, user):
        return second_factor.challenge(db, user, remember=remember, target=target, method=method)
    complete(db, user, remember=remember, method=method)
    db.commit()
    return redirect(target)


def complete(db: Session, user: User, *, remember: bool, method: str) -> None:
    """The session itself, once every factor is given; the caller commits."""
    auth.sign_in(db, user, remember=remember, user_agent=request.user_agent.string)
    user.failed_sign_ins, user.sign_in_blocked_until = 0, None  # the per-account backoff
    devices.remember(db, user)
    audit.record(db, audit.SIGN_IN, user=user, detail={"method": method})
