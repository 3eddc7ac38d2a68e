"""The money objects a payment's fate is read from: a Charge (refunds, the `disputed` flag)
and a Dispute (a chargeback or an inquiry). Re-exported by stripe_objects.py; nothing here
calls Stripe or imports `stripe`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from patrons.pledges.stripe_fields import currency as _currency
from patrons.pledges.stripe_fields import int_or_zero as _int
from patrons.pledges.stripe_fields import object_id, timestamp
from patrons.pledges.stripe_fields import str_or_none as _str


@dataclass(frozen=True)
class Charge:
    id: str
    customer_id: str | None
    payment_intent_id: str | None
    invoice_id: str | None  # only in older API versions
    amount: int
    amount_refunded: int
    currency: str | None
    disputed: bool = False
    refunded: bool = False  # wholly
    paid: bool = False
    status: str | None = None  # succeeded, pending, failed
    created: datetime | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Charge:
        return cls(
            id=str(data["id"]),
            customer_id=object_id(data.get("customer")),
            payment_intent_id=object_id(data.get("payment_intent")),
            invoice_id=object_id(data.get("invoice")),
            amount=_int(data.get("amount")),
            amount_refunded=_int(data.get("amount_refunded")),
            currency=_currency(data.get("currency")),
            disputed=data.get("disputed") is True,  # localstripe has no such field
            refunded=data.get("refunded") is True,
            paid=data.get("paid") is True,
            status=_str(data.get("status")),
            created=timestamp(data.get("created")),
        )


DISPUTE_STATUSES = frozenset(
    {
        "warning_needs_response", "warning_under_review", "warning_closed",
        "needs_response", "under_review", "won", "lost", "prevented",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Dispute:
    """A chargeback (or an inquiry: `warning_*`). localstripe has none."""

    id: str
    charge_id: str | None
    payment_intent_id: str | None
    amount: int
    currency: str | None
    status: str | None  # one of DISPUTE_STATUSES; None for anything else
    created: datetime | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Dispute:
        status = data.get("status")
        return cls(
            id=str(data["id"]),
            charge_id=object_id(data.get("charge")),
            payment_intent_id=object_id(data.get("payment_intent")),
            amount=_int(data.get("amount")),
            currency=_currency(data.get("currency")),
            status=status if status in DISPUTE_STATUSES else None,
            created=timestamp(data.get("created")),
        )
