"""Closing a round at its end time: its results frozen and mailed to its voters, once.

A round closes by the clock alone (rounds.py); its results are frozen at the first read after
the close (participation.results), which used to be whoever opened a round page first. The
worker (`flask --app patrons worker`) now calls `close_due_rounds` every pass, so results are
frozen close to the end time and the voters hear of them.

Once, with several workers at once: each round is claimed by one conditional UPDATE
(`results_mailed_at` from NULL to now), in the same transaction as the freeze and the mail, so
the worker whose UPDATE changed the row does it all and commits, and any other finds the row
taken (PostgreSQL re-reads the row after the first commits; SQLite runs one writer at a time).
A failure rolls back the claim with the mail: the next pass does it again, whole.

A round that closed more than `MAIL_WITHIN` ago when first seen (a worker down for days, or
rounds older than this code) is frozen and marked without mail: late results news is noise.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from flask_babel import gettext as _
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from patrons import mail
from patrons.models import Round, User, Vote
from patrons.voting.outcomes import round_link
from patrons.voting.participation import counted, results, turnout
from patrons.voting.results import listed_topics

MAIL_WITHIN = timedelta(days=2)
BATCH = 20  # rounds per call; each is its own transaction


def due_round_ids(db: Session, now: datetime, limit: int = BATCH) -> list[int]:
    """Closed rounds whose results have not been mailed yet, oldest close first."""
    query = (
        select(Round.id)
        .where(Round.closes_at <= now, Round.results_mailed_at.is_(None))
        .order_by(Round.closes_at, Round.id)
        .limit(limit)
    )
    return list(db.scalars(query))


def close_round(db: Session, round_id: int, now: datetime, grace_days: int, site_url: str) -> int:
    """Claim one closed round, freeze its results and queue its voters' mail, committed;
    how many messages were queued, or -1 when another worker had claimed it."""
    claimed = cast(CursorResult[Any], db.execute(
        update(Round)
        .where(Round.id == round_id, Round.results_mailed_at.is_(None), Round.closes_at <= now)
        .values(results_mailed_at=now)
        .execution_options(synchronize_session=False)
    ))  # fmt: skip
    if claimed.rowcount != 1:
        db.rollback()
        return -1
    try:
        found = db.get(Round, round_id, populate_existing=True)
        assert found is not None
        counts = results(db, found, now, grace_days)  # freezes them, if no reader has yet
        queued = 0
        if now - found.closes_at <= MAIL_WITHIN:
            queued = _mail_voters(db, found, counts, now, grace_days, site_url)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return queued


def _mail_voters(
    db: Session, found: Round, counts: dict[int, int], now: datetime, grace_days: int,
    site_url: str,
) -> int:  # fmt: skip
    voter_ids = select(Vote.user_id).where(
        Vote.round_id == found.id, Vote.created_at < found.closes_at, counted()
    )
    voters = db.scalars(select(User).where(User.id.in_(voter_ids)).order_by(User.id)).all()
    if not voters:
        return 0
    topics = [(t.title, counts.get(t.id, 0)) for t in listed_topics(found, counts)]
    share = turnout(db, found, now, grace_days).share
    for voter in voters:
        mail.queue_message(
            db, voter.email, "round_results",
            _("The results of the round “%(title)s”", title=found.title),
            round_title=found.title, topics=topics, round_url=round_link(site_url, found.id),
            turnout=None if share is None else round(share * 100),
        )  # fmt: skip
    return len(voters)


def close_due_rounds(db: Session, now: datetime, grace_days: int, site_url: str) -> dict[str, int]:
    """Close what is due (at most BATCH rounds): {"rounds": closed here, "mails": queued}."""
    done = {"rounds": 0, "mails": 0}
    for round_id in due_round_ids(db, now):
        db.rollback()  # end the read: each claim is a transaction of its own
        queued = close_round(db, round_id, now, grace_days, site_url)
        if queued >= 0:
            done["rounds"] += 1
            done["mails"] += queued
    return done
