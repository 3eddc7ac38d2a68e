"""Staff reports: revenue, patrons, payment health, the growth funnel, the ad-blocker notice,
voting and corrections over a date range, and one member's history.

The figures are computed in SQL (queries.py) and put together in service.py; the pages are
patrons/staff/reports.py, and every table is downloadable as CSV. No routes of its own."""
