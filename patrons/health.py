"""`/healthz` (liveness) and `/readyz` (readiness), for a load balancer or an orchestrator.

- `GET /healthz`: 200 whenever the process answers. It asks nothing of the database or
  Redis: a restart would not bring either back.
- `GET /readyz`: 200 when the database answers, else 503 (send no traffic here for now). The
  JSON body tells each dependency's state: `database` (up/down), `redis` (up/down/not
  configured), the mail queue and the Stripe event queue (how many wait, and the age in
  seconds of the oldest), the worker's last heartbeat (`worker_heartbeat_age`) and whether
  this process is `degraded` (Redis unreachable: limits in memory, caches bypassed;
  core/degraded.py). Redis being down is not "not ready": the site works without it.

Neither is cached by anyone (no-store) and neither touches the rate limits or the caches.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, current_app
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from patrons.core import clock, degraded
from patrons.core.db import session
from patrons.core.extensions import limiter
from patrons.core.rediscache import redis_client
from patrons.models import OutboundEmail, StripeEvent
from patrons.models.pledges import EventState
from patrons.worker_status import worker_heartbeat_age

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/healthz")
@limiter.exempt
def healthz() -> ResponseReturnValue:
    return {"status": "ok"}, 200, NO_STORE


@bp.get("/readyz")
@limiter.exempt
def readyz() -> ResponseReturnValue:
    database = _database_up()
    body: dict[str, Any] = {
        "status": "ready" if database else "unavailable",
        "database": "up" if database else "down",
        "redis": _redis_state(),
    }
    queues = _queues(session) if database else None
    body["mail_queue"] = queues["mail"] if queues else None
    body["stripe_events"] = queues["stripe_events"] if queues else None
    age = worker_heartbeat_age(session) if database else None
    body["worker"] = None if age is None else {"heartbeat_age_seconds": round(age)}
    body["degraded"] = degraded.is_degraded() or body["redis"] == "down"
    since = degraded.degraded_since()
    body["degraded_since"] = since.isoformat(timespec="seconds") if since else None
    body["degraded_parts"] = degraded.failing_components()
    return body, 200 if database else 503, NO_STORE


def _database_up() -> bool:
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:  # any database failure means "not ready", never a 500
        degraded.warn_once_a_minute(
            "readyz-database", "readiness: the database is down (%s)", exc.__class__.__name__
        )
        try:
            session.rollback()
        except Exception:  # noqa: BLE001  (nothing to roll back on a connection never made)
            log.debug("rollback after a failed readiness check failed", exc_info=True)
        return False
    return True


def _redis_state() -> str:
    client = current_app.extensions.get("health.redis")
    if client is None:
        return "not configured"
    try:
        client.ping()
    except Exception:  # noqa: BLE001  (any failure: down)
        return "down"
    return "up"


def _age(oldest: datetime | None, now: datetime) -> int | None:
    return None if oldest is None else max(0, round((now - oldest).total_seconds()))


def _queues(db: Session) -> dict[str, dict[str, int | None]] | None:
    now = clock.now()
    try:
        mail_count, mail_oldest = db.execute(
            select(func.count(), func.min(OutboundEmail.created_at)).where(
                OutboundEmail.status == "queued"
            )
        ).one()
        event_count, event_oldest = db.execute(
            select(func.count(), func.min(StripeEvent.received_at)).where(
                StripeEvent.state == EventState.PENDING
            )
        ).one()
    except Exception as exc:  # noqa: BLE001  (readiness answers whatever it can)
        log.warning("readiness: the queues could not be read (%s)", exc.__class__.__name__)
        db.rollback()
        return None
    return {
        "mail": {"unsent": mail_count, "oldest_seconds": _age(mail_oldest, now)},
        "stripe_events": {"pending": event_count, "oldest_seconds": _age(event_oldest, now)},
    }


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    url = app.config["SETTINGS"].redis_url
    if url:
        app.extensions["health.redis"] = redis_client(url)
