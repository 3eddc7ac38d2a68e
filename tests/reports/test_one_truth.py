"""One truth for staff (docs/architecture.md): every screen and CSV that shows a round's
votes, voters, active patrons or turnout, and the reports' active patrons, agree with the
results pages and with the definitions (patrons/voting/participation.py,
patrons/pledges/entitlement.py), on the demo data and on generated data.

The expected figures are worked out here in plain Python from the rows (a vote counts when
it has no payment or its payment is paid, partially refunded or a dispute won, and was cast
before the close), independently of the SQL under test.
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections import Counter
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons import demo
from patrons.core import clock
from patrons.models import Payment, Pledge, Round, Topic, Vote
from patrons.pledges.entitlement import active_patron_ids
from patrons.voting import demo as voting_demo
from patrons.voting.rules import LISTED
from tests.conftest import login
from tests.factories import PASSWORD, make_staff, make_user

GRACE = 7
COUNTING = ("paid", "partially_refunded", "dispute_won")
PAYMENT_STATES = ("paid", "paid", "paid", "partially_refunded", "refunded", "disputed",
                  "dispute_won", "dispute_lost", "failed")  # fmt: skip
PLEDGE_STATES = ("active", "active", "active", "trialing", "past_due", "canceled", "unpaid")


def read_csv(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.status_code
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def expected_counts(db: Session, found: Round) -> tuple[dict[int, int], int]:
    """(counted votes per topic, voters) of a round, from the rows."""
    status = dict(db.execute(select(Payment.id, Payment.status)).all())
    counted = [
        v for v in db.scalars(select(Vote).where(Vote.round_id == found.id))
        if v.created_at < found.closes_at
        and (v.payment_id is None or status.get(v.payment_id) in COUNTING)
    ]  # fmt: skip
    return dict(Counter(v.topic_id for v in counted)), len({v.user_id for v in counted})


def active_now(db: Session, now: datetime) -> int:
    ids = active_patron_ids(now, GRACE).subquery()
    return int(db.scalar(select(func.count()).select_from(ids)) or 0)


def page_counts(html: str) -> dict[int, int]:
    """Votes per topic as a results table shows them (the public page and the staff page)."""
    rows = re.findall(r'<tr id="topic-(\d+)">\s*<td>.*?</td>\s*<td>(\d+)</td>', html, re.S)
    return {int(topic): int(votes) for topic, votes in rows}


def staff_page_counts(html: str) -> dict[int, int]:
    rows = re.findall(r'<tr id="topic-(\d+)">\s*<td>\d+</td>\s*<td>.*?</td>\s*<td>(\d+)</td>',
                      html, re.S)  # fmt: skip
    return {int(topic): int(votes) for topic, votes in rows}


def check_agreement(client: FlaskClient, db: Session, changed_since_frozen: bool = False) -> None:
    """Every screen against the results page and the definitions. A closed round's results
    are its frozen ones: the counted votes at the first read after the close (unless
    `changed_since_frozen`: a refund since then leaves them as they were, by design)."""
    now = clock.now()
    rounds = db.scalars(select(Round).where(Round.opens_at <= now).order_by(Round.id)).all()
    assert rounds
    # first the pages that freeze a closed round's results on their first read
    public: dict[int, dict[int, int]] = {}
    staff_pages: dict[int, str] = {}
    for found in rounds:
        if found.is_closed(now):
            public[found.id] = page_counts(client.get(f"/topics/rounds/{found.id}").text)
        staff_pages[found.id] = client.get(f"/staff/voting/rounds/{found.id}").text
    db.expire_all()
    eligible = active_now(db, now)
    report = f"/staff/reports?from={(now - timedelta(days=360)).date()}&to={now.date()}"
    query = report.split("?")[1]
    html = client.get(report).text
    assert f'<dd id="figure-patrons">{eligible}</dd>' in html
    now_csv = read_csv(client.get(f"/staff/reports/now.csv?{query}"))
    assert int(now_csv[-1][1]) == eligible
    voting_rows = {r[0]: r for r in read_csv(client.get(f"/staff/reports/voting.csv?{query}"))}
    results_rows = read_csv(client.get(f"/staff/reports/results.csv?{query}"))[1:]
    for found in rounds:
        db.refresh(found)
        counts, voters = expected_counts(db, found)
        listed = {t.id for t in found.topics if t.status in LISTED}
        want = {t: counts.get(t, 0) for t in listed}
        want_voters, want_eligible = voters, eligible
        if found.frozen_at is not None:  # frozen: the figures the first read copied
            frozen = {t.id: t.final_votes or 0 for t in found.topics if t.id in listed}
            turnout = (found.final_voters, found.final_eligible)
            assert changed_since_frozen or (frozen, turnout) == (want, (voters, eligible))
            want = frozen
            want_voters, want_eligible = found.final_voters or 0, found.final_eligible or 0
        if found.id in public:
            assert public[found.id] == want, found.title
        assert staff_page_counts(staff_pages[found.id]) == want, found.title
        taken = re.search(r"Turnout: (\d+) of (\d+) active patrons voted", staff_pages[found.id])
        if want_eligible:
            assert taken and (int(taken[1]), int(taken[2])) == (want_voters, want_eligible)
        export = read_csv(client.get(f"/staff/voting/rounds/{found.id}/results.csv"))
        assert {int(r[2]): int(r[5]) for r in export[1:]} == want
        row = voting_rows[found.title]
        share = f"{round(100 * want_voters / want_eligible, 1):.1f}" if want_eligible else ""
        assert row[3:] == [str(want_voters), str(want_eligible), share, str(sum(want.values()))]
        titles = {t.title: t.id for t in found.topics}
        mine = {titles[r[1]]: int(r[3]) for r in results_rows if r[0] == found.title}
        assert mine == want, found.title


@pytest.fixture
def staff(app: Flask, db: Session, client: FlaskClient) -> FlaskClient:
    make_staff(db)
    login(client, "editor@example.org", PASSWORD)
    return client


def test_the_demo_data_agrees_everywhere(app: Flask, db: Session, staff: FlaskClient) -> None:
    """The defect: the reports said 0 voters, 0 votes, 0 % for the demo's closed round while
    its results page showed 41/33/27/12; one screen counted 59 active patrons, another 69."""
    with app.app_context():
        from patrons.core.db import session

        demo.seed(session)
        session.commit()
    past = db.scalar(select(Round).where(Round.title == voting_demo.PAST_ROUND["title"]))
    assert past is not None and past.frozen_at is not None
    assert [t.final_votes for t in past.topics] == [41, 33, 27, 12]
    counts, voters = expected_counts(db, past)
    assert sorted(counts.values(), reverse=True) == [41, 33, 27, 12] and voters >= 41
    statuses = set(db.scalars(select(Payment.status)))
    assert {"refunded", "partially_refunded", "dispute_lost", "dispute_won"} <= statuses
    check_agreement(staff, db)


def generate(db: Session, seed: int) -> None:
    """Patrons with pledges in every state, payments in every state (the latest one decides
    their rights), rounds open and closed, votes with their payment, without one (before
    votes recorded it), and with a payment later refunded or disputed."""
    rng = random.Random(seed)  # noqa: S311  (test data)
    now = clock.now()
    rounds = []
    for n, (opens, closes) in enumerate(((-80, -60), (-40, -20), (-3, 10), (-1, 1))):
        found = Round(title=f"Round {seed}-{n}", opens_at=now + timedelta(days=opens),
                      closes_at=now + timedelta(days=closes), votes_per_patron=3)  # fmt: skip
        db.add(found)
        db.flush()
        for k in range(rng.randint(2, 5)):
            status = rng.choice(("in_round", "in_round", "chosen", "merged"))
            db.add(Topic(round_id=found.id, title=f"Topic {n}-{k}", status=status))
        rounds.append(found)
    db.flush()
    for n in range(rng.randint(10, 30)):
        user = make_user(db)
        status = rng.choice(PLEDGE_STATES)
        pledge = Pledge(user_id=user.id, amount=rng.choice((300, 500, 1000)),
                        currency=rng.choice(("EUR", "USD")), status=status,
                        created_at=now - timedelta(days=100))  # fmt: skip
        db.add(pledge)
        db.flush()
        payments = []
        for k in range(rng.randint(1, 3)):
            state = rng.choice(PAYMENT_STATES)
            paid = now - timedelta(days=90 - 30 * k)
            payment = Payment(pledge_id=pledge.id, stripe_invoice_id=f"in_{seed}_{n}_{k}",
                              amount=pledge.amount, currency=pledge.currency, status=state,
                              created_at=paid, paid_at=None if state == "failed" else paid,
                              first_failed_at=paid - timedelta(days=rng.choice((1, 20)))
                              if state == "failed" else None)  # fmt: skip
            db.add(payment)
            db.flush()
            payments.append(payment)
        for found in rounds:
            topics = [t for t in found.topics if t.status != "merged"]
            for topic in rng.sample(topics, rng.randint(0, min(3, len(topics)))):
                payment = rng.choice([None, *payments])
                when = found.opens_at + timedelta(hours=rng.randint(1, 20))
                if rng.random() < 0.05:
                    when = found.closes_at + timedelta(hours=1)  # too late: never counts
                db.add(Vote(user_id=user.id, topic_id=topic.id, round_id=found.id,
                            payment_id=payment.id if payment else None,
                            created_at=when))  # fmt: skip
    db.commit()


@pytest.mark.parametrize("seed", range(4))
def test_generated_data_agrees_everywhere(db: Session, staff: FlaskClient, seed: int) -> None:
    generate(db, seed)
    check_agreement(staff, db)
    # and after a refund and a won dispute arrive, before any page is read again
    payments = db.scalars(select(Payment).where(Payment.status.in_(COUNTING))).all()
    if payments:
        payments[0].status = "refunded"
        payments[-1].status = "dispute_won"
        db.commit()
    check_agreement(staff, db, changed_since_frozen=True)
