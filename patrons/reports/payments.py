"""Payment health per currency over the range: invoices, failures and their recovery within
the grace period or later, refunds, disputes and what was received (the settled days from the
daily rollup, the others from the payments)."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from patrons.core.money import major_decimal
from patrons.reports import queries, rollup
from patrons.reports.charts import bar_chart
from patrons.reports.tables import Dashboard, Table, pct, percent


def add_payments(db: Session, dash: Dashboard, grace_days: int) -> None:
    """The payments table and its chart (after add_revenue, whose history it reuses)."""
    found: rollup.History = dash.headline["history"]
    invoices = rollup.invoices(db, dash.range.start, dash.range.end, found.settled_until)
    noteworthy = {
        r.currency: r
        for r in queries.noteworthy_payments(db, dash.range.start, dash.range.end, grace_days)
    }
    table: list[list[Any]] = []
    for currency in sorted(c for c, (count, _a) in invoices.items() if count):
        count, invoiced = invoices[currency]
        r = noteworthy.get(currency)

        def n(name: str, row: Any = r) -> int:
            return int(getattr(row, name)) if row is not None else 0

        in_grace = pct(percent(n("recovered_in_grace"), n("failed")))
        table.append(
            [
                currency,
                count,
                n("failed"),
                n("recovered_in_grace"),
                n("recovered_later"),
                in_grace,
                n("refunds"),
                major_decimal(n("refunded")),
                n("disputes"),
                major_decimal(n("disputed")),
                major_decimal(invoiced - n("unpaid")),
            ]
        )
    dash.tables["payments"] = Table(
        "payments",
        [
            _("Currency"),
            _("Invoices"),
            _("Failed at least once"),
            _("Recovered within the grace period"),
            _("Recovered later"),
            _("Recovered within grace (%)"),
            _("Refunds"),
            _("Refunded"),
            _("Disputes"),
            _("Disputed"),
            _("Received"),
        ],
        table,
    )
    dash.charts["payments"] = bar_chart(
        _("Failed payments and their recovery, per currency"),
        [r[0] for r in table],
        [
            (_("Failed"), "bar--cancelled", [r[2] for r in table]),
            (_("Recovered within grace"), "bar--recovered", [r[3] for r in table]),
            (_("Recovered later"), "bar--new", [r[4] for r in table]),
        ],
    )
