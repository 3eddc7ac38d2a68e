"""Exchange rates staff set, and converting per-currency sums into the reporting currency."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from patrons.models import ExchangeRate
from patrons.models.reports import RATE_SCALE


@dataclass(frozen=True)
class Rates:
    reporting: str
    micros: dict[str, int] = field(default_factory=dict)  # currency → millionths
    updated_at: datetime | None = None

    def rate(self, currency: str) -> Decimal | None:
        if currency == self.reporting:
            return Decimal(1)
        value = self.micros.get(currency)
        return Decimal(value) / RATE_SCALE if value else None

    def convert(self, amounts: Mapping[str, int]) -> Converted:
        """Minor units per currency → minor units of the reporting currency, rounded half up
        once at the end; currencies without a rate are left out and named."""
        total, missing = 0, []
        for currency, amount in sorted(amounts.items()):
            if currency == self.reporting:
                total += amount * RATE_SCALE
            elif currency in self.micros:
                total += amount * self.micros[currency]
            elif amount:
                missing.append(currency)
        sign = -1 if total < 0 else 1
        return Converted((abs(total) + RATE_SCALE // 2) // RATE_SCALE * sign, tuple(missing))


@dataclass(frozen=True)
class Converted:
    amount: int
    missing: tuple[str, ...] = ()


def load(db: Session, default_currency: str) -> Rates:
    """The rates of the latest reporting currency staff chose (else `default_currency`)."""
    rows = db.scalars(select(ExchangeRate).order_by(ExchangeRate.updated_at.desc())).all()
    if not rows:
        return Rates(default_currency)
    reporting = rows[0].reporting_currency
    current = [r for r in rows if r.reporting_currency == reporting]
    return Rates(
        reporting,
        {r.currency: r.rate_micros for r in current if r.currency != reporting},
        max(r.updated_at for r in current),
    )


def save(db: Session, reporting: str, rates: Mapping[str, Decimal], now: datetime) -> None:
    """Replace every rate: each is what one unit of its currency is worth in `reporting`."""
    db.execute(delete(ExchangeRate))
    # the reporting currency's own row (rate 1) remembers the choice when it is the only one
    for currency, rate in sorted({**rates, reporting: Decimal(1)}.items()):
        micros = int((rate * RATE_SCALE).to_integral_value())
        db.add(ExchangeRate(currency=currency, reporting_currency=reporting,
                            rate_micros=micros, updated_at=now))  # fmt: skip
