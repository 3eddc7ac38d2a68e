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
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import Payment, Pledge, Round
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
