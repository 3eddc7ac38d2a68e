"""Revenue: the money received, the one definition the reports use.

A payment's **revenue** is what the newsroom keeps of it, `Payment.net`
(patrons/models/pledges.py): for a settled payment (paid, whatever happened afterwards:
SETTLED_PAYMENT_STATUSES) its amount less what was refunded and what a lost dispute took
(`amount_refunded`, `amount_disputed`), never below nothing; an unpaid invoice brings
nothing. **Gross** is the amount of the settled payments, before refunds and disputes. An
open dispute holds money without taking it: it stays in revenue until the dispute is lost.

Per currency over a date range (the invoices dated in it): the invoices and their amount
from the daily rollup and the unsettled days (rollup.invoices), less what the noteworthy
payments (queries.noteworthy_payments: unpaid, failed, refunded or disputed, a small share
read through their partial index) did not bring or gave back. Refunds and disputes change
after the day, so they are never rolled up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from patrons.reports import queries, rollup
from patrons.reports.queries.payments import AFTER_PAYMENT


@dataclass(frozen=True)
class Received:
    """One currency's payments over a range: counts, and amounts in minor units."""

    invoices: int
    invoiced: int  # every invoice's amount, paid or not
    gross: int  # the settled payments' amount
    refunded: int
    lost_to_disputes: int
    net: int  # the revenue: gross less what refunds and lost disputes took back
    failed: int  # failed at least once
    recovered_in_grace: int
    recovered_later: int
    states: dict[str, int]  # how many paid invoices are in each AFTER_PAYMENT state


def _n(row: Any, name: str) -> int:
    return int(getattr(row, name) or 0) if row is not None else 0


def received(
    db: Session, start: datetime, end: datetime, settled_until: datetime | None, grace_days: int
) -> dict[str, Received]:
    """Per currency with invoices dated in [start, end). `settled_until`: the rollup's days
    (rollup.History.settled_until)."""
    invoices = rollup.invoices(db, start, end, settled_until)
    noteworthy = {r.currency: r for r in queries.noteworthy_payments(db, start, end, grace_days)}
    found: dict[str, Received] = {}
    for currency in sorted(c for c, (count, _a) in invoices.items() if count):
        count, invoiced = invoices[currency]
        r = noteworthy.get(currency)
        gross = invoiced - _n(r, "unpaid")
        found[currency] = Received(
            invoices=count,
            invoiced=invoiced,
            gross=gross,
            refunded=_n(r, "amount_refunded"),
            lost_to_disputes=_n(r, "lost_to_disputes"),
            net=gross - _n(r, "taken_back"),
            failed=_n(r, "failed"),
            recovered_in_grace=_n(r, "recovered_in_grace"),
            recovered_later=_n(r, "recovered_later"),
            states={s: _n(r, s) for s in AFTER_PAYMENT},
        )
    return found
