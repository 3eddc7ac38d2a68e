"""The webhook's inbox: Stripe events stored before they are acknowledged, applied after.

Following Stripe's advice, `POST /stripe/webhook` only verifies, stores (`store`: one row per
event id, a redelivery stores nothing) and answers 200; no Stripe call and no business logic
happens before the answer. Applying is a separate step (`apply_claimed`), run:
- right after the commit, on one background thread per process (`apply_soon`; inline when
  `STRIPE_EVENTS_INLINE` is set, as in tests), and
- by `flask stripe-worker`, which picks up whatever is left: events whose thread died with
  the process, events waiting for a retry, events staff asked to retry.

Several workers (and threads) may run at once: an event is claimed before it is applied (one
UPDATE that sets `claimed_until` where no live claim exists; `FOR UPDATE SKIP LOCKED` on
PostgreSQL so claimers pass each other), and a claim that outlives `CLAIM_SECONDS` was left by a
process that died and may be taken over. A failed attempt is tried again with a growing delay
(`backoff`); after `MAX_ATTEMPTS` the event is `failed`, shown to staff with its reason
(staff/stripe_events.py) until they retry it. Nothing is lost if the app dies between storing
and applying: the row is there, pending.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from flask import Flask
from sqlalchemy import Table, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from patrons import mail
from patrons.core import background, clock
from patrons.models import StripeEvent
from patrons.models.pledges import EventState
from patrons.pledges import applying
from patrons.pledges.billing import gateway
from patrons.pledges.gateway import Gateway
from patrons.pledges.stripe_objects import Event, GatewayError, as_dict, object_id

log = logging.getLogger(__name__)

CLAIM_SECONDS = 300  # longer than a batch takes (Stripe calls are bounded by STRIPE_TIMEOUT)
CLAIM_BATCH = 5  # events claimed at a time: at most a few Stripe reads each
WRITE_ATTEMPTS = 3  # a write that lost a race on a unique key is run again at once
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
MAX_ATTEMPTS = 12  # 5 s, 10 s, 20 s ... capped at an hour: about nine hours in all
_APPLIER = "patrons.pledges.applier"


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 3600))


# -- storing (the webhook) ------------------------------------------------------------------


def related_charge(event: Event) -> str | None:
    """The charge a refund or a dispute names (the only id besides the object's own used)."""
    if event.object.get("object") in ("refund", "dispute"):
        return object_id(event.object.get("charge"))
    return None


def store(db: Session, event: Event, now: datetime) -> bool:
    """Insert the event (not committed); True if it is new, False for a redelivery.

    A Core INSERT of the table, built once per dialect with bound values: the webhook's one
    write is its cost, and the ORM's per-call work on the values was most of it."""
    charge = related_charge(event)
    values: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "created": event.created,
        "received_at": now,
        "object_id": str(event.object["id"])[:255],
        "related": json.dumps({"charge": charge}) if charge else None,
        "state": str(EventState.PENDING),
        "attempts": 0,
    }
    conn = db.connection()
    return conn.execute(_insert_statement(conn.dialect.name), values).first() is not None


_INSERTS: dict[str, Any] = {}


