"""The report queries: every aggregate is computed by the database, with the indexes of
patrons/models/reports.py; Python only receives grouped rows (a few per month, currency,
status or article) and does the running totals and the currency conversion.

Written as SQL text, because the same statements run on PostgreSQL and SQLite with only two
expressions differing (a timestamp's month, a timestamp plus days): see `sql.Dialect`.

One module per job, all importable from here: revenue (the pledge history: MRR, patrons,
churn), payments (invoices and payment health), funnel (counters, sign-ups and first
payments, per prompt and per article), participation (corrections).
"""

from patrons.reports.queries.funnel import article_funnel, conversions_by_prompt, counter_totals
from patrons.reports.queries.participation import corrections_by_article, corrections_totals
from patrons.reports.queries.payments import invoices_by_month, noteworthy_payments
from patrons.reports.queries.revenue import (
    active_pledges_now,
    history_start,
    monthly_deltas,
    monthly_flows,
)

__all__ = [
    "active_pledges_now",
    "article_funnel",
    "conversions_by_prompt",
    "corrections_by_article",
    "corrections_totals",
    "counter_totals",
    "history_start",
    "invoices_by_month",
    "monthly_deltas",
    "monthly_flows",
    "noteworthy_payments",
]
