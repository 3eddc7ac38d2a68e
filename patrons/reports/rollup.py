"""The daily rollup of the pledge history and the invoices: the figures of days that can no
longer change are computed once and kept in `report_days`.

A day can no longer change once it is more than the grace period old (and at least the
three days Stripe retries a webhook, plus a day): the status history is appended to at the
time a change is learnt, never back-dated, so no later change can start, end or shorten a
span on it; a past-due span that began on it has met its grace period's end; and a late
invoice has arrived.

Writing and reading are apart, so a page that shows figures never writes (docs/architecture.md:
only POST/PUT/DELETE commit). `update` adds the days settled since the last update (the first
reads the whole history once; a change of PLEDGE_GRACE_DAYS rebuilds them all): it is run by
`flask --app patrons update-reports` (cli.py), daily. `history` and `invoices` only read: the
days the rollup holds from it, every later day (all of them, while the rollup is empty or
was made for another grace period) from the history, so the figures are the same however
far the rollup has got; it only makes them faster.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from patrons.core.db import insert_or_ignore
from patrons.models import ReportDay
from patrons.reports import queries

LATE_DAYS = 1  # webhooks retried for a day still land on the day they describe
INVOICE_LATE_DAYS = 3  # Stripe retries a webhook for up to three days: a late invoice


@dataclass(frozen=True)
class Delta:
    month: str
    currency: str
    amount: int
    patrons: int


@dataclass(frozen=True)
class Flow:
    month: str
    new: int
    cancelled: int
    recovered: int


@dataclass(frozen=True)
class History:
    deltas: list[Delta]  # per month and currency
    flows: dict[str, Flow]  # per month
    settled_until: datetime | None  # the days before this come from the rollup (None: none)


@dataclass(frozen=True)
class Update:
    rows: int  # rows added to the rollup
    settled_until: datetime  # the rollup now holds every day before this


def settled_until(now: datetime, grace_days: int) -> datetime:
    """Midnight (UTC) starting the earliest day that may still change."""
    day = (now - timedelta(days=max(grace_days, INVOICE_LATE_DAYS) + LATE_DAYS)).date()
    return datetime.combine(day, time.min, UTC)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _rolled_until(db: Session, grace_days: int) -> datetime | None:
    """The day after the last one in the rollup (the rollup has every day before it), or
    None if it is empty or was made with another grace period."""
    graces = tuple(
        db.execute(select(func.min(ReportDay.grace_days), func.max(ReportDay.grace_days))).one()
    )
    if graces != (grace_days, grace_days):
        return None
    last = db.scalar(select(func.max(ReportDay.day)).where(ReportDay.currency == ""))
    return _midnight(date.fromisoformat(last) + timedelta(days=1)) if last else None


def _read_until(db: Session, now: datetime, grace_days: int) -> datetime | None:
    """Up to when a reading at `now` takes the rollup's days (None: it takes none)."""
    rolled = _rolled_until(db, grace_days)
    return None if rolled is None else min(rolled, settled_until(now, grace_days))


def _rows(
    db: Session, since: datetime | None, until: datetime, now: datetime, grace_days: int
) -> list[dict[str, Any]]:
    """Rollup rows for every day in [since, until) (since None: from the first one)."""
    first = since or queries.history_start(db)
    if first is None or first >= until:
        return []
    start = _midnight(first.date())
    deltas = queries.monthly_deltas(db, now, grace_days, since=since, until=until, by_day=True)
    flows = queries.monthly_flows(db, start, until, by_day=True)
    invoices = queries.invoices_by_month(db, start, until, by_day=True)
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(day: str, currency: str) -> dict[str, Any]:
        blank = dict(
            day=day,
            currency=currency,
            grace_days=grace_days,
            amount=0,
            patrons=0,
            new=0,
            cancelled=0,
            recovered=0,
            invoices=0,
            invoiced=0,
            computed_at=now,
        )
        return rows.setdefault((day, currency), blank)

    day = start.date()
    while day < until.date():  # every day has its own row: the rollup is known to hold it
        row(day.isoformat(), "")
        day += timedelta(days=1)
    for f in flows:
        row(f.month, "").update(
            new=int(f.new), cancelled=int(f.cancelled), recovered=int(f.recovered)
        )
    for d in deltas:
        row(d.month, d.currency).update(amount=int(d.amount), patrons=int(d.patrons))
    for i in invoices:
        row(i.month, i.currency).update(invoices=int(i.invoices), invoiced=int(i.invoiced))
    return list(rows.values())


