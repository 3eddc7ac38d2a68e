"""Staff reports: revenue, patrons, payment health, the growth funnel, the ad-blocker notice,
voting and corrections over a date range, and one member's history.

The figures are computed in SQL (queries.py), put together in service.py, shown by views.py
on the staff blueprint, and every table is downloadable as CSV.
"""
