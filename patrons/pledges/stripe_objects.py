"""What the gateway answers, as plain typed values (Subscription, Invoice, Charge, Dispute,
Card, Event), what it raises (GatewayError and its kinds, SignatureError and BadEvent), and
our plan ids.

Each is read from a plain dict, so webhook payloads and the gateway's API responses go
through the same readers; the readers hide where real Stripe and localstripe differ (see
gateway.py's docstring). Nothing here calls Stripe or imports `stripe`. The field readers
and plan ids (stripe_fields.py), Charge and Dispute (stripe_payments.py) are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from patrons.pledges.stripe_fields import (
    PLAN_PATTERN,
    as_dict,
    object_id,
    parse_plan_id,
    plan_id,
    timestamp,
)
from patrons.pledges.stripe_fields import currency as _currency
from patrons.pledges.stripe_fields import int_or_zero as _int
from patrons.pledges.stripe_fields import str_or_none as _str
from patrons.pledges.stripe_payments import DISPUTE_STATUSES, Charge, Dispute

__all__ = [
    "DISPUTE_STATUSES", "PLAN_PATTERN", "BadEvent", "Card", "CardError", "Charge", "Dispute",
    "Event", "GatewayError", "Invoice", "NotFound", "SignatureError", "Subscription", "Unreachable",
    "as_dict", "object_id", "parse_plan_id", "plan_id", "timestamp",
]  # fmt: skip

# -- the gateway's errors ----------------------------------------------------------------------


class GatewayError(Exception):
    """Stripe could not do what was asked; `message` is safe to show the reader."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class CardError(GatewayError):
    """The card was refused (declined, expired, failed authentication)."""


class NotFound(GatewayError):
    """Stripe has no such object."""


class Unreachable(GatewayError):
    """Stripe did not answer in time (or the connection failed), after the SDK's retries."""

    MESSAGE = (
        "The payment service is not answering just now. Nothing was charged; "
        "please try again in a minute."
    )

    def __init__(self) -> None:
        super().__init__(self.MESSAGE, code="unreachable")


class SignatureError(Exception):
    """A webhook whose Stripe-Signature header, signature or timestamp cannot be trusted."""


class BadEvent(SignatureError):
    """A correctly signed body that is not an event we will read (bad JSON, an integer out of
    range, `livemode` not a boolean...). A SignatureError, so that code catching only that
    still refuses it; catch BadEvent first to answer "Unreadable event."."""


# -- the values --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    id: str
    customer_id: str | None
    status: str
    plan_id: str | None
    amount: int | None  # minor units, from the plan/price itself
    currency: str | None  # ISO, upper case
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    ended_at: datetime | None
    created: datetime | None
    metadata: dict[str, str] = field(default_factory=dict)
    latest_invoice_id: str | None = None
    # the first invoice's PaymentIntent, when expanded: what the browser must do next
    payment_intent_status: str | None = None
    payment_intent_client_secret: str | None = None
    payment_error: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Subscription:
        items = as_dict(data.get("items")).get("data") or []
        item = as_dict(items[0]) if items else {}
        price = as_dict(item.get("price")) or as_dict(item.get("plan")) or as_dict(data.get("plan"))
        amount = price.get("unit_amount", price.get("amount"))
        period_end = item.get("current_period_end", data.get("current_period_end"))
        invoice = data.get("latest_invoice")
        intent = _payment_intent(as_dict(invoice))
        error = as_dict(intent.get("last_payment_error"))
        return cls(
            id=str(data["id"]),
            customer_id=object_id(data.get("customer")),
            status=str(data.get("status") or "incomplete"),
            plan_id=object_id(price) if price else None,
            amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            currency=_currency(price.get("currency")),
            current_period_end=timestamp(period_end),
            cancel_at_period_end=bool(data.get("cancel_at_period_end")),
            canceled_at=timestamp(data.get("canceled_at")),
            ended_at=timestamp(data.get("ended_at")),
            created=timestamp(data.get("created") or data.get("start_date")),
            metadata={str(k): str(v) for k, v in as_dict(data.get("metadata")).items()},
            latest_invoice_id=object_id(invoice),
            payment_intent_status=intent.get("status") if intent else None,
            payment_intent_client_secret=(
                intent.get("client_secret")
                or as_dict(as_dict(invoice).get("confirmation_secret")).get("client_secret")
                if intent
                else None
            ),
            payment_error=error.get("message") or error.get("code") if error else None,
        )


