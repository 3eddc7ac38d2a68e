"""Voting fixtures: an app context for the services (their messages are translated), and
readers in each role."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.models import Vote
from tests.browser.conftest import live_server  # noqa: F401  (the app on a real server, threaded)
from tests.factories import make_patron, make_round, make_staff, make_user


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    with app.test_request_context():
        yield


@pytest.fixture
def world(db: Session) -> SimpleNamespace:
    """An open round of four topics, a patron, a member, a patron whose payment never went
    through, and a staff member."""
    found = make_round(db, topics=("Rivers", "Schools", "Ferries", "Libraries"))
    return SimpleNamespace(
        round=found,
        topics=[t.id for t in found.topics],
        patron=make_patron(db),
        member=make_user(db),
        unpaid=make_patron(db, paid=False),
        staff=make_staff(db),
    )


def vote_rows(db: Session, **where: int) -> int:
    db.rollback()
    query = select(func.count()).select_from(Vote)
    for name, value in where.items():
        query = query.where(getattr(Vote, name) == value)
    return db.scalar(query) or 0
