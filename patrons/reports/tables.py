"""The dashboard's shape: its tables in page order, a table (shown on the page and
downloadable as CSV), the dashboard that collects them with their charts, and the way a
share is written. Each section (revenue.py, payments.py, funnel.py, participation.py) adds
its tables to a `Dashboard`; service.py puts the sections together."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l

from patrons.reports.charts import Chart
from patrons.reports.dates import ReportRange
from patrons.reports.rates import Converted, Rates

TOP_ARTICLES = 20  # rows of a ranked table on the page (its CSV has them all)

# the tables of the dashboard, in page order: name → title (the name is the CSV's)
TABLES = {
    "mrr": _l("Monthly recurring revenue by month"),
    "patrons": _l("Patrons by month"),
    "now": _l("Today, per currency"),
    "distribution": _l("Pledge amounts"),
    "payments": _l("Payment health"),
    "funnel": _l("Growth funnel"),
    "articles": _l("Articles that convert best"),
    "notice": _l("The ad-blocker notice"),
    "voting": _l("Voting rounds"),
    "results": _l("Voting results"),
    "corrections": _l("Corrections per article"),
}


@dataclass
class Table:
    name: str
    headers: list[str]
    rows: list[list[Any]]

    @property
    def title(self) -> str:
        return str(TABLES[self.name])


@dataclass
class Dashboard:
    range: ReportRange
    rates: Rates
    now: datetime
    headline: dict[str, Any]
    tables: dict[str, Table] = field(default_factory=dict)
    charts: dict[str, Chart] = field(default_factory=dict)
    missing_rates: set[str] = field(default_factory=set)

    def convert(self, amounts: dict[str, int]) -> Converted:
        """Into the reporting currency, noting the currencies left out for want of a rate."""
        value = self.rates.convert(amounts)
        self.missing_rates.update(value.missing)
        return value


def percent(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def pct(value: float | None) -> str:
    """A share as a table cell: one decimal, or empty when there is no whole to divide by."""
    return "" if value is None else f"{value:.1f}"
