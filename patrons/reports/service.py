"""The dashboard's figures, put together section by section: each section a module that adds
its tables (shown on the page and downloadable as CSV) and, where a picture helps, a chart of
the same numbers: revenue.py (MRR, patrons, churn, today), payments.py (payment health),
funnel.py (growth funnel and attribution, the ad-blocker notice) and participation.py
(voting and corrections). The queries they read are in queries/."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from patrons.reports import queries
from patrons.reports.dates import ReportRange
from patrons.reports.funnel import add_funnel, article_table
from patrons.reports.participation import add_corrections, add_voting, corrections_table
from patrons.reports.payments import add_payments
from patrons.reports.queries.sql import without_jit
from patrons.reports.rates import Rates
from patrons.reports.revenue import add_revenue, add_today
from patrons.reports.tables import TABLES, Dashboard, Table

__all__ = ["TABLES", "Dashboard", "Table", "dashboard", "full_table"]


def dashboard(
    db: Session,
    rng: ReportRange,
    rates: Rates,
    now: datetime,
    grace_days: int,
    currencies: Sequence[str],
) -> Dashboard:
    """Every figure of /staff/reports for the range (reads only: see rollup.py)."""
    without_jit(db)
    dash = Dashboard(rng, rates, now, {})
    add_revenue(db, dash, grace_days, list(currencies))
    add_today(dash)
    add_payments(db, dash, grace_days)
    add_funnel(db, dash)
    add_voting(db, dash, grace_days)
    add_corrections(db, dash)
    return dash


def full_table(
    db: Session,
    name: str,
    rng: ReportRange,
    rates: Rates,
    now: datetime,
    grace_days: int,
    currencies: Sequence[str],
) -> Table:
    """One table for download: as on the page, but every article rather than the top ones."""
    without_jit(db)
    if name == "articles":
        rows = queries.article_funnel(db, rng.first, rng.last, rng.start, rng.end)
        return article_table(rows)
    if name == "corrections":
        return corrections_table(queries.corrections_by_article(db, rng.start, rng.end))
    return dashboard(db, rng, rates, now, grace_days, currencies).tables[name]