def _save(db: Session, rows: list[dict[str, Any]]) -> None:
    """Insert, leaving alone what a concurrent update inserted first (the same figures)."""
    for start in range(0, len(rows), 500):
        db.execute(insert_or_ignore(db, ReportDay, rows[start : start + 500]))


def update(db: Session, now: datetime, grace_days: int) -> Update:
    """Add the days settled since the last update; a rollup made for another grace period
    is emptied and made again. The caller commits."""
    until = settled_until(now, grace_days)
    since = _rolled_until(db, grace_days)
    if since is None:
        db.execute(delete(ReportDay))  # empty already, or made for another grace period
    rows = _rows(db, since, until, now, grace_days) if since is None or since < until else []
    _save(db, rows)
    return Update(len(rows), until)


def _add_rolled_up(
    db: Session,
    until: datetime,
    amounts: dict[tuple[str, str], list[int]],
    flows: dict[str, list[int]],
) -> None:
    """The rollup's days before `until`, per month: [amount, patrons] per month and
    currency, and [new, cancelled, recovered] per month."""
    month = func.substr(ReportDay.day, 1, 7)
    for r in db.execute(
        select(
            month,
            ReportDay.currency,
            func.sum(ReportDay.amount),
            func.sum(ReportDay.patrons),
            func.sum(ReportDay.new),
            func.sum(ReportDay.cancelled),
            func.sum(ReportDay.recovered),
        )
        .where(ReportDay.day < until.date().isoformat())
        .group_by(month, ReportDay.currency)
    ):
        if r[1]:
            amounts[(r[0], r[1])] = [int(r[2]), int(r[3])]
        else:
            flows[r[0]] = [int(r[4]), int(r[5]), int(r[6])]


def history(db: Session, now: datetime, grace_days: int) -> History:
    """Every month's changes in MRR and patrons, and its new, cancelled and recovered
    patrons: the days the rollup holds from it, the others from the history. Reads only."""
    until = _read_until(db, now, grace_days)
    amounts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    flows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    if until is not None:
        _add_rolled_up(db, until, amounts, flows)
    for d in queries.monthly_deltas(db, now, grace_days, since=until):
        amounts[(d.month, d.currency)][0] += int(d.amount)
        amounts[(d.month, d.currency)][1] += int(d.patrons)
    live_start = until or queries.history_start(db)
    live = queries.monthly_flows(db, live_start, now + timedelta(days=3660)) if live_start else ()
    for f in live:
        for i, value in enumerate((f.new, f.cancelled, f.recovered)):
            flows[f.month][i] += int(value)
    return History(
        [Delta(m, c, a, p) for (m, c), (a, p) in sorted(amounts.items()) if a or p],
        {m: Flow(m, *values) for m, values in flows.items()},
        until,
    )


def invoices(
    db: Session, start: datetime, end: datetime, until: datetime | None
) -> dict[str, list[int]]:
    """Per currency, [invoices, their amount] dated in [start, end): the days before `until`
    from the rollup (None: none), the others from the payments. Reads only."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    settled_end = min(end, until) if until is not None else start
    if start < settled_end:
        for currency, count, amount in db.execute(
            select(ReportDay.currency, func.sum(ReportDay.invoices), func.sum(ReportDay.invoiced))
            .where(
                ReportDay.currency != "",
                ReportDay.day >= start.date().isoformat(),
                ReportDay.day < settled_end.date().isoformat(),
            )
            .group_by(ReportDay.currency)
        ):
            totals[currency][0] += int(count)
            totals[currency][1] += int(amount)
    live_start = max(start, until) if until is not None else start
    if live_start < end:
        for r in queries.invoices_by_month(db, live_start, end):
            totals[r.currency][0] += int(r.invoices)
            totals[r.currency][1] += int(r.invoiced)
    return totals