def _payment_intent(invoice: dict[str, Any]) -> dict[str, Any]:
    """An expanded invoice's PaymentIntent: `payment_intent` (older API, localstripe), else
    the first of its `payments` (current API); {} when not expanded."""
    intent = as_dict(invoice.get("payment_intent"))
    if not intent:
        payments = as_dict(invoice.get("payments")).get("data") or []
        if payments:
            intent = as_dict(as_dict(as_dict(payments[0]).get("payment")).get("payment_intent"))
    return intent


@dataclass(frozen=True)
class Invoice:
    id: str
    customer_id: str | None
    subscription_id: str | None
    status: str | None  # draft, open, paid, uncollectible, void
    amount_due: int
    amount_paid: int
    currency: str | None
    created: datetime | None
    paid_at: datetime | None
    payment_intent_id: str | None
    charge_id: str | None
    attempt_count: int
    billing_reason: str | None = None  # subscription_create, subscription_cycle, manual...
    finalized_at: datetime | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Invoice:
        parent = as_dict(as_dict(data.get("parent")).get("subscription_details"))
        subscription = object_id(parent.get("subscription")) or object_id(data.get("subscription"))
        intent = object_id(data.get("payment_intent"))
        charge = object_id(data.get("charge"))
        for payment in as_dict(data.get("payments")).get("data") or []:
            inner = as_dict(as_dict(payment).get("payment"))
            intent = intent or object_id(inner.get("payment_intent"))
            charge = charge or object_id(inner.get("charge"))
        transitions = as_dict(data.get("status_transitions"))
        return cls(
            id=str(data["id"]),
            customer_id=object_id(data.get("customer")),
            subscription_id=subscription,
            status=data.get("status"),
            amount_due=_int(data.get("amount_due")),
            amount_paid=_int(data.get("amount_paid")),
            currency=_currency(data.get("currency")),
            created=timestamp(data.get("created") or data.get("date")),
            paid_at=timestamp(transitions.get("paid_at")),
            payment_intent_id=intent,
            charge_id=charge,
            attempt_count=_int(data.get("attempt_count")),
            billing_reason=_str(data.get("billing_reason")),
            finalized_at=timestamp(transitions.get("finalized_at")),
        )


@dataclass(frozen=True)
class Card:
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None

    @classmethod
    def from_payment_method(cls, method: Mapping[str, Any]) -> Card:
        """What may be shown of a PaymentMethod's card."""
        card = as_dict(method.get("card"))
        month, year = card.get("exp_month"), card.get("exp_year")
        return cls(
            brand=str(card.get("brand") or "card"),
            last4=str(card.get("last4") or "")[-4:],
            exp_month=month if isinstance(month, int) else None,
            exp_year=year if isinstance(year, int) else None,
        )


_ID = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII: no NUL for PostgreSQL, fits a column
_TYPE = re.compile(r"[\x21-\x7e]{1,100}")


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created: datetime | None
    livemode: bool
    object: dict[str, Any]
    account: str | None = None  # a Connect event: it concerns a connected account, not ours

    @classmethod
    def from_payload(cls, data: Any) -> Event:
        """A webhook body already verified and parsed; BadEvent unless it has an id, a type,
        an object with an id, a boolean `livemode`, and an `account` that is absent, null
        or a string."""
        if not isinstance(data, dict):
            raise BadEvent("not a JSON object")
        obj = as_dict(as_dict(data.get("data")).get("object"))
        for name, value, pattern in (
            ("id", data.get("id"), _ID),
            ("type", data.get("type"), _TYPE),
            ("object id", obj.get("id"), _ID),
        ):
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise BadEvent(f"the event has no readable {name}")
        if not isinstance(data.get("livemode"), bool):
            raise BadEvent("livemode is not a JSON boolean")
        account = data.get("account")
        if account is not None and not (isinstance(account, str) and _ID.fullmatch(account)):
            raise BadEvent("account is not an account id")
        return cls(
            id=data["id"],
            type=data["type"],
            created=timestamp(data.get("created")),
            livemode=data["livemode"],
            object=obj,
            account=account,
        )
