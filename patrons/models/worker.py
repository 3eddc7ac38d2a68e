"""The worker's own tables (patrons/worker.py): who is alive, and which scheduled job runs
where. Several workers may run at once; a job runs in the one that claimed its row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patrons.core.db import Base


class WorkerHeartbeat(Base):
    """One row per worker process, `last_seen` written at every pass (read by /readyz)."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), default="", server_default="")
    pid: Mapped[int] = mapped_column(default=0, server_default="0")
    started_at: Mapped[datetime]
    last_seen: Mapped[datetime] = mapped_column(index=True)


class ScheduledJob(Base):
    """A periodic job's lease: the worker whose conditional UPDATE set `claimed_until` runs it
    (where `next_run_at` has come and no live claim exists); when it is done it moves
    `next_run_at` on and clears the claim. A claim past `claimed_until` was left by a worker
    that died and may be taken over."""

    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None]
    last_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
