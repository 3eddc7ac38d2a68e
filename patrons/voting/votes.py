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

A vote is two statements (tests/voting/test_statements.py): the lock, read together with the
topic, its round and the voter's payment; then an INSERT ... SELECT that counts the voter's
votes and checks the round is still open itself. The count cannot go into the locking
statement: on PostgreSQL a statement reads the snapshot taken when it started, before it
waited for the lock, and would miss the vote committed by the lock's previous holder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from flask_babel import gettext as _
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Select,
    delete,
    exists,
    func,
    literal,
    null,
    select,
)
from sqlalchemy.orm import Session

from patrons.core.db import lock_for_write_on_sqlite, upsert
from patrons.models import Round, Topic, User, Vote
from patrons.pledges.entitlement import rights_payment
from patrons.voting.participation import counted
from patrons.voting.rules import VotingError


def lock_voters(db: Session, user_ids: Iterable[int] | Select[Any]) -> None:
    """Serialise with every other vote of these users (see the module's docstring)."""
    if db.get_bind().dialect.name == "sqlite":
        lock_for_write_on_sqlite(db)
        return
    ids = select(User.id).where(User.id.in_(user_ids)).order_by(User.id)
    db.execute(ids.with_for_update())


def rows_touched(result: object) -> int:
    """How many rows a DELETE, UPDATE or INSERT touched."""
    return cast(CursorResult[Any], result).rowcount or 0


@dataclass(frozen=True)
class _Target:
    """What a vote or a withdrawal reads first, in the statement that takes the voter's lock."""

    round_id: int
    budget: int
    payment_id: int | None


def _lock_and_read(
    db: Session, user_id: int, topic_id: int, now: datetime, grace_days: int | None
) -> _Target:
    """Take the voter's lock and read the topic's round and (with `grace_days`) the payment
    that gives the voter the right to vote, in one statement: on PostgreSQL the user row `FOR
    UPDATE OF users` (the topic and round joined to it, outer, so that an unknown topic still
    takes the lock and reads as no round); on SQLite `BEGIN IMMEDIATE` first. What must not
    change under the lock (the voter's votes, the round still open) is read again by the write
    itself, a later statement and so a later snapshot on PostgreSQL."""
    lock_for_write_on_sqlite(db)
    payment = rights_payment(user_id, now, grace_days) if grace_days is not None else null()
    payment = payment.label("payment_id")
    query = (
        select(
            Topic.status, Round.id, Round.opens_at, Round.closes_at, Round.votes_per_patron, payment
        )
        .select_from(User)
        .outerjoin(Topic, Topic.id == topic_id)
        .outerjoin(Round, Round.id == Topic.round_id)
        .where(User.id == user_id)
        .with_for_update(of=User)
    )
    row = db.execute(query).one_or_none()
    if row is None or row.id is None or row.status != "in_round" or now < row.opens_at:
        raise VotingError(_("There is no such topic in an open round."), 404)
    if row.closes_at <= now:
        raise _closed()
    return _Target(row.id, row.votes_per_patron, row.payment_id)


def _closed() -> VotingError:
    return VotingError(_("This round has closed: votes can no longer change."), 409)


def _round_open(round_id: int, now: datetime) -> ColumnElement[bool]:
    """Read by the write under the lock: a round closed early meanwhile (rounds.close_round
    takes its voters' locks) changes nothing."""
    return exists().where(Round.id == round_id, Round.closes_at > now)


def cast_vote(db: Session, user_id: int, topic_id: int, now: datetime, grace_days: int) -> bool:
    """Back a topic. True if a vote was added, False if the patron backs it already.

    Two statements when the vote is added (three on SQLite, with its BEGIN IMMEDIATE): the lock
    with everything to check before writing, then one INSERT ... SELECT that adds the vote
    only while the voter's votes in the round (counted or not) are fewer than its budget and
    the round is open, and does nothing on the (user, topic) key. When it adds nothing, one
    more statement says why."""
    target = _lock_and_read(db, user_id, topic_id, now, grace_days)
    if target.payment_id is None:
        raise VotingError(_("Only patrons whose payment has gone through can vote."), 403)
    spent = (
        select(func.count())
        .select_from(Vote)
        .where(Vote.user_id == user_id, Vote.round_id == target.round_id)
        .scalar_subquery()
    )
    values = {"user_id": user_id, "topic_id": topic_id, "round_id": target.round_id,
              "created_at": now, "payment_id": target.payment_id}  # fmt: skip
    columns = [Vote.__table__.c[name] for name in values]
    row = select(*(literal(values[c.name], c.type) for c in columns)).where(
        spent < target.budget, _round_open(target.round_id, now)
    )
    insert = upsert(db, Vote).from_select(columns, row)
    added = db.execute(
        insert.on_conflict_do_nothing(index_elements=[Vote.user_id, Vote.topic_id]).returning(
            Vote.id
        )
    ).first()
    if added is not None:
        return True
    return _why_not_added(db, user_id, topic_id, target, now)


def _why_not_added(db: Session, user_id: int, topic_id: int, target: _Target,
                   now: datetime) -> bool:  # fmt: skip
    """After an INSERT that added nothing (still under the lock): False if the voter backs the
    topic already, else the reason as a VotingError."""
    rows = db.execute(
        select(Vote.topic_id, counted()).where(
            Vote.user_id == user_id, Vote.round_id == target.round_id
        )
    )
    mine = {voted: bool(counts) for voted, counts in rows}
    if topic_id in mine:
        if mine[topic_id]:
            return False
        spent = _("Your vote for this topic was cast with a payment that was refunded or "
                  "disputed: it does not count, and cannot be cast again.")  # fmt: skip
        raise VotingError(spent, 409)
    if len(mine) >= target.budget:
        raise VotingError(
            _("You have used all %(count)d of your votes in this round. Withdraw one to back "
              "another topic.", count=target.budget), 409,
        )  # fmt: skip
    if not db.scalar(select(_round_open(target.round_id, now))):
        raise _closed()
    return False  # the (user, topic) key holds a vote of this topic from another round


def withdraw_vote(db: Session, user_id: int, topic_id: int, now: datetime) -> bool:
    """Withdraw a counted vote while the round is open. False if there was none; a vote that
    does not count (its payment was refunded or disputed) stays, spent (a 409).

    Two statements when a vote goes (three on SQLite): the lock with the topic's round, then
    one DELETE of the counted vote while the round is open. When it deletes nothing, one more
    statement says why."""
    target = _lock_and_read(db, user_id, topic_id, now, None)
    mine = (Vote.user_id == user_id, Vote.topic_id == topic_id)
    gone = rows_touched(
        db.execute(delete(Vote).where(*mine, counted(), _round_open(target.round_id, now)))
    )
    if gone:
        return True
    held = db.execute(
        select(select(Vote.id).where(*mine).scalar_subquery(), _round_open(target.round_id, now))
    ).one()
    if held[0] is None:
        return False
    if not held[1]:
        raise _closed()
    spent = _("This vote was cast with a payment that was refunded or disputed: it no "
              "longer counts, and cannot be withdrawn.")  # fmt: skip
    raise VotingError(spent, 409)


def votes_of(db: Session, user_id: int, round_ids: Iterable[int]) -> set[int]:
    """The topic ids this patron backs in these rounds (with a vote that counts)."""
    ids = list(round_ids)
    if not ids:
        return set()
    query = select(Vote.topic_id).where(Vote.user_id == user_id, Vote.round_id.in_(ids), counted())
    return set(db.scalars(query))
