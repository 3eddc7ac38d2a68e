"""The daily rollup gives the figures the history gives, however it was built (all at once,
or a few days at a time), and the SQL "active patron" rule is entitlement.py's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
from flask import Flask
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import Payment, Pledge, ReportDay
from patrons.pledges.entitlement import active_patron_ids
from patrons.reports import cli, queries, rollup
from tests.factories import make_user
from tests.reports import scenario


def figures(db: Session, now: datetime, grace: int = scenario.GRACE_DAYS):  # type: ignore[no-untyped-def]
    """The rollup brought up to date (what `flask update-reports` does), then read."""
    rollup.update(db, now, grace)
    return read(db, now, grace)


def read(db: Session, now: datetime, grace: int = scenario.GRACE_DAYS):  # type: ignore[no-untyped-def]
    """The figures as the report pages read them: the rollup as it is, written to never."""
    found = rollup.history(db, now, grace)
    totals = rollup.invoices(db, scenario.at(1, 1, 2025), now, found.settled_until)
    return found.deltas, found.flows, dict(totals)


def unrolled(db: Session, now: datetime, grace: int = scenario.GRACE_DAYS):  # type: ignore[no-untyped-def]
    """The same figures straight from the history, with no rollup at all."""
    rows = queries.monthly_deltas(db, now, grace)
    deltas = [rollup.Delta(r.month, r.currency, int(r.amount), int(r.patrons))
              for r in rows if int(r.amount) or int(r.patrons)]  # fmt: skip
    flows = {r.month: rollup.Flow(r.month, int(r.new), int(r.cancelled), int(r.recovered))
             for r in queries.monthly_flows(db, scenario.at(1, 1, 2025), now)}  # fmt: skip
    totals: dict[str, list[int]] = {}
    for r in queries.invoices_by_month(db, scenario.at(1, 1, 2025), now):
        found = totals.setdefault(r.currency, [0, 0])
        found[0] += int(r.invoices)
        found[1] += int(r.invoiced)
    return sorted(deltas, key=lambda d: (d.month, d.currency)), flows, totals


def test_the_rollup_gives_the_history_s_figures(app: Flask, db: Session) -> None:
    scenario.build(db)
    expected = unrolled(db, scenario.NOW)
    first = figures(db, scenario.NOW)  # builds the rollup
    db.commit()
    assert first == expected
    # it is used: the settled days are in it (up to 04-15 − 7 − 1 days = 04-07)
    days = db.scalars(select(ReportDay.day).where(ReportDay.currency == "")).all()
    assert min(days) == "2025-12-01" and max(days) == "2026-04-06"
    assert figures(db, scenario.NOW) == expected  # read back from it


def test_a_rollup_built_day_by_day_equals_one_built_at_once(app: Flask, db: Session) -> None:
    scenario.build(db)
    now = scenario.at(1, 5)
    while now <= scenario.NOW:  # views every few days, each adding the days settled since
        figures(db, now)
        db.commit()
        now += timedelta(days=3)
    stepwise = figures(db, scenario.NOW)
    db.execute(delete(ReportDay))
    db.commit()
    assert figures(db, scenario.NOW) == stepwise == unrolled(db, scenario.NOW)


def test_another_grace_period_rebuilds_the_rollup(app: Flask, db: Session) -> None:
    scenario.build(db)
    figures(db, scenario.NOW, grace=7)
    db.commit()
    assert figures(db, scenario.NOW, grace=30) == unrolled(db, scenario.NOW, grace=30)
    db.commit()
    graces = db.scalars(select(func.distinct(ReportDay.grace_days))).all()
    assert graces == [30]


def report_days(db: Session) -> list[tuple[str, str, int]]:
    return [tuple(r) for r in db.execute(  # type: ignore[misc]
        select(ReportDay.day, ReportDay.currency, ReportDay.grace_days)
        .order_by(ReportDay.day, ReportDay.currency)
    )]  # fmt: skip


def test_reading_writes_nothing_and_gives_the_same_figures_however_far_the_rollup_is(
    app: Flask, db: Session
) -> None:
    scenario.build(db)
    expected = unrolled(db, scenario.NOW)
    assert read(db, scenario.NOW) == expected  # no rollup yet: all from the history
    assert report_days(db) == []
    rollup.update(db, scenario.at(2, 20), scenario.GRACE_DAYS)  # behind by two months
    db.commit()
    behind = report_days(db)
    assert behind and read(db, scenario.NOW) == expected
    # a rollup ahead of the reading's `now` gives only the days settled by then
    assert read(db, scenario.at(2, 1))[0] == unrolled(db, scenario.at(2, 1))[0]
    assert read(db, scenario.NOW, grace=30) == unrolled(db, scenario.NOW, grace=30)  # not its
    db.commit()
    assert report_days(db) == behind


def test_update_reports_command_brings_the_rollup_up_to_date(
    app: Flask, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario.build(db)
    monkeypatch.setattr(clock, "now", lambda: scenario.NOW)
    result = app.test_cli_runner().invoke(cli.update_reports)
    assert result.exit_code == 0, result.output
    assert "it holds every day before 2026-04-07" in result.output
    db.expire_all()
    days = db.scalars(select(ReportDay.day).where(ReportDay.currency == "")).all()
    assert (min(days), max(days)) == ("2025-12-01", "2026-04-06")
    assert read(db, scenario.NOW) == unrolled(db, scenario.NOW)
    again = app.test_cli_runner().invoke(cli.update_reports)
    assert again.exit_code == 0 and "0 rows added" in again.output


NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
STATUSES = ("active", "trialing", "past_due", "canceled", "unpaid", "incomplete",
            "incomplete_expired", "pending")  # fmt: skip
PERIOD_ENDS = (NOW + timedelta(days=10), NOW - timedelta(days=3), NOW - timedelta(days=7),
               NOW - timedelta(days=8), None)  # fmt: skip


@pytest.mark.parametrize("grace", [7, 0])
def test_the_reports_active_patrons_are_entitlement_s(app: Flask, db: Session, grace: int) -> None:
    """Today's patrons in the reports are entitlement.active_patron_ids, whatever the status,
    the first failed attempt and the state of the latest payment."""
    states = ("paid", "partially_refunded", "refunded", "disputed", "dispute_won", "dispute_lost")
    for number, (status, failed_at, latest) in enumerate(product(STATUSES, PERIOD_ENDS, states)):
        user = make_user(db)
        pledge = Pledge(user_id=user.id, amount=100 + number, currency="EUR", status=status,
                        current_period_end=NOW + timedelta(days=20), created_at=NOW)  # fmt: skip
        db.add(pledge)
        db.flush()
        db.add(Payment(pledge_id=pledge.id, stripe_invoice_id=f"in_rule{number}", amount=100,
                       currency="EUR", status="paid", created_at=NOW - timedelta(days=40),
                       paid_at=NOW - timedelta(days=40)))  # fmt: skip
        db.add(Payment(pledge_id=pledge.id, stripe_invoice_id=f"in_rule{number}b", amount=100,
                       currency="EUR", status=latest, created_at=NOW - timedelta(days=10),
                       paid_at=NOW - timedelta(days=10)))  # fmt: skip
        if failed_at is not None:
            db.add(Payment(pledge_id=pledge.id, stripe_invoice_id=f"in_rule{number}c",
                           amount=100, currency="EUR", status="failed", created_at=failed_at,
                           first_failed_at=failed_at))  # fmt: skip
    db.commit()
    expected = db.scalar(select(func.count()).select_from(active_patron_ids(NOW, grace).subquery()))
    found = queries.active_pledges_now(db, NOW, grace)
    assert sum(int(r.patrons) for r in found) == expected
    assert 0 < expected < len(STATUSES) * len(PERIOD_ENDS) * len(states)
