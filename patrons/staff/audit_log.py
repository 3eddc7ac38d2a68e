"""Staff's audit page: what staff did (exports, a member's record opened, Stripe retries,
simulations, staff made by the command line), newest first, filtered by who and what,
a page at a time. Staff-only by the parent blueprint's check (patrons/staff/__init__.py);
it only reads. How long events are kept: accounts/audit_retention.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from patrons.accounts import audit
from patrons.accounts.security_log import when
from patrons.core.db import session as db
from patrons.core.urls import db_id
from patrons.models import AuditEvent, User

bp = Blueprint("audit", __name__)  # under /staff, behind its staff check
PAGE_SIZE = 50
MAX_PAGE = 10_000
STAFF_KINDS = audit.STAFF_ACTION + ".%"
LABELS = {
    "staff.members": _l("Searched or listed the members"),
    "staff.member": _l("Opened a member’s record"),
    "staff.export": _l("Downloaded a report table (CSV)"),
    "staff.stripe_retry": _l("Retried a Stripe event"),
    "staff.simulate_renewal": _l("Simulated next month’s renewals"),
    "staff.simulate_failed_renewal": _l("Simulated a failed renewal"),
    "staff.role": _l("Made an account staff"),
}


@dataclass(frozen=True)
class Page:
    number: int
    has_previous: bool
    has_next: bool


def label(kind: str) -> str:
    return str(LABELS.get(kind, kind))


def details(raw: str | None) -> list[tuple[str, str]]:
    try:
        found = json.loads(raw or "{}")
    except ValueError:
        return []
    return [(str(k), str(v)) for k, v in found.items()] if isinstance(found, dict) else []


def actors(session: Session) -> list[tuple[int, str]]:
    """(id, email) of everyone who appears as the actor of a staff action."""
    rows = session.execute(
        select(User.id, User.email)
        .join(AuditEvent, AuditEvent.actor_id == User.id)
        .where(AuditEvent.kind.like(STAFF_KINDS))
        .distinct()
        .order_by(User.email)
    )
    return [(uid, email) for uid, email in rows]


def kinds(session: Session) -> list[str]:
    return sorted(session.scalars(
        select(AuditEvent.kind).where(AuditEvent.kind.like(STAFF_KINDS)).distinct()
    ))  # fmt: skip


@bp.get("/audit")
def index() -> ResponseReturnValue:
    actor = request.args.get("actor", type=db_id)
    kind = request.args.get("kind", "")[:40]
    number = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    who, whom = aliased(User), aliased(User)
    query = (
        select(AuditEvent, who.email, whom.email, whom.id)
        .outerjoin(who, who.id == AuditEvent.actor_id)
        .outerjoin(whom, whom.id == AuditEvent.user_id)
        .where(AuditEvent.kind.like(STAFF_KINDS))
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    )
    if actor:
        query = query.where(AuditEvent.actor_id == actor)
    if kind:
        query = query.where(AuditEvent.kind == kind)
    rows = db.execute(query.offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    page = Page(number, number > 1, len(rows) > PAGE_SIZE)
    args = {k: v for k, v in (("actor", actor), ("kind", kind)) if v}
    return render_template(
        "staff/audit.html", rows=rows[:PAGE_SIZE], page=page, args=args, actor=actor,
        kind=kind, actors=actors(db), kinds=kinds(db), label=label, details=details, when=when,
    )  # fmt: skip
