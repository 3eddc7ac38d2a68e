"""What `/readyz` says about `flask worker`: how long ago any worker last wrote its heartbeat
(patrons/worker/leases.py writes one row per worker at every pass, a few seconds apart)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import WorkerHeartbeat


def worker_heartbeat_age(db: Session, now: datetime | None = None) -> float | None:
    """Seconds since the newest heartbeat of any worker, or None when no worker ever wrote one."""
    last = db.scalar(select(func.max(WorkerHeartbeat.last_seen)))
    if last is None:
        return None
    if last.tzinfo is None:  # func.max bypasses the column's type on SQLite
        last = datetime.fromisoformat(str(last)).replace(tzinfo=clock.now().tzinfo)
    return max(((now or clock.now()) - last).total_seconds(), 0.0)
