"""Staff reports: revenue, patrons, payment health, the growth funnel, the ad-blocker notice,
voting and corrections over a date range, and one member's history.

The figures are computed in SQL (queries/) and put together in service.py, one module per
section; the settled days come from a daily rollup (rollup.py) that `flask update-reports`
keeps up to date. The pages are patrons/staff/reports.py, and every table is downloadable as
CSV. No routes of its own."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """`flask update-reports`."""
    from patrons.reports import cli

    app.cli.add_command(cli.update_reports)
