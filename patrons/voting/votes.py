"""Votes: backing a topic and withdrawing a vote. Each vote records the payment that gave
the right to cast it (`Vote.payment_id`); whether it counts is participation.py's rule, so a
refund or a dispute needs no write here: the votes of that payment stop counting by
themselves, and count again if a dispute is won.

Services take the session and never commit; the view commits once. Two rules hold whatever
the requests do at the same moment (docs/security.md, threats 16-17):

- one vote per patron and topic: the `UNIQUE(user_id, topic_id)` key, with an insert that
  does nothing on conflict (a double submit is the same vote, not an error);
- the per-round budget and the patron check: a vote takes the voter's lock first (the user
  row `FOR UPDATE` on PostgreSQL; `BEGIN IMMEDIATE` on SQLite, where writers queue anyway),
  and only then counts the voter's votes and checks that they are an active patron. The
  budget counts every vote of the patron in the round, counted or not: a vote withdrawn by
  a refund or a lost dispute is spent, and cannot be cast again with another payment.
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
from patrons.pledges.entitlement import rights_payment_id
from patrons.voting.participation import counted
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
    """Back a topic. True if a vote was added, False if the patron backs it already."""
    topic, found = _open_topic(db, topic_id, now)
    lock_voters(db, [user_id])
    payment_id = rights_payment_id(db, user_id, now, grace_days)
    if payment_id is None:
        raise VotingError(_("Only patrons whose payment has gone through can vote."), 403)
    rows = db.execute(
        select(Vote.topic_id, counted()).where(Vote.user_id == user_id, Vote.round_id == found.id)
    )
    mine = {topic_id: bool(counts) for topic_id, counts in rows}
    if topic.id in mine:
        if mine[topic.id]:
            return False
        spent = _("Your vote for this topic was cast with a payment that was refunded or "
                  "disputed: it does not count, and cannot be cast again.")  # fmt: skip
        raise VotingError(spent, 409)
    if len(mine) >= found.votes_per_patron:
        raise VotingError(
            _("You have used all %(count)d of your votes in this round. Withdraw one to back "
              "another topic.", count=found.votes_per_patron), 409,
        )  # fmt: skip
    vote = {"user_id": user_id, "topic_id": topic.id, "round_id": found.id, "created_at": now,
            "payment_id": payment_id}  # fmt: skip
    return bool(
        rows_touched(db.execute(insert_or_ignore(db, Vote, vote, [Vote.user_id, Vote.topic_id])))
    )


def withdraw_vote(db: Session, user_id: int, topic_id: int, now: datetime) -> bool:
    """Withdraw a counted vote while the round is open. False if there was none; a vote that
    does not count (its payment was refunded or disputed) stays, spent (a 409)."""
    topic, _found = _open_topic(db, topic_id, now)
    lock_voters(db, [user_id])
    mine = (Vote.user_id == user_id, Vote.topic_id == topic.id)
    gone = rows_touched(db.execute(delete(Vote).where(*mine, counted())))
    if not gone and db.scalar(select(Vote.id).where(*mine)) is not None:
        spent = _("This vote was cast with a payment that was refunded or disputed: it no "
                  "longer counts, and cannot be withdrawn.")  # fmt: skip
        raise VotingError(spent, 409)
    return bool(gone)


def votes_of(db: Session, user_id: int, round_ids: Iterable[int]) -> set[int]:
    """The topic ids this patron backs in these rounds (with a vote that counts)."""
    ids = list(round_ids)
    if not ids:
        return set()
    query = select(Vote.topic_id).where(Vote.user_id == user_id, Vote.round_id.in_(ids), counted())
    return set(db.scalars(query))
