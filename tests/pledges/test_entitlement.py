"""Who is an active patron (docs/security.md threat 14), in the one SQL definition
(patrons/pledges/entitlement.py), checked against the documented table for every subscription
status, every state of the latest payment, and a failed renewal inside or beyond the grace
period counted from the first refused attempt (not from the period's end)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import Payment, Pledge
from patrons.pledges import entitlement
from patrons.pledges.entitlement import (
    GRACE_DAYS,
    active_patron_ids,
    rights_payment_id,
    rights_until,
    user_is_active_patron,
)
from tests.factories import make_patron, make_user

STATUSES = ("active", "trialing", "past_due", "unpaid", "incomplete", "incomplete_expired",
            "paused", "canceled", "pending", "abandoned")  # fmt: skip
PAYMENTS = ("paid", "partially_refunded", "refunded", "disputed", "dispute_won", "dispute_lost",
            None)  # fmt: skip
# days since the renewal was first refused (past_due only)
FAILURES = {"just now": 0, "within grace": GRACE_DAYS - 1, "beyond grace": GRACE_DAYS + 1}


def documented(status: str, payment: str | None, failure: str) -> bool:
    """docs/security.md threat 14, written out: active/trialing, or past_due for GRACE_DAYS
    after the first refused attempt; and the latest payment counts (paid, partly refunded,
    dispute won); a full refund, an open or lost dispute, or no payment: no rights."""
    if payment not in ("paid", "partially_refunded", "dispute_won"):
        return False
    if status in ("active", "trialing"):
        return True
    return status == "past_due" and failure != "beyond grace"


CASES = list(itertools.product(STATUSES, PAYMENTS, FAILURES))


@pytest.mark.parametrize(("status", "payment", "failure"), CASES, ids=lambda v: str(v))
def test_threat_14_entitlement_matches_the_documented_table(
    db: Session, status: str, payment: str | None, failure: str
) -> None:
    now = clock.now()
    user = make_patron(db, status="active", paid=payment is not None)
    db.execute(update(Pledge).where(Pledge.user_id == user.id).values(status=status))
    if payment is not None:
        db.execute(update(Payment).values(status=payment))
    if status == "past_due":  # the renewal refused `failure` ago (the period ended long ago)
        pledge_id = db.scalar(select(Pledge.id).where(Pledge.user_id == user.id))
        db.execute(
            update(Pledge).values(current_period_end=now - timedelta(days=40))
        )  # fmt: skip
        refused = now - timedelta(days=FAILURES[failure], hours=1)
        db.add(Payment(pledge_id=pledge_id, stripe_invoice_id="in_renewal", amount=500,
                       currency="EUR", status="failed", created_at=now,
                       first_failed_at=refused))  # fmt: skip
    db.commit()
    expected = documented(status, payment, failure)
    assert user_is_active_patron(db, user.id, now) is expected
    ids = set(db.scalars(active_patron_ids(now)))
    assert (user.id in ids) is expected  # the list the reports count is the same rule


def test_the_latest_payment_decides_and_gives_the_votes_their_payment(db: Session) -> None:
    """An old refunded payment does not matter once a later one is paid; a refund of the
    latest one ends the rights even if an older one stands."""
    now = clock.now()
    user = make_patron(db)
    pledge_id = db.scalar(select(Pledge.id).where(Pledge.user_id == user.id))
    first = db.scalar(select(Payment.id))
    db.add(Payment(pledge_id=pledge_id, stripe_invoice_id="in_second", amount=500, currency="EUR",
                   status="paid", created_at=now, paid_at=now + timedelta(seconds=1)))  # fmt: skip
    db.execute(update(Payment).where(Payment.id == first).values(status="refunded"))
    db.commit()
    second = db.scalar(select(Payment.id).where(Payment.stripe_invoice_id == "in_second"))
    assert rights_payment_id(db, user.id, now) == second
    db.execute(update(Payment).values(status="refunded"))
    db.execute(update(Payment).where(Payment.id == first).values(status="paid"))
    db.commit()
    assert rights_payment_id(db, user.id, now) is None


def test_threat_14_the_configured_grace_counts_from_the_first_refusal(db: Session) -> None:
    """PLEDGE_GRACE_DAYS reaches the one function: refused 3 days ago is in a 7-day grace,
    out of a 2-day one; and the rights end is what the pledge page and the mail say."""
    user = make_patron(db, status="past_due", failed_at=clock.now() - timedelta(days=3))
    now = clock.now()
    assert user_is_active_patron(db, user.id, now, grace_days=7)
    assert not user_is_active_patron(db, user.id, now, grace_days=2)
    pledge = db.scalars(select(Pledge).where(Pledge.user_id == user.id)).one()
    until = rights_until(db, pledge, 7)
    assert until is not None and abs(until - (now + timedelta(days=4))) < timedelta(minutes=1)


def test_a_reader_without_a_pledge_has_no_rights(db: Session) -> None:
    member = make_user(db)
    now = clock.now()
    assert not user_is_active_patron(db, member.id, now)
    assert db.scalar(select(func.count()).select_from(active_patron_ids(now).subquery())) == 0


def test_the_patron_check_is_compiled_once_and_then_served_from_the_cache(
    app, db, monkeypatch
) -> None:
    """The signed-in article asks on every request: the statement is built once, the reader
    and the grace cutoff are bound parameters, so another reader at another time (another
    grace) reuses SQLAlchemy's compiled statement ("[cached since ...]" in its log)."""
    engine = app.extensions["db.engine"]
    seen: list[tuple[str, CacheStats]] = []

    def on_statement(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "pledges" in statement:
            seen.append((statement, context.cache_hit))

    patron, member = make_patron(db), make_user(db)
    now = clock.now()
    monkeypatch.setattr(entitlement, "select", None)  # nothing built per call
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        assert user_is_active_patron(db, patron.id, now)
        assert not user_is_active_patron(db, member.id, now + timedelta(days=1), grace_days=3)
        assert rights_payment_id(db, patron.id, now - timedelta(hours=5), grace_days=1)
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
    assert len(seen) == 3 and len({sql for sql, _ in seen}) == 1
    assert [hit for _, hit in seen[1:]] == [CacheStats.CACHE_HIT] * 2
