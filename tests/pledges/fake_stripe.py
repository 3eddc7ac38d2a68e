"""An in-memory Stripe account for the ledger's property tests: `FakeStripe`.

It answers the gateway's reads that `applying.fetch` and `sync.fetch` make
(patrons/pledges/gateway.py, gateway_payments.py) from Stripe-shaped dicts built on Stripe's
own example objects at the pinned API version (tests/fixtures/stripe/api_*.json: an invoice
names its subscription in `parent.subscription_details` and its PaymentIntent in `payments`;
a charge names no invoice), read through the real `from_dict` readers, so the readers are
exercised too.

Its operations change the account as Stripe would (a subscription created, renewed, its
renewal refused and retried, refunds, disputes opened and closed, cancellations) and append
the events Stripe would send about each change (`events`: signed-webhook payloads, each with
a unique id, its type and a snapshot of the object at that moment).
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from patrons.pledges.signature import read_event
from patrons.pledges.stripe_objects import Charge, Dispute, Event, Invoice, Subscription

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stripe"
PLAN = "patron-eur-500"
AMOUNT = 500
CURRENCY = "eur"
MONTH = 30 * 86400
OPEN_DISPUTE = "needs_response"


@cache
def _template(name: str) -> str:
    return (FIXTURES / f"api_{name}.json").read_text()


def template(name: str) -> dict[str, Any]:
    """A fresh copy of Stripe's example object `api_<name>.json`."""
    loaded: dict[str, Any] = json.loads(_template(name))
    return loaded


