"""Offline only: what time would do at Stripe, made to happen now with localstripe (which never
moves time). Used by the staff's demo actions (patrons/pledges/simulations.py).

A mixin of `Gateway` (gateway.py): it calls localstripe through the gateway's SDK client and
error handling (StripeCalls), so it never imports `stripe` itself (the gateway contract in
pyproject.toml). With real Stripe each simulation raises GatewayError.
"""

from __future__ import annotations

from datetime import UTC, datetime

from patrons.pledges.gateway_payments import StripeCalls
from patrons.pledges.stripe_objects import GatewayError, Invoice, Subscription, as_dict

# localstripe's test card that asks for 3-D Secure; failing the authentication fails the payment
AUTHENTICATION_CARD = "4000002500003155"


class OfflineSimulations(StripeCalls):
    def _offline_only(self) -> None:
        if not self.offline:
            raise GatewayError("Simulations exist only with the offline Stripe.")

    def simulate_renewal(self, subscription: Subscription) -> Invoice:
        """Invoice and charge the next month now."""
        self._offline_only()
        with self.errors():
            draft = self.client.v1.invoices.create(
                params={
                    "customer": subscription.customer_id or "",
                    "subscription": subscription.id,
                }
            )
            return Invoice.from_dict(self.client.v1.invoices.pay(draft.id).to_dict())

    def simulate_failed_renewal(self, subscription: Subscription) -> Invoice:
        """A renewal whose payment fails: the subscription becomes past_due and localstripe
        sends `invoice.payment_failed` (a card asking for 3-D Secure, whose authentication is
        then failed)."""
        self._offline_only()
        customer = subscription.customer_id or ""
        with self.errors(unexpected="The simulated failure could not be set up."):
            card = self.client.v1.payment_methods.create(
                params={
                    "type": "card",
                    "card": {
                        "number": AUTHENTICATION_CARD,
                        "exp_month": 12,
                        "exp_year": datetime.now(UTC).year + 3,
                        "cvc": "123",
                    },
                }
            )
            self.client.v1.payment_methods.attach(card.id, params={"customer": customer})
            self.client.v1.customers.update(
                customer, params={"invoice_settings": {"default_payment_method": card.id}}
            )
            draft = self.client.v1.invoices.create(
                params={"customer": customer, "subscription": subscription.id}
            )
            invoice = self.client.v1.invoices.pay(draft.id, params={"expand": ["payment_intent"]})
            intent = as_dict(invoice.to_dict().get("payment_intent"))
            self.client.raw_request(
                "post",
                f"/v1/payment_intents/{intent['id']}/_authenticate?success=false",
                client_secret=intent["client_secret"],
            )
            return Invoice.from_dict(self.client.v1.invoices.retrieve(draft.id).to_dict())
