"""The gateway's reads of money: invoices, charges, disputes, and the links between them.

A mixin of `Gateway` (gateway.py), kept apart so that each module stays short; it uses the
gateway's SDK client and error handling (`errors`, `unless_missing`) and never imports `stripe`
itself. Each `retrieve_*` answers None when Stripe does not know the object (a 404), so the
code applying an event can tell "gone" from "Stripe did not answer" (a GatewayError,
Unreachable among them).

Where localstripe (an older API) differs: a charge names its invoice (at the pinned version
neither names the other: see `invoice_id_for_payment_intent`), a PaymentIntent lists its
`charges` beside `latest_charge`, and there are no disputes at all, so offline
`retrieve_dispute` is None and `disputes_of_charge` is empty without asking.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, TypeVar

from patrons.pledges.stripe_objects import Charge, Dispute, Invoice, as_dict, object_id

if TYPE_CHECKING:
    from patrons.pledges.gateway import Client

_T = TypeVar("_T")


class StripeCalls:
    """What `Gateway` gives its mixins (PaymentReads here, OfflineSimulations in
    offline_stripe.py): its SDK client and its handling of Stripe's errors."""

    client: Client
    offline: bool

    @staticmethod
    def errors(unexpected: str | None = None) -> AbstractContextManager[None]:
        """Inside the block, Stripe's errors become GatewayError; with `unexpected`, so does
        an answer without the fields read from it."""
        raise NotImplementedError  # Gateway's

    @staticmethod
    def unless_missing(call: Callable[[], _T]) -> _T | None:
        """What the call returns; None if Stripe does not know the object (a 404)."""
        raise NotImplementedError  # Gateway's


class PaymentReads(StripeCalls):
    def list_invoices(self, subscription_id: str) -> list[Invoice]:
        with self.errors():
            page = self.client.v1.invoices.list(
                params={"subscription": subscription_id, "limit": 100}
            )
            return [Invoice.from_dict(inv.to_dict()) for inv in page.auto_paging_iter()]

    def retrieve_invoice(self, invoice_id: str) -> Invoice | None:
        invoice = self.unless_missing(lambda: self.client.v1.invoices.retrieve(invoice_id))
        return Invoice.from_dict(invoice.to_dict()) if invoice is not None else None

    def pay_open_invoices(self, subscription_id: str) -> list[Invoice]:
        """Try the subscription's unpaid invoices again now, with the customer's default card
        (after a past-due patron saved a new one). CardError if the card is refused again."""
        with self.errors():
            page = self.client.v1.invoices.list(
                params={"subscription": subscription_id, "limit": 100}
            )  # no `status` filter: localstripe fails on it
            open_ids = [inv.id for inv in page.auto_paging_iter() if inv.status == "open"]
            return [Invoice.from_dict(self.client.v1.invoices.pay(i).to_dict()) for i in open_ids]

    def invoice_id_for_payment_intent(self, payment_intent_id: str) -> str | None:
        """The invoice a PaymentIntent paid. At the pinned API version neither a charge nor a
        webhook's invoice names the other, so a refund is matched to its payment through the
        Invoice Payments list. localstripe has no such list: offline, the customer's invoices
        are looked through for the one with this PaymentIntent."""
        if self.offline:
            return self._offline_invoice_of(payment_intent_id)
        with self.errors():
            page = self.client.v1.invoice_payments.list(
                params={
                    "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
                    "limit": 1,
                }
            )
        for item in page.data:
            return object_id(item.to_dict().get("invoice"))
        return None

    def _offline_invoice_of(self, payment_intent_id: str) -> str | None:
        intent = self.unless_missing(
            lambda: self.client.v1.payment_intents.retrieve(payment_intent_id)
        )
        customer = object_id(intent.to_dict().get("customer")) if intent is not None else None
        if customer is None:
            return None
        with self.errors():
            page = self.client.v1.invoices.list(params={"customer": customer, "limit": 100})
            for invoice in page.auto_paging_iter():
                if object_id(invoice.to_dict().get("payment_intent")) == payment_intent_id:
                    return invoice.id
        return None

    def charge_for_payment_intent(self, payment_intent_id: str) -> str | None:
        """The id of the charge that paid a PaymentIntent (its `latest_charge`; older APIs:
        the first of its `charges`), so that a paid invoice whose charge is not on the invoice
        (the pinned API) is matched to it; None if there is none yet or Stripe does not know
        the PaymentIntent."""
        intent = self.unless_missing(
            lambda: self.client.v1.payment_intents.retrieve(payment_intent_id)
        )
        if intent is None:
            return None
        data = intent.to_dict()
        charges = as_dict(data.get("charges")).get("data") or [None]
        return object_id(data.get("latest_charge")) or object_id(charges[0])

    def retrieve_charge(self, charge_id: str) -> Charge | None:
        charge = self.unless_missing(lambda: self.client.v1.charges.retrieve(charge_id))
        return Charge.from_dict(charge.to_dict()) if charge is not None else None

    def retrieve_dispute(self, dispute_id: str) -> Dispute | None:
        if self.offline:
            return None
        dispute = self.unless_missing(lambda: self.client.v1.disputes.retrieve(dispute_id))
        return Dispute.from_dict(dispute.to_dict()) if dispute is not None else None

    def disputes_of_charge(self, charge_id: str) -> list[Dispute]:
        """Every dispute of the charge, closed ones included (a charge has at most one in
        practice)."""
        if self.offline:
            return []
        with self.errors():
            page = self.client.v1.disputes.list(params={"charge": charge_id, "limit": 100})
            return [Dispute.from_dict(d.to_dict()) for d in page.auto_paging_iter()]