class FakeStripe:
    """One Stripe account in memory, with its clock (`now`, Unix seconds) and the events it
    sent (`events`, in the order Stripe made them)."""

    livemode = False

    def __init__(self, start: int, webhook_secret: str | None = None) -> None:
        self.now = start
        self.webhook_secret = webhook_secret
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, str | None]] = {}  # pi → invoice, latest_charge
        self.events: list[dict[str, Any]] = []
        self._seq = itertools.count(1)

    # -- the clock, ids and events -------------------------------------------------------------

    def advance(self, seconds: int) -> None:
        self.now += seconds

    def at(self) -> datetime:
        return datetime.fromtimestamp(self.now, tz=UTC)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._seq):06d}"

    def _emit(self, event_type: str, obj: dict[str, Any]) -> None:
        self.events.append(
            {
                "id": self._id("evt"),
                "object": "event",
                "type": event_type,
                "created": self.now,
                "livemode": False,
                "api_version": "2026-10-28.endive",
                "data": {"object": copy.deepcopy(obj)},
            }
        )

    def event(self, index: int) -> Event:
        """The index-th event as the webhook reads it once verified."""
        return Event.from_payload(copy.deepcopy(self.events[index]))

    # -- building objects ----------------------------------------------------------------------

    def _subscription(self, customer: str) -> dict[str, Any]:
        sub = template("subscription")
        sub_id = self._id("sub")
        item = sub["items"]["data"][0]
        item["price"].update(id=PLAN, unit_amount=AMOUNT, unit_amount_decimal=str(AMOUNT),
                             currency=CURRENCY, product="prod_patrons")  # fmt: skip
        item["plan"].update(id=PLAN, amount=AMOUNT, amount_decimal=str(AMOUNT), currency=CURRENCY,
                            interval_count=1, billing_scheme="per_unit")  # fmt: skip
        item.update(id=self._id("si"), subscription=sub_id, created=self.now,
                    current_period_start=self.now, current_period_end=self.now + MONTH)  # fmt: skip
        sub["items"]["url"] = f"/v1/subscription_items?subscription={sub_id}"
        sub.update(id=sub_id, customer=customer, status="incomplete", created=self.now,
                   start_date=self.now, billing_cycle_anchor=self.now, cancel_at=None,
                   cancel_at_period_end=False, canceled_at=None, ended_at=None, currency=CURRENCY,
                   metadata={}, latest_invoice=None, trial_start=None, trial_end=None)  # fmt: skip
        self.subscriptions[sub_id] = sub
        return sub

    def _invoice(self, sub: dict[str, Any], reason: str) -> dict[str, Any]:
        invoice = template("invoice")
        invoice_id, intent = self._id("in"), self._id("pi")
        payment = template("invoice_payment")
        payment.update(id=self._id("inpay"), invoice=invoice_id, amount_paid=0,
                       amount_requested=AMOUNT, currency=CURRENCY, status="open",
                       created=self.now, livemode=False,
                       payment={"type": "payment_intent", "payment_intent": intent})  # fmt: skip
        payment["status_transitions"] = {"canceled_at": None, "paid_at": None}
        item = sub["items"]["data"][0]
        line = invoice["lines"]["data"][0]
        line.update(amount=AMOUNT, currency=CURRENCY, invoice=invoice_id, subtotal=AMOUNT,
                    description="Monthly pledge",
                    period={"start": item["current_period_start"],
                            "end": item["current_period_end"]})  # fmt: skip
        invoice["lines"]["url"] = f"/v1/invoices/{invoice_id}/lines"
        invoice.update(
            id=invoice_id, customer=sub["customer"], status="open", currency=CURRENCY,
            amount_due=AMOUNT, amount_paid=0, amount_remaining=AMOUNT, attempt_count=0,
            attempted=False, billing_reason=reason, created=self.now, livemode=False,
            subtotal=AMOUNT, total=AMOUNT, subscription=None, payment_intent=None, charge=None,
            period_start=item["current_period_start"], period_end=item["current_period_end"],
            parent={"type": "subscription_details", "quote_details": None,
                    "subscription_details": {"metadata": {}, "subscription": sub["id"]}},
            payments={"object": "list", "data": [payment], "has_more": False,
                      "url": "/v1/invoice_payments"},
            status_transitions={"finalized_at": self.now, "marked_uncollectible_at": None,
                                "paid_at": None, "voided_at": None},
        )  # fmt: skip
        self.invoices[invoice_id] = invoice
        self.intents[intent] = {"invoice": invoice_id, "latest_charge": None}
        sub["latest_invoice"] = invoice_id
        return invoice

    def _charge(self, invoice: dict[str, Any]) -> dict[str, Any]:
        charge = template("charge")
        charge_id = self._id("ch")
        intent = self._intent_of(invoice)
        charge.update(id=charge_id, amount=AMOUNT, amount_captured=AMOUNT, amount_refunded=0,
                      captured=True, paid=True, refunded=False, disputed=False, status="succeeded",
                      currency=CURRENCY, customer=invoice["customer"], payment_intent=intent,
                      created=self.now, livemode=False, description="Monthly pledge",
                      refunds={"object": "list", "data": [], "has_more": False,
                               "url": f"/v1/charges/{charge_id}/refunds"})  # fmt: skip
        self.charges[charge_id] = charge
        self.intents[intent]["latest_charge"] = charge_id
        return charge

    @staticmethod
    def _intent_of(invoice: dict[str, Any]) -> str:
        return str(invoice["payments"]["data"][0]["payment"]["payment_intent"])

    def _attempt(self, invoice: dict[str, Any], *, succeed: bool) -> None:
        """One payment attempt of an open invoice: paid (with its charge), or refused."""
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        if succeed:
            invoice.update(status="paid", amount_paid=AMOUNT, amount_remaining=0)
            invoice["status_transitions"]["paid_at"] = self.now
            payment = invoice["payments"]["data"][0]
            payment.update(status="paid", amount_paid=AMOUNT)
            payment["status_transitions"]["paid_at"] = self.now
            self._charge(invoice)
            self._emit("invoice.paid", invoice)
            self._emit("invoice.payment_succeeded", invoice)
        else:
            self._emit("invoice.payment_failed", invoice)

    # -- what happens at Stripe ----------------------------------------------------------------

    def create_subscription(self, customer: str, *, declined: bool = False) -> str:
        """A subscription and its first invoice, paid (active) or refused (incomplete)."""
        sub = self._subscription(customer)
        invoice = self._invoice(sub, "subscription_create")
        sub["status"] = "incomplete" if declined else "active"
        self._emit("customer.subscription.created", sub)
        self._attempt(invoice, succeed=not declined)
        return str(sub["id"])

    def _next_period(self, sub: dict[str, Any]) -> dict[str, Any]:
        """The period ends (the clock moves to its end, if need be): the next one's invoice."""
        item = sub["items"]["data"][0]
        self.now = max(self.now, item["current_period_end"])
        item["current_period_start"] = item["current_period_end"]
        item["current_period_end"] += MONTH
        return self._invoice(sub, "subscription_cycle")

    def renew(self, sub_id: str) -> None:
        sub = self.subscriptions[sub_id]
        self._attempt(self._next_period(sub), succeed=True)
        self._emit("customer.subscription.updated", sub)

    def renewal_fails(self, sub_id: str) -> str:
        """The renewal's first attempt is refused: the invoice stays open, past_due."""
        sub = self.subscriptions[sub_id]
        invoice = self._next_period(sub)
        self._attempt(invoice, succeed=False)
        sub["status"] = "past_due"
        self._emit("customer.subscription.updated", sub)
        return str(invoice["id"])

    def open_invoice(self, sub_id: str) -> dict[str, Any] | None:
        for invoice in self.invoices.values():
            if invoice["parent"]["subscription_details"]["subscription"] == sub_id and (
                invoice["status"] == "open"
            ):
                return invoice
        return None

    def retry(self, sub_id: str, *, succeed: bool) -> None:
        """Stripe's next attempt at the open invoice (or the reader's new card)."""
        sub = self.subscriptions[sub_id]
        invoice = self.open_invoice(sub_id)
        assert invoice is not None
        self._attempt(invoice, succeed=succeed)
        if succeed:
            sub["status"] = "active"
            self._emit("customer.subscription.updated", sub)

    def expire(self, sub_id: str) -> None:
        """An incomplete subscription's first invoice was not paid in 23 hours."""
        sub = self.subscriptions[sub_id]
        invoice = self.open_invoice(sub_id)
        assert invoice is not None
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = self.now
        self._emit("invoice.voided", invoice)
        sub.update(status="incomplete_expired", ended_at=self.now)
        self._emit("customer.subscription.deleted", sub)

    def cancel(self, sub_id: str) -> None:
        sub = self.subscriptions[sub_id]
        sub.update(status="canceled", canceled_at=sub["canceled_at"] or self.now,
                   ended_at=self.now)  # fmt: skip
        self._emit("customer.subscription.deleted", sub)

    def cancel_at_period_end(self, sub_id: str) -> None:
        sub = self.subscriptions[sub_id]
        item = sub["items"]["data"][0]
        sub.update(cancel_at_period_end=True, cancel_at=item["current_period_end"],
                   canceled_at=self.now)  # fmt: skip
        self._emit("customer.subscription.updated", sub)

    def charge_of(self, invoice_id: str) -> dict[str, Any] | None:
        charge_id = self.intents[self._intent_of(self.invoices[invoice_id])]["latest_charge"]
        return self.charges[charge_id] if charge_id else None

    def refund(self, invoice_id: str, amount: int) -> None:
        charge = self.charge_of(invoice_id)
        assert charge is not None and charge["amount_refunded"] + amount <= charge["amount"]
        refund = {"id": self._id("re"), "object": "refund", "amount": amount,
                  "charge": charge["id"], "payment_intent": charge["payment_intent"],
                  "currency": CURRENCY, "status": "succeeded", "created": self.now}  # fmt: skip
        charge["refunds"]["data"].append(refund)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self._emit("charge.refunded", charge)
        self._emit("charge.refund.updated", refund)  # its object is the refund: its charge

    def open_dispute(self, invoice_id: str) -> str:
        charge = self.charge_of(invoice_id)
        assert charge is not None
        dispute = template("dispute")
        dispute.update(id=self._id("dp"), charge=charge["id"], created=self.now,
                       payment_intent=charge["payment_intent"], currency=CURRENCY,
                       amount=charge["amount"] - charge["amount_refunded"], status=OPEN_DISPUTE,
                       is_charge_refundable=False, livemode=False)  # fmt: skip
        self.disputes[dispute["id"]] = dispute
        charge["disputed"] = True
        self._emit("charge.dispute.created", dispute)
        self._emit("charge.dispute.funds_withdrawn", dispute)
        return str(dispute["id"])

    def close_dispute(self, dispute_id: str, *, won: bool) -> None:
        dispute = self.disputes[dispute_id]
        dispute["status"] = "won" if won else "lost"
        self._emit("charge.dispute.closed", dispute)
        if won:
            self._emit("charge.dispute.funds_reinstated", dispute)

    # -- the gateway's reads -------------------------------------------------------------------

    def retrieve_subscription(self, subscription_id: str) -> Subscription | None:
        found = self.subscriptions.get(subscription_id)
        return Subscription.from_dict(copy.deepcopy(found)) if found else None

    def list_subscriptions(self) -> Iterator[Subscription]:
        """Every subscription, ended ones too, newest first (Stripe's order)."""
        for sub in reversed(list(self.subscriptions.values())):
            yield Subscription.from_dict(copy.deepcopy(sub))

    def retrieve_invoice(self, invoice_id: str) -> Invoice | None:
        found = self.invoices.get(invoice_id)
        return Invoice.from_dict(copy.deepcopy(found)) if found else None

    def list_invoices(self, subscription_id: str) -> list[Invoice]:
        """The subscription's invoices, newest first (Stripe's order)."""
        return [
            Invoice.from_dict(copy.deepcopy(inv))
            for inv in reversed(list(self.invoices.values()))
            if inv["parent"]["subscription_details"]["subscription"] == subscription_id
        ]

    def retrieve_charge(self, charge_id: str) -> Charge | None:
        found = self.charges.get(charge_id)
        return Charge.from_dict(copy.deepcopy(found)) if found else None

    def retrieve_dispute(self, dispute_id: str) -> Dispute | None:
        found = self.disputes.get(dispute_id)
        return Dispute.from_dict(copy.deepcopy(found)) if found else None

    def disputes_of_charge(self, charge_id: str) -> list[Dispute]:
        return [Dispute.from_dict(copy.deepcopy(d)) for d in self.disputes.values()
                if d["charge"] == charge_id]  # fmt: skip

    def invoice_id_for_payment_intent(self, payment_intent_id: str) -> str | None:
        found = self.intents.get(payment_intent_id)
        return found["invoice"] if found else None

    def charge_for_payment_intent(self, payment_intent_id: str) -> str | None:
        found = self.intents.get(payment_intent_id)
        return found["latest_charge"] if found else None

    def parse_event(self, payload: bytes, signature: str | bytes | None) -> Event:
        """The webhook's check of a delivery, as the real gateway makes it (signature.py)."""
        return read_event(payload, signature, self.webhook_secret)

    # -- Stripe's own figures ------------------------------------------------------------------

    def net(self) -> int:
        """What the account kept: each paid invoice's amount, less refunds and lost disputes."""
        total = 0
        for invoice in self.invoices.values():
            if invoice["status"] != "paid":
                continue
            total += invoice["amount_paid"]
            charge = self.charge_of(invoice["id"])
            if charge is None:
                continue
            total -= charge["amount_refunded"]
            total -= sum(d["amount"] for d in self.disputes.values()
                         if d["charge"] == charge["id"] and d["status"] == "lost")  # fmt: skip
        return total
