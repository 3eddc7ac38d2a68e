"""How long the audit log keeps its events: AUDIT_KEEP_DAYS (365 unless set), then
`flask prune-audit` deletes them (run it daily: cron, a systemd timer, or the worker).

An accepted two-factor code's step lives in the log too (totp.USED); a step is 30 seconds,
so pruning after days never lets an old code back in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import CursorResult, delete
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.core.config import Settings
from patrons.models import AuditEvent


def prune(db: Session, keep_days: int, now: datetime | None = None) -> int:
    """Delete the events older than `keep_days`; returns how many (the caller commits)."""
    before = (now or clock.now()) - timedelta(days=keep_days)
    deleted = cast(CursorResult[Any], db.execute(
        delete(AuditEvent).where(AuditEvent.created_at < before)
    ))  # fmt: skip
    return deleted.rowcount or 0


@click.command("prune-audit")
@with_appcontext
@click.option("--keep-days", type=click.IntRange(min=1), default=None,
              help="Days of events to keep (default: AUDIT_KEEP_DAYS, 365).")  # fmt: skip
def prune_audit(keep_days: int | None) -> None:
    """Delete audit events older than AUDIT_KEEP_DAYS."""
    from patrons.core.db import session as db

    settings = cast(Settings, current_app.config["SETTINGS"])
    days = keep_days or settings.audit_keep_days
    count = prune(db, days)
    db.commit()
    click.echo(f"Deleted {count} audit events older than {days} days.")
