"""Who is an active patron (docs/security.md threat 14): one function, checked against the
documented table for every status, with the period ending in the future or the past, inside
or beyond the grace period, with and without a paid invoice."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import Payment, Pledge
from patrons.pledges.entitlement import GRACE_DAYS, is_active_patron, user_is_active_patron
from tests.factories import make_patron, make_user

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
STATUSES = (
    "active",
    "trialing",
    "past_due",
    "unpaid",
    "incomplete",
    "incomplete_expired",
    "paused",
    "canceled",
)
# where the current period ends, relative to now and to the grace period after it
PERIODS = {
    "future": timedelta(days=20),
    "just ended": timedelta(seconds=-1),
    "past, within grace": timedelta(days=-(GRACE_DAYS - 1)),
    "past, at the end of grace": timedelta(days=-GRACE_DAYS),
    "past, beyond grace": timedelta(days=-(GRACE_DAYS + 1)),
    "unknown": None,
}


def documented(status: str, period: str, paid: bool) -> bool:
    """docs/security.md threat 14, written out: active/trialing yes; past_due until the period
    end plus the grace days; everything else no; and nobody without a paid invoice."""
    if not paid:
        return False
    if status in ("active", "trialing"):
        return True
    if status == "past_due":
        return period in ("future", "just ended", "past, within grace", "past, at the end of grace")
    return False


CASES = list(itertools.product(STATUSES, PERIODS, (True, False)))


def test_threat_14_the_table_covers_every_status_period_and_payment() -> None:
    assert len(STATUSES) == 8
    assert len(CASES) == 8 * len(PERIODS) * 2


@pytest.mark.parametrize(("status", "period", "paid"), CASES, ids=lambda v: str(v))
def test_threat_14_entitlement_matches_the_documented_table(
    status: str, period: str, paid: bool
) -> None:
    offset = PERIODS[period]
    period_end = None if offset is None else NOW + offset
    assert is_active_patron(status, paid, period_end, NOW) is documented(status, period, paid)


@pytest.mark.parametrize("status", STATUSES)
def test_threat_14_a_shorter_grace_ends_rights_sooner(status: str) -> None:
    three_days_ago = NOW - timedelta(days=3)
    expected = status in ("active", "trialing")
    assert is_active_patron(status, True, three_days_ago, NOW, grace_days=2) is expected
    assert is_active_patron(status, True, three_days_ago, NOW, grace_days=0) is expected
    assert is_active_patron(status, True, NOW, NOW, grace_days=0) is (
        status in ("active", "trialing", "past_due")
    )


def test_threat_14_the_database_answer_uses_the_same_rule(db: Session) -> None:
    now = clock.now()
    active = make_patron(db, status="active")
    unpaid_active = make_patron(db, status="active", paid=False)
    lapsed = make_patron(db, status="past_due")
    for pledge in db.query(Pledge).filter(Pledge.user_id == lapsed.id):
        pledge.current_period_end = now - timedelta(days=GRACE_DAYS + 2)
    in_grace = make_patron(db, status="past_due")
    canceled = make_patron(db, status="canceled")
    member = make_user(db)
    refunded = make_patron(db, status="active")
    for payment in db.query(Payment).join(Pledge).filter(Pledge.user_id == refunded.id):
        payment.status = "refunded"  # a refunded first payment is no paid invoice
    db.commit()
    assert user_is_active_patron(db, active.id, now)
    assert not user_is_active_patron(db, unpaid_active.id, now)
    assert not user_is_active_patron(db, lapsed.id, now)
    assert user_is_active_patron(db, in_grace.id, now)
    assert not user_is_active_patron(db, canceled.id, now)
    assert not user_is_active_patron(db, member.id, now)
    assert not user_is_active_patron(db, refunded.id, now)


def test_threat_14_the_database_answer_takes_the_configured_grace(db: Session) -> None:
    """PLEDGE_GRACE_DAYS reaches the one function: 3 days past due is in a 7-day grace,
    out of a 2-day one."""
    user = make_patron(db, status="past_due")
    pledge = db.query(Pledge).filter_by(user_id=user.id).one()
    pledge.current_period_end = clock.now() - timedelta(days=3)
    db.commit()
    assert user_is_active_patron(db, user.id, clock.now(), grace_days=7)
    assert not user_is_active_patron(db, user.id, clock.now(), grace_days=2)
