"""Votes: backing a topic, withdrawing a vote, and the withdrawal a refund or dispute brings.

Services take the session and never commit; the view commits once. Two rules hold whatever
the requests do at the same moment (docs/security.md, threats 16-17):

- one vote per patron and topic: the `UNIQUE(user_id, topic_id)` key, with an insert that
  does nothing on conflict (a double submit is the same vote, not an error);
- the per-round budget and the patron check: a vote takes the voter's lock first (the user
  row `FOR UPDATE` on PostgreSQL; `BEGIN IMMEDIATE` on SQLite, where writers queue anyway),
  and only then counts the voter's votes and checks that they are an active patron. The
  refund/dispute withdrawal takes the same lock, so a vote and a refund never interleave.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from flask_babel import gettext as _
from sqlalchemy import CursorResult, Select, delete, select
from sqlalchemy.orm import Session

from patrons.core.db import insert_or_ignore
from patrons.models import Round, Topic, User, Vote
from patrons.pledges.entitlement import user_is_active_patron
from patrons.voting.rules import VotingError


def lock_voters(db: Session, user_ids: Iterable[int] | Select[Any]) -> None:
    """Serialise with every other vote of these users (see the module's docstring)."""
    if db.get_bind().dialect.name == "sqlite":
        conn = db.connection()
        # pysqlite opens a transaction at the first write only (patrons/core/db.py): none open means
        # nothing written yet, so take the write lock now; one open already holds it.
        if not cast(sqlite3.Connection, conn.connection.dbapi_connection).in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        return
    ids = select(User.id).where(User.id.in_(user_ids)).order_by(User.id)
    db.execute(ids.with_for_update())


def rows_touched(result: object) -> int:
    """How many rows a DELETE, UPDATE or INSERT touched."""
    return cast(CursorResult[Any], result).rowcount or 0


def _open_topic(db: Session, topic_id: int, now: datetime) -> tuple[Topic, Round]:
    topic = db.get(Topic, topic_id)
    found = db.get(Round, topic.round_id) if topic and topic.round_id else None
    if topic is None or found is None or topic.status != "in_round" or now < found.opens_at:
        raise VotingError(_("There is no such topic in an open round."), 404)
    if found.is_closed(now):
        raise VotingError(_("This round has closed: votes can no longer change."), 409)
    return topic, found


def cast_vote(db: Session, user_id: int, topic_id: int, now: datetime, grace_days: int) -> bool:
    """Back a topic. True if a vote was added, False if the patron backed it already."""
    topic, found = _open_topic(db, topic_id, now)
    lock_voters(db, [user_id])
    if not user_is_active_patron(db, user_id, now, grace_days):
        raise VotingError(_("Only patrons whose payment has gone through can vote."), 403)
    mine = set(
        db.scalars(select(Vote.topic_id).where(Vote.user_id == user_id, Vote.round_id == found.id))
    )
    if topic.id in mine:
        return False
    if len(mine) >= found.votes_per_patron:
        raise VotingError(
            _("You have used all %(count)d of your votes in this round. Withdraw one to back "
              "another topic.", count=found.votes_per_patron), 409,
        )  # fmt: skip
    vote = {"user_id": user_id, "topic_id": topic.id, "round_id": found.id, "created_at": now}
    return bool(
        rows_touched(db.execute(insert_or_ignore(db, Vote, vote, [Vote.user_id, Vote.topic_id])))
    )


def withdraw_vote(db: Session, user_id: int, topic_id: int, now: datetime) -> bool:
    """Withdraw a vote while the round is open. False if there was none."""
    topic, _found = _open_topic(db, topic_id, now)
    lock_voters(db, [user_id])
    gone = db.execute(delete(Vote).where(Vote.user_id == user_id, Vote.topic_id == topic.id))
    return bool(rows_touched(gone))


def withdraw_votes_of_user(db: Session, user_id: int, now: datetime) -> int:
    """A patron's payment was refunded or disputed: their votes in open rounds go.

    Called by the pledge records in the transaction that records the refund or dispute.
    """
    lock_voters(db, [user_id])
    still_open = select(Round.id).where(Round.closes_at > now)
    return rows_touched(
        db.execute(delete(Vote).where(Vote.user_id == user_id, Vote.round_id.in_(still_open)))
    )


def withdraw_votes_on_refund(db: Session, *, user_id: int, now: datetime) -> None:
    """The receiver of signals.payment_taken_back (connected in voting.register)."""
    withdraw_votes_of_user(db, user_id, now)


def votes_of(db: Session, user_id: int, round_ids: Iterable[int]) -> set[int]:
    """The topic ids this patron backs in these rounds."""
    ids = list(round_ids)
    if not ids:
        return set()
    query = select(Vote.topic_id).where(Vote.user_id == user_id, Vote.round_id.in_(ids))
    return set(db.scalars(query))
