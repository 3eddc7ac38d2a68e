"""How several workers share the periodic jobs, and the heartbeat each one writes.

A periodic job has a row in `scheduled_jobs`. A worker runs it only after its conditional
UPDATE claimed the row (`next_run_at` has come and no live claim exists: one UPDATE, so the
database decides between two workers); when the job is done it moves `next_run_at` on and
clears the claim. A worker that died mid-job leaves its claim, which runs out after the job's
lease and is taken over then. The jobs that run every pass (mail, Stripe events, closing
rounds) need no lease: each row they work on is claimed on its own (mail/sending.py,
pledges/inbox.py, voting/closing.py).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, update
from sqlalchemy.orm import Session

from patrons.core.db import insert_or_ignore, upsert
from patrons.models import ScheduledJob, WorkerHeartbeat

ERROR_LENGTH = 2000


def default_worker_id() -> str:
    return f"{socket.gethostname()[:100]}:{os.getpid()}"


def claim(db: Session, name: str, worker_id: str, now: datetime, lease: timedelta) -> bool:
    """True if this worker got the job `name` now (committed either way)."""
    table = ScheduledJob.__table__
    db.execute(insert_or_ignore(db, table, {"name": name, "next_run_at": now}, [table.c.name]))
    db.commit()
    result = cast(CursorResult[Any], db.execute(
        update(ScheduledJob)
        .where(ScheduledJob.name == name, ScheduledJob.next_run_at <= now,
               or_(ScheduledJob.claimed_until.is_(None), ScheduledJob.claimed_until < now))
        .values(claimed_by=worker_id, claimed_until=now + lease, last_started_at=now)
        .execution_options(synchronize_session=False)
    ))  # fmt: skip
    db.commit()
    return result.rowcount == 1


def finish(
    db: Session, name: str, worker_id: str, now: datetime, next_run_at: datetime,
    error: str | None = None,
) -> None:  # fmt: skip
    """Give the job back, due again at `next_run_at` (committed). Only the claimer's own claim:
    one that ran past its lease and was taken over changes nothing."""
    db.rollback()
    db.execute(
        update(ScheduledJob)
        .where(ScheduledJob.name == name, ScheduledJob.claimed_by == worker_id)
        .values(next_run_at=next_run_at, claimed_by=None, claimed_until=None,
                last_finished_at=now, last_error=error[:ERROR_LENGTH] if error else None)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    db.commit()


def beat(db: Session, worker_id: str, started_at: datetime, now: datetime) -> None:
    """This worker is alive now (committed): its row in `worker_heartbeats`."""
    table = WorkerHeartbeat.__table__
    statement = (
        upsert(db, table)
        .values(worker_id=worker_id, hostname=socket.gethostname()[:255], pid=os.getpid(),
                started_at=started_at, last_seen=now)
        .on_conflict_do_update(index_elements=[table.c.worker_id],
                               set_={"last_seen": now, "started_at": started_at})
    )  # fmt: skip
    db.execute(statement)
    db.commit()
