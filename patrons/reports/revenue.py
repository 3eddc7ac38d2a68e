"""Revenue and patrons: MRR and the patron count at each month's end (from the daily rollup
and the unsettled days of the pledge history; the current month's end is now, today's
active patrons by entitlement.py), the new, cancelled and recovered patrons and
the churn rate per month; and today's patrons, MRR, average pledge, lifetime value and the
distribution of pledge amounts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from patrons.core.money import major_decimal
from patrons.reports import queries, rollup
from patrons.reports.charts import bar_chart
from patrons.reports.tables import Dashboard, Table, pct, percent


@dataclass
class MonthEnd:
    mrr: dict[str, int]
    patrons: int


def month_ends(deltas: Sequence[Any], months: Sequence[str]) -> dict[str, MonthEnd]:
    """Running totals of the monthly changes: MRR per currency and patrons at each month's end
    (the month before the first one included, for its churn)."""
    wanted = sorted(set(months))
    totals: dict[str, int] = defaultdict(int)
    patrons = 0
    ends: dict[str, MonthEnd] = {}
    rows = sorted(deltas, key=lambda r: r.month)
    i = 0
    for month in wanted:
        while i < len(rows) and rows[i].month <= month:
            totals[rows[i].currency] += int(rows[i].amount)
            patrons += int(rows[i].patrons)
            i += 1
        ends[month] = MonthEnd({c: a for c, a in totals.items() if a}, patrons)
    return ends


def previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year - 1:04d}-12" if number == 1 else f"{year:04d}-{number - 1:02d}"


def add_revenue(db: Session, dash: Dashboard, grace_days: int, currencies: list[str]) -> None:
    """The MRR and patrons tables, month by month over the range (up to this month)."""
    now, reporting = dash.now, dash.rates.reporting
    currencies = [c for c in currencies if c != reporting]
    current = f"{now.year:04d}-{now.month:02d}"
    months = [m for m in dash.range.months() if m <= current]
    found = rollup.history(db, now, grace_days)
    ends = month_ends(found.deltas, [*months, *(previous_month(m) for m in months)])
    today = queries.active_pledges_now(db, now, grace_days)
    if current in ends:  # this month's end is now: today's active patrons (entitlement.py)
        ends[current] = _today_end(today)
    mrr_rows: list[list[Any]] = []
    patron_rows: list[list[Any]] = []
    for month in months:
        end, before = ends[month], ends[previous_month(month)]
        converted = dash.convert(end.mrr).amount
        mrr_rows.append(
            [
                month,
                major_decimal(converted),
                *(major_decimal(end.mrr.get(c, 0)) for c in currencies),
            ]
        )
        flow = found.flows.get(month) or rollup.Flow(month, 0, 0, 0)
        churn = pct(percent(flow.cancelled, before.patrons))
        patron_rows.append([month, end.patrons, flow.new, flow.cancelled, flow.recovered, churn])
    cancelled = sum(r[3] for r in patron_rows)
    exposure = sum(ends[previous_month(m)].patrons for m in months)
    dash.headline.update(churn=percent(cancelled, exposure), churn_parts=(cancelled, exposure),
                         history=found, today=today)  # fmt: skip
    _month_tables(dash, months, currencies, mrr_rows, patron_rows)


def _today_end(rows: Sequence[Any]) -> MonthEnd:
    mrr: dict[str, int] = defaultdict(int)
    for row in rows:
        mrr[row.currency] += int(row.amount) * int(row.patrons)
    return MonthEnd({c: a for c, a in mrr.items() if a}, sum(int(r.patrons) for r in rows))


def _month_tables(dash: Dashboard, months: list[str], currencies: list[str],
                  mrr_rows: list[list[Any]], patron_rows: list[list[Any]]) -> None:  # fmt: skip
    reporting = dash.rates.reporting
    dash.tables["mrr"] = Table(
        "mrr",
        [_("Month"), _("MRR in %(currency)s", currency=reporting),
         *(_("MRR in %(currency)s (not converted)", currency=c) for c in currencies)],
        mrr_rows,
    )  # fmt: skip
    dash.tables["patrons"] = Table(
        "patrons",
        [_("Month"), _("Active patrons at month end"), _("New"), _("Cancelled"),
         _("Recovered"), _("Churn rate (%)")],
        patron_rows,
    )  # fmt: skip
    dash.charts["mrr"] = bar_chart(
        _("MRR at each month's end, in %(currency)s", currency=reporting),
        months,
        [(_("MRR"), "bar--mrr", [float(r[1]) for r in mrr_rows])],
        lambda v: f"{v:,.2f}",
    )
    dash.charts["patrons"] = bar_chart(
        _("New and cancelled patrons per month"),
        months,
        [(_("New"), "bar--new", [r[2] for r in patron_rows]),
         (_("Cancelled"), "bar--cancelled", [r[3] for r in patron_rows]),
         (_("Recovered"), "bar--recovered", [r[4] for r in patron_rows])],
    )  # fmt: skip


def add_today(dash: Dashboard) -> None:
    """Today's figures, the active patrons of entitlement.py (after add_revenue, which read
    them): per currency, and the pledge amounts."""
    rows: Sequence[Any] = dash.headline["today"]
    mrr: dict[str, int] = defaultdict(int)
    patrons: dict[str, int] = defaultdict(int)
    for row in rows:
        mrr[row.currency] += int(row.amount) * int(row.patrons)
        patrons[row.currency] += int(row.patrons)
    total_patrons = sum(patrons.values())
    total = dash.convert(dict(mrr))
    reporting = dash.rates.reporting
    average = total.amount // total_patrons if total_patrons else None
    cancelled, exposure = dash.headline["churn_parts"]
    # average ÷ (cancelled ÷ exposure), without rounding the churn rate first
    lifetime = round(average * exposure / cancelled) if average is not None and cancelled else None
    dash.headline.update(
        patrons=total_patrons,
        mrr=total.amount,
        average=average,
        lifetime_value=lifetime,
        mrr_by_currency=dict(mrr),
        patrons_by_currency=dict(patrons),
    )
    now_rows = [
        [c, patrons[c], major_decimal(mrr[c]), major_decimal(mrr[c] // patrons[c])]
        for c in sorted(mrr)
    ]
    now_rows.append(
        [
            _("All, in %(currency)s", currency=reporting),
            total_patrons,
            major_decimal(total.amount),
            major_decimal(average),
        ]
    )
    dash.tables["now"] = Table(
        "now", [_("Currency"), _("Active patrons"), _("MRR"), _("Average pledge")], now_rows
    )
    dash.tables["distribution"] = Table(
        "distribution",
        [_("Currency"), _("Monthly pledge"), _("Patrons")],
        [[r.currency, major_decimal(int(r.amount)), int(r.patrons)] for r in rows],
    )
    dash.charts["distribution"] = bar_chart(
        _("Active patrons by monthly pledge"),
        [f"{major_decimal(int(r.amount))} {r.currency}" for r in rows],
        [(_("Patrons"), "bar--patrons", [int(r.patrons) for r in rows])],
    )
