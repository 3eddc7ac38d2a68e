"""How many SQL statements a vote and a withdrawal run through the real routes (counted with
SQLAlchemy's `before_cursor_execute` event, not timed), so that a change that adds a query to
the busiest write of a round shows here and not only in bench/votes.py.

A vote that adds a row runs, after the session and its user (one statement, accounts' loader):
one statement that takes the voter's lock and reads the topic, its round and the payment that
gives the right to vote, then one INSERT ... SELECT that adds the vote only within the budget
while the round is open (patrons/voting/votes.py). A withdrawal: the lock with the round, then
one DELETE. SQLite adds its BEGIN IMMEDIATE (the voter's lock there). The COMMIT is not a
cursor statement. Before this was pinned, a vote ran 7 statements and a withdrawal 5.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from patrons.models import Payment
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD
from tests.voting.conftest import vote_rows

SESSION_AND_USER = 1  # the signed-in session and its user, one query (patrons/accounts)
VOTE = 2  # the lock with what to check, then the guarded INSERT
WITHDRAWAL = 2  # the lock with the round, then the DELETE
EXPLAINING = 1  # when the write changed nothing: why (already backed, budget, spent)


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL of every statement sent to the database meanwhile, in order."""
    seen: list[str] = []
    engine = app.extensions["db.engine"]

    def count(*args: Any) -> None:
        seen.append(" ".join(str(args[2]).split()))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def lock(app: Flask) -> int:
    """SQLite's voter lock is a statement of its own (BEGIN IMMEDIATE); PostgreSQL's is
    folded into the first read (FOR UPDATE OF users)."""
    return 1 if app.extensions["db.engine"].dialect.name == "sqlite" else 0


def test_a_vote_and_a_withdrawal_run_three_statements(
    app: Flask, client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    login(client, world.patron.email, PASSWORD)
    form = {"csrf_token": csrf_token(client)}
    topic = world.topics[0]

    with statements(app) as voted:
        assert client.post(f"/topics/{topic}/vote", data=form).status_code == 303
    assert len(voted) == SESSION_AND_USER + lock(app) + VOTE, voted
    assert vote_rows(db, user_id=world.patron.id) == 1
    assert sum(s.startswith("INSERT INTO votes") for s in voted) == 1
    assert not any(s.startswith("SELECT topics.id") for s in voted), "the topic is read alone"

    with statements(app) as withdrawn:
        assert client.post(f"/topics/{topic}/withdraw", data=form).status_code == 303
    assert len(withdrawn) == SESSION_AND_USER + lock(app) + WITHDRAWAL, withdrawn
    assert vote_rows(db, user_id=world.patron.id) == 0


def test_a_repeated_vote_and_withdrawal_run_one_more_statement_and_change_nothing(
    app: Flask, client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    login(client, world.patron.email, PASSWORD)
    form = {"csrf_token": csrf_token(client)}
    topic = world.topics[0]
    assert client.post(f"/topics/{topic}/vote", data=form).status_code == 303

    with statements(app) as again:
        assert client.post(f"/topics/{topic}/vote", data=form).status_code == 303
    assert len(again) == SESSION_AND_USER + lock(app) + VOTE + EXPLAINING, again
    assert vote_rows(db, user_id=world.patron.id) == 1

    assert client.post(f"/topics/{topic}/withdraw", data=form).status_code == 303
    with statements(app) as twice:
        assert client.post(f"/topics/{topic}/withdraw", data=form).status_code == 303
    assert len(twice) == SESSION_AND_USER + lock(app) + WITHDRAWAL + EXPLAINING, twice
    assert vote_rows(db, user_id=world.patron.id) == 0


def test_the_folded_checks_still_refuse(
    app: Flask, client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    """Each rule read by the one locking statement still answers as before: an unpaid patron
    (403), an unknown topic (404), the fourth vote of a budget of three (409), and a vote whose
    payment was refunded (spent: 409 on voting again and on withdrawing)."""
    login(client, world.unpaid.email, PASSWORD)
    form = {"csrf_token": csrf_token(client)}
    assert client.post(f"/topics/{world.topics[0]}/vote", data=form).status_code == 403
    assert vote_rows(db) == 0

    client.post("/logout", data=form)
    login(client, world.patron.email, PASSWORD)
    form = {"csrf_token": csrf_token(client)}
    assert client.post("/topics/999999/vote", data=form).status_code == 404
    for topic in world.topics[:3]:
        assert client.post(f"/topics/{topic}/vote", data=form).status_code == 303
    refused = client.post(f"/topics/{world.topics[3]}/vote", data=form)
    assert refused.status_code == 409 and "used all 3" in refused.get_data(as_text=True)

    db.query(Payment).update({"status": "refunded"})
    db.commit()
    assert client.post(f"/topics/{world.topics[0]}/withdraw", data=form).status_code == 409
    assert vote_rows(db, user_id=world.patron.id) == 3