def _insert_statement(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id, for this dialect."""
    if dialect not in _INSERTS:
        table = cast(Table, StripeEvent.__table__)
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        _INSERTS[dialect] = (
            insert(table).on_conflict_do_nothing(index_elements=[table.c.id]).returning(table.c.id)
        )
    return _INSERTS[dialect]


# -- claiming -------------------------------------------------------------------------------


def _due(now: datetime) -> Any:
    return (
        (StripeEvent.state == EventState.PENDING)
        & or_(StripeEvent.next_attempt_at.is_(None), StripeEvent.next_attempt_at <= now)
        & or_(StripeEvent.claimed_until.is_(None), StripeEvent.claimed_until < now)
    )


def claim(db: Session, now: datetime, *, limit: int = 10, ids: Iterable[str] = ()) -> list[str]:
    """Claim up to `limit` due events (only these `ids`, if given) and commit the claim.

    Two steps in one transaction: pick the ids (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so
    another claimer takes the next ones instead of waiting), then claim exactly those, still
    only where no live claim exists (on SQLite the UPDATE takes the write lock, and its own
    condition decides)."""
    wanted = select(StripeEvent.id).where(_due(now))
    wanted = wanted.where(StripeEvent.id.in_(list(ids))) if ids else wanted
    wanted = wanted.order_by(StripeEvent.received_at, StripeEvent.id).limit(limit)
    if db.get_bind().dialect.name == "postgresql":
        wanted = wanted.with_for_update(skip_locked=True)
    picked = list(db.scalars(wanted))
    if not picked:
        db.commit()
        return []
    claimed = db.execute(
        update(StripeEvent)
        .where(StripeEvent.id.in_(picked), _due(now))
        .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
                attempts=StripeEvent.attempts + 1)
        .returning(StripeEvent.id)
    ).scalars().all()  # fmt: skip
    db.commit()
    return list(claimed)


# -- applying -------------------------------------------------------------------------------


def apply_claimed(db: Session, gw: Gateway, event_id: str, *, grace_days: int) -> str:
    """Apply one claimed event and record how it went (committed); its new state."""
    row = db.get(StripeEvent, event_id)
    if row is None or row.object_id is None:
        return EventState.IGNORED
    db.commit()  # no transaction stays open across the calls to Stripe
    related = as_dict(json.loads(row.related)) if row.related else {}
    target = applying.Target.of(row.type, row.object_id, object_id(related.get("charge")))
    try:
        remote = applying.fetch(gw, target)
        ctx = applying.Context(clock.now(), "webhook", event_id, True, grace_days)
        changes = _write(db, remote, ctx)
    except applying.Unknown as exc:
        db.rollback()
        log.warning("stripe event %s (%s): %s; nothing applied", event_id, row.type, exc)
        return _finish(db, event_id, EventState.IGNORED, str(exc))
    except applying.Refused as exc:
        db.rollback()
        log.warning("stripe event %s (%s) refused: %s", event_id, row.type, exc)
        return _finish(db, event_id, EventState.FAILED, f"Refused: {exc}")
    except (applying.NotYet, GatewayError) as exc:
        db.rollback()
        reason = exc.message if isinstance(exc, GatewayError) else str(exc)
        # Stripe unreachable or refusing is a failure; an object Stripe has not made yet is not
        level = logging.WARNING if isinstance(exc, GatewayError) else logging.INFO
        return _later(db, event_id, reason, level)
    except Exception as exc:  # a bug or a database failure: rolled back, tried again later
        db.rollback()
        log.exception("stripe event %s (%s) failed; rolled back", event_id, row.type)
        return _later(db, event_id, f"{type(exc).__name__}: {exc}"[:2000])
    for line in changes:
        log.info("stripe event %s: %s", event_id, line)
    return EventState.APPLIED


def _write(db: Session, remote: applying.Remote, ctx: applying.Context) -> list[str]:
    """Write the effects and mark the event applied, in one transaction. One that lost a race
    on a unique key (two events about one new pledge or payment at once), or a PostgreSQL
    serialization failure or deadlock, is run again at once: the winner's rows are visible
    then, and this one updates them instead of inserting."""
    assert ctx.event_id is not None
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            changes = applying.write(db, remote, ctx)
            _finish(db, ctx.event_id, EventState.APPLIED, None, commit=False)
            db.commit()
            return changes
        except (IntegrityError, DBAPIError) as exc:
            db.rollback()
            sqlstate = getattr(exc.orig, "sqlstate", None)
            if attempt == WRITE_ATTEMPTS or not (
                isinstance(exc, IntegrityError) or sqlstate in _RETRYABLE_SQLSTATES
            ):
                raise
            log.info("stripe event %s lost a race (%s); writing again", ctx.event_id,
                     type(exc).__name__)  # fmt: skip
    raise AssertionError("unreachable")  # pragma: no cover


def _finish(
    db: Session, event_id: str, state: str, reason: str | None, *, commit: bool = True
) -> str:
    now = clock.now()
    db.execute(
        update(StripeEvent)
        .where(StripeEvent.id == event_id)
        .values(state=state, last_error=reason, claimed_until=None, next_attempt_at=None,
                applied_at=now if state == EventState.APPLIED else None)
    )  # fmt: skip
    if commit:
        db.commit()
    return state


def _later(db: Session, event_id: str, reason: str, level: int = logging.WARNING) -> str:
    """Try again after the backoff, or give up (`failed`, for staff) after MAX_ATTEMPTS."""
    attempts = db.scalar(select(StripeEvent.attempts).where(StripeEvent.id == event_id)) or 1
    if attempts >= MAX_ATTEMPTS:
        log.error("stripe event %s failed %d times; staff may retry it: %s", event_id,
                  attempts, reason)  # fmt: skip
        return _finish(db, event_id, EventState.FAILED, reason)
    log.log(level, "stripe event %s: %s; trying again later", event_id, reason)
    db.execute(
        update(StripeEvent)
        .where(StripeEvent.id == event_id)
        .values(last_error=reason, claimed_until=None,
                next_attempt_at=clock.now() + backoff(attempts))
    )  # fmt: skip
    db.commit()
    return EventState.PENDING


def apply_due(db: Session, gw: Gateway, *, grace_days: int, limit: int = 100,
              ids: Iterable[str] = ()) -> dict[str, int]:  # fmt: skip
    """Claim and apply what is due (only `ids`, if given), a few at a time so that a claim
    never outlives the work on it; how many ended in each state."""
    counts: dict[str, int] = {}
    done = 0
    while done < limit:
        batch = claim(db, clock.now(), limit=min(CLAIM_BATCH, limit - done), ids=ids)
        if not batch:
            break
        for event_id in batch:
            state = apply_claimed(db, gw, event_id, grace_days=grace_days)
            counts[state] = counts.get(state, 0) + 1
        done += len(batch)
        mail.send_soon(db)
    return counts


def retry(db: Session, event_id: str) -> bool:
    """Staff: apply a failed (or ignored) event again soon; False if there is no such event."""
    row = db.get(StripeEvent, event_id)
    if row is None:
        return False
    row.state, row.next_attempt_at, row.claimed_until = EventState.PENDING, clock.now(), None
    row.attempts = 0
    return True


# -- right after the webhook's commit ----------------------------------------------------------


def apply_soon(app: Flask, event_id: str) -> None:
    """Apply the event just stored, off the request (inline when STRIPE_EVENTS_INLINE; not at
    all when STRIPE_EVENTS_BACKGROUND is False, e.g. to measure the acknowledgement alone:
    the worker applies it then)."""
    try:
        if not app.config.get("STRIPE_EVENTS_BACKGROUND", True):
            return
        if app.config.get("STRIPE_EVENTS_INLINE", app.testing):
            _apply_ids(app, [event_id])
        else:
            background.runner(app, _APPLIER, _apply_ids, log).submit([event_id])
    except Exception:
        log.exception("applying event %s right away failed; the worker will", event_id)


def _apply_ids(app: Flask, ids: list[str]) -> None:
    with app.app_context():
        gw = gateway(app)
        if gw is None:
            return
        session = app.extensions["db.sessionmaker"]()
        try:
            grace = app.config["SETTINGS"].pledge_grace_days
            apply_due(session, gw, grace_days=grace, ids=ids)
        finally:
            session.close()


def wait_for_background_applies(app: Flask, timeout: float | None = None) -> bool:
    """Wait for `apply_soon`'s thread (tests, shutdown); False if it is still busy."""
    return background.wait_for(app, _APPLIER, timeout)
