"""Payment health per currency over the range: invoices, failures and their recovery within
the grace period or later, what became of paid invoices (partly or fully refunded, disputed,
disputes won and lost), and the money: gross received and revenue net of refunds and lost
disputes (received.py has the definition)."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from patrons.core.money import major_decimal
from patrons.models.pledges import PaymentStatus
from patrons.reports import rollup
from patrons.reports.charts import bar_chart
from patrons.reports.received import received
from patrons.reports.tables import Dashboard, Table, pct, percent


def add_payments(db: Session, dash: Dashboard, grace_days: int) -> None:
    """The payments table and its chart, and the range's revenue in the headline (after
    add_revenue, whose history it reuses)."""
    found: rollup.History = dash.headline["history"]
    per_currency = received(db, dash.range.start, dash.range.end, found.settled_until, grace_days)
    table: list[list[Any]] = []
    for currency, r in per_currency.items():
        table.append(
            [
                currency,
                r.invoices,
                r.failed,
                r.recovered_in_grace,
                r.recovered_later,
                pct(percent(r.recovered_in_grace, r.failed)),
                r.states[PaymentStatus.PARTIALLY_REFUNDED],
                r.states[PaymentStatus.REFUNDED],
                major_decimal(r.refunded),
                r.states[PaymentStatus.DISPUTED],
                r.states[PaymentStatus.DISPUTE_WON],
                r.states[PaymentStatus.DISPUTE_LOST],
                major_decimal(r.lost_to_disputes),
                major_decimal(r.gross),
                major_decimal(r.net),
            ]
        )
    dash.headline.update(
        revenue=dash.convert({c: r.net for c, r in per_currency.items()}).amount,
        revenue_gross=dash.convert({c: r.gross for c, r in per_currency.items()}).amount,
        revenue_by_currency={c: r.net for c, r in per_currency.items()},
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
            _("Partly refunded"),
            _("Refunded in full"),
            _("Refunded"),
            _("Disputes open"),
            _("Disputes won"),
            _("Disputes lost"),
            _("Lost to disputes"),
            _("Received (gross)"),
            _("Revenue (net)"),
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
