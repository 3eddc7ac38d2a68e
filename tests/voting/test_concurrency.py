"""Votes sent at the same moment over real HTTP (a threaded server, one connection each),
docs/security.md threat 16: the UNIQUE key and the per-patron lock hold, and no request gets a 500.

They run on both databases. On SQLite the vote's BEGIN IMMEDIATE queues the writers, which
hides most races (docs/security.md threat 16); PostgreSQL, where row locks and concurrent
transactions are real, is the run that proves the defence: TEST_DATABASE_URL=postgresql+psycopg://USER@HOST:
5432/DBNAME .venv/bin/pytest tests/voting (without the patron's lock, the budget test fails
there with four votes out of three).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace

import requests
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import Payment, Pledge, Round, Vote
from patrons.voting import service
from tests.factories import PASSWORD, make_patron, make_round
from tests.voting.conftest import vote_rows

N = 20


def signed_in(base: str, email: str) -> SimpleNamespace:
    """Cookies and a CSRF token of a signed-in session."""
    with requests.Session() as http:
        token = http.get(f"{base}/csrf-token", timeout=30).json()["token"]
        answer = http.post(f"{base}/login", data={"email": email, "password": PASSWORD,
                           "csrf_token": token}, allow_redirects=False, timeout=30)  # fmt: skip
        assert answer.status_code == 302, answer.text[:300]
        token = http.get(f"{base}/csrf-token", timeout=30).json()["token"]
        return SimpleNamespace(cookies=http.cookies.get_dict(), token=token)


def at_once(base: str, who: SimpleNamespace, paths: list[str]) -> list[int]:
    """POST every path at the same moment, each from its own connection; the status codes."""
    barrier = threading.Barrier(len(paths))

    def send(path: str) -> int:
        with requests.Session() as http:
            http.cookies.update(who.cookies)
            barrier.wait(timeout=30)
            answer = http.post(base + path, data={"csrf_token": who.token},
                               allow_redirects=False, timeout=60)  # fmt: skip
            return answer.status_code

    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        return list(pool.map(send, paths))


def test_threat_16_twenty_identical_votes_at_once_make_one_row(
    live_server: str, db: Session
) -> None:
    found = make_round(db, topics=("Rivers",))
    patron = make_patron(db)
    who = signed_in(live_server, patron.email)
    codes = at_once(live_server, who, [f"/topics/{found.topics[0].id}/vote"] * N)
    assert Counter(codes) == {303: N}, codes
    assert vote_rows(db) == 1


def test_threat_16_twenty_votes_at_once_on_twenty_topics_stay_within_the_budget(
    live_server: str, db: Session
) -> None:
    found = make_round(db, topics=tuple(f"Topic {n}" for n in range(N)))
    patron = make_patron(db)
    who = signed_in(live_server, patron.email)
    codes = at_once(live_server, who, [f"/topics/{t.id}/vote" for t in found.topics])
    assert Counter(codes) == {303: 3, 409: N - 3}, codes
    assert vote_rows(db, user_id=patron.id) == 3


def test_withdrawals_and_votes_at_once_never_exceed_the_budget(
    live_server: str, db: Session
) -> None:
    found = make_round(db, topics=tuple(f"Topic {n}" for n in range(6)))
    patron = make_patron(db)
    ids = [t.id for t in found.topics]
    for topic_id in ids[:3]:
        service.cast_vote(db, patron.id, topic_id, clock.now(), 7)
    db.commit()
    who = signed_in(live_server, patron.email)
    paths = [f"/topics/{t}/withdraw" for t in ids[:3]] * 3 + [
        f"/topics/{t}/vote" for t in ids[3:]
    ] * 3
    codes = at_once(live_server, who, paths)
    assert set(codes) <= {303, 409}, codes
    assert vote_rows(db, user_id=patron.id) <= 3
    assert 500 not in codes


def test_threat_17_a_refund_at_the_moment_of_a_vote_leaves_no_vote(
    live_server: str, db: Session
) -> None:
    """Whichever runs first, no vote counts: a vote cast before the refund records the payment
    that is then refunded; one cast after it finds no rights (403)."""
    found = make_round(db, topics=tuple(f"Topic {n}" for n in range(3)))
    patron = make_patron(db)
    who = signed_in(live_server, patron.email)
    barrier = threading.Barrier(2)

    def refund() -> None:  # what the pledge records do when a refund arrives
        with Session(db.get_bind()) as other:
            barrier.wait(timeout=30)
            pledges = select(Pledge.id).where(Pledge.user_id == patron.id)
            other.execute(
                update(Payment).where(Payment.pledge_id.in_(pledges)).values(status="refunded")
            )
            other.commit()

    def vote() -> int:
        with requests.Session() as http:
            http.cookies.update(who.cookies)
            barrier.wait(timeout=30)
            return http.post(f"{live_server}/topics/{found.topics[0].id}/vote",
                             data={"csrf_token": who.token}, allow_redirects=False,
                             timeout=60).status_code  # fmt: skip

    with ThreadPoolExecutor(max_workers=2) as pool:
        refunded = pool.submit(refund)
        voted = pool.submit(vote)
        refunded.result()
        assert voted.result() in (303, 403)
    db.rollback()
    assert service.vote_counts(db, db.get(Round, found.id)) == {}


def _waiting(app: Flask, work: Callable[[Session], bool]) -> Future[bool | int]:
    """Run `work` in a session of its own on another thread (it will wait for the voter's lock
    that the caller holds); its result, or the status of the VotingError it raised."""

    def run() -> bool | int:
        with app.test_request_context(), Session(app.extensions["db.engine"]) as other:
            try:
                result = work(other)
            except service.VotingError as exc:
                other.rollback()
                return exc.status
            other.commit()
            return result

    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(run)
    pool.shutdown(wait=False)
    return future


def test_a_vote_waiting_for_the_voters_lock_counts_the_votes_committed_meanwhile(
    app: Flask, db: Session, ctx: None
) -> None:
    """The budget is read by the INSERT itself, a statement after the one that waited for the
    lock: on PostgreSQL a count read in the locking statement would use a snapshot taken
    before the wait, miss the vote committed meanwhile and let a fourth vote in."""
    found = make_round(db, topics=tuple(f"Topic {n}" for n in range(4)))
    patron = make_patron(db)
    ids = [t.id for t in found.topics]
    for topic_id in ids[:2]:
        service.cast_vote(db, patron.id, topic_id, clock.now(), 7)
    db.commit()
    assert service.cast_vote(db, patron.id, ids[2], clock.now(), 7)  # holds the lock
    fourth = _waiting(app, lambda other: service.cast_vote(other, patron.id, ids[3],
                                                          clock.now(), 7))  # fmt: skip
    time.sleep(0.5)  # long enough for the other session to be waiting for the lock
    assert not fourth.done()
    db.commit()
    assert fourth.result(timeout=30) == 409
    assert vote_rows(db, user_id=patron.id) == 3


def test_a_withdrawal_waiting_while_staff_close_the_round_changes_nothing(
    app: Flask, db: Session, ctx: None
) -> None:
    """Closing a round takes its voters' locks; a withdrawal that waited for one reads the
    round again in its DELETE, finds it closed (409) and leaves the vote where it was."""
    found = make_round(db, topics=("Rivers",))
    patron = make_patron(db)
    topic_id = found.topics[0].id
    service.cast_vote(db, patron.id, topic_id, clock.now(), 7)
    db.commit()
    service.close_round(db, db.get(Round, found.id), clock.now())  # holds the voters' locks
    time.sleep(0.01)
    withdrawal = _waiting(app, lambda other: service.withdraw_vote(other, patron.id, topic_id,
                                                                   clock.now()))  # fmt: skip
    time.sleep(0.5)
    assert not withdrawal.done()
    db.commit()
    assert withdrawal.result(timeout=30) == 409
    assert vote_rows(db, user_id=patron.id) == 1


def test_many_patrons_voting_and_withdrawing_at_once_lose_and_duplicate_nothing(
    live_server: str, db: Session
) -> None:
    """bench/votes.py in small: each patron sends only valid changes, one after the other,
    all patrons at once; the table then holds exactly the votes each should hold."""
    found = make_round(db, topics=tuple(f"Topic {n}" for n in range(5)))
    ids = [t.id for t in found.topics]
    patrons = [make_patron(db) for _ in range(8)]
    sessions = {p.id: signed_in(live_server, p.email) for p in patrons}
    plans = {
        p.id: [(ids[(k + n) % 5], "vote") for n in range(3)]
        + [(ids[(k + 1) % 5], "withdraw"), (ids[(k + 3) % 5], "vote"), (ids[k % 5], "withdraw")]
        for k, p in enumerate(patrons)
    }
    barrier = threading.Barrier(len(plans))

    def send(user_id: int) -> list[int]:
        who = sessions[user_id]
        with requests.Session() as http:
            http.cookies.update(who.cookies)
            barrier.wait(timeout=30)
            form = {"csrf_token": who.token}
            return [
                http.post(
                    f"{live_server}/topics/{topic}/{action}",
                    data=form,
                    allow_redirects=False,
                    timeout=60,
                ).status_code  # fmt: skip
                for topic, action in plans[user_id]
            ]

    with ThreadPoolExecutor(max_workers=len(plans)) as pool:
        codes = [code for answer in pool.map(send, plans) for code in answer]
    assert Counter(codes) == {303: 6 * len(plans)}, codes
    db.rollback()
    held = {(row[0], row[1]) for row in db.execute(select(Vote.user_id, Vote.topic_id))}
    expected = {(p.id, ids[(k + n) % 5]) for k, p in enumerate(patrons) for n in (2, 3)}
    assert held == expected
    assert vote_rows(db) == len(expected)
