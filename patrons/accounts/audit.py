"""The audit log: security events of every account and the actions of staff.

`record` adds a row in the caller's transaction (the caller commits), with the request's
address and browser when there is a request. Kinds are short dotted names; the pages that
show them (the owner's recent sign-ins, staff's audit page) translate them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from flask import has_request_context, request
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import AuditEvent, User

# security events of an account
SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in.failed"
SIGN_IN_BLOCKED = "sign_in.blocked"  # refused by the per-account backoff
SIGN_OUT = "sign_out"
PASSWORD_CHANGED = "password.changed"  # noqa: S105  (event names, not secrets)
PASSWORD_RESET = "password.reset"  # noqa: S105
EMAIL_CHANGED = "email.changed"
EMAIL_VERIFIED = "email.verified"
TOKEN_USED = "token.used"  # noqa: S105 — an emailed link or code, with its purpose in detail
TWO_FACTOR_ENABLED = "two_factor.enabled"
TWO_FACTOR_DISABLED = "two_factor.disabled"
TWO_FACTOR_FAILED = "two_factor.failed"
RECOVERY_CODE_USED = "two_factor.recovery_code"
# staff actions (actor = the staff member, user = the account acted on, if any)
STAFF_ACTION = "staff"  # prefix: "staff.refund", "staff.role", "staff.export"…


def _client() -> tuple[str, str]:
    if not has_request_context():
        return "", ""
    return (request.remote_addr or "")[:45], request.user_agent.string[:200]


def record(
    db: Session,
    kind: str,
    *,
    user: User | int | None = None,
    actor: User | int | None = None,
    detail: Mapping[str, object] | None = None,
) -> AuditEvent:
    """Add one event; `user` is whose account it concerns, `actor` who acted (staff)."""
    ip, agent = _client()
    event = AuditEvent(
        user_id=user.id if isinstance(user, User) else user,
        actor_id=actor.id if isinstance(actor, User) else actor,
        kind=kind[:40],
        ip=ip,
        user_agent=agent,
        detail=json.dumps(dict(detail), sort_keys=True, default=str) if detail else None,
        created_at=clock.now(),
    )
    db.add(event)
    return event
