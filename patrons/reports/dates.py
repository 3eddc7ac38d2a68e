"""The dashboard's date range: `?from=YYYY-MM-DD&to=YYYY-MM-DD`, both days included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask_babel import gettext as _

MAX_DAYS = 3660  # ten years: more is a mistake, and a very long chart
EARLIEST = date(2000, 1, 1)
DEFAULT_MONTHS = 12


class RangeError(ValueError):
    """A range the dashboard cannot show, in words for staff (answered with a 400)."""


@dataclass(frozen=True)
class ReportRange:
    first: date  # first day included
    last: date  # last day included

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, UTC)

    @property
    def end(self) -> datetime:
        """The instant after the last day (exclusive bound)."""
        return datetime.combine(self.last + timedelta(days=1), time.min, UTC)

    def months(self) -> list[str]:
        """'YYYY-MM' of every month the range touches, in order."""
        found, year, month = [], self.first.year, self.first.month
        while (year, month) <= (self.last.year, self.last.month):
            found.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return found

    def query(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


def default_range(today: date) -> ReportRange:
    """The current month and the eleven before it."""
    year, month = today.year, today.month - (DEFAULT_MONTHS - 1)
    while month < 1:
        year, month = year - 1, month + 12
    return ReportRange(date(year, month, 1), today)


def _day(value: str, name: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise RangeError(
            _("“%(name)s” must be a date written like 2026-01-31.", name=name)
        ) from None


def parse_range(args: Any, today: date) -> ReportRange:
    """The range in the query string, the default for what is left out; RangeError if bad."""
    default = default_range(today)
    first_text, last_text = args.get("from", "").strip(), args.get("to", "").strip()
    first = _day(first_text, _("From")) if first_text else default.first
    last = _day(last_text, _("To")) if last_text else default.last
    if first > last:
        raise RangeError(_("The range must start on or before the day it ends."))
    if first < EARLIEST or last > today + timedelta(days=366):
        raise RangeError(
            _("Choose days between %(earliest)s and a year from now.", earliest=EARLIEST)
        )
    if (last - first).days >= MAX_DAYS:
        raise RangeError(_("Choose a range of ten years or less."))
    return ReportRange(first, last)
