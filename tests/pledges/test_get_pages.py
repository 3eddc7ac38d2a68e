"""A GET of a pledge page writes nothing: only the POST handlers commit (docs/architecture.md,
"How a request flows")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from patrons.models import Payment
from tests.factories import make_user
from tests.pledges.test_pledge_flow import Reader, active_pledge


@contextmanager
def commits() -> Iterator[list[Session]]:
    """The sessions that committed inside the block, once per commit."""
    seen: list[Session] = []

    def count(session: Session) -> None:
        seen.append(session)

    event.listen(Session, "after_commit", count)
    try:
        yield seen
    finally:
        event.remove(Session, "after_commit", count)


def test_the_pages_a_get_shows_never_commit(app: Flask, db: Session, localstripe: str) -> None:
    reader = Reader(app, make_user(db), localstripe)
    pledge = active_pledge(reader, db)
    payment_id = db.scalar(select(Payment.id).where(Payment.pledge_id == pledge.id))
    db.rollback()
    pages = [
        "/support",
        "/support?currency=EUR&amount=700",
        "/support?currency=EUR&amount=other&other_amount=7.50",
        "/pledge",
        f"/pledge/receipts/{payment_id}",
    ]
    with commits() as seen:
        for url in pages:
            assert reader.client.get(url).status_code == 200, url
    assert seen == []

    with commits() as seen:  # and the counter does see the commits of a POST
        assert reader.form("/pledge/cancel", {"reason": "moving"}).status_code == 303
    assert seen
