"""Every call to Stripe, and the only module that imports `stripe`.

It runs against real Stripe (test or live mode) and against localstripe (`STRIPE_API_BASE`,
offline) alike, and hides where the two differ (README, "Pledges and Stripe"):
- the catalogue is monthly Plans with fixed ids (`patron-eur-500`), sent as `price` to real
  Stripe and as `plan` to localstripe;
- the period end is on the subscription item (current API) or the subscription (older);
- an invoice names its subscription in `parent.subscription_details` (current) or
  `subscription` (older), and its payment in `payments` (current) or `payment_intent`.
The rest of the app sees only the plain values of stripe_objects.py, built from plain dicts,
so webhook payloads and API responses go through the same readers. Every error Stripe raises
leaves this module as a GatewayError (`_stripe_errors`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import stripe

from patrons.pledges.stripe_objects import (
    Card,
    CardError,
    Event,
    GatewayError,
    Invoice,
    NotFound,
    SignatureError,
    Subscription,
    as_dict,
    object_id,
    plan_id,
)

if TYPE_CHECKING:
    from stripe.params import (
        CustomerCreateParams,
        PlanCreateParams,
        SubscriptionCreateParamsItem,
        SubscriptionUpdateParamsItem,
    )

# The API version this code and tests/fixtures/stripe are written for; the webhook endpoint
# must be created with the same version (README, "Real Stripe").
API_VERSION = "2026-10-28.endive"
PRODUCT_ID = "patrons-monthly-pledge"
WEBHOOK_TOLERANCE = 300  # seconds: an older signature is a replay

_T = TypeVar("_T")


def _error(exc: stripe.StripeError) -> GatewayError:
    if isinstance(exc, stripe.CardError):
        return CardError(exc.user_message or "Your card was declined.", code=exc.code)
    if isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404:
        return NotFound(exc.user_message or "Not found.", code=exc.code)
    return GatewayError(
        "The payment service did not answer as expected. Nothing was charged; please try again.",
        code=getattr(exc, "code", None),
    )


@contextmanager
def _stripe_errors(unexpected: str | None = None) -> Iterator[None]:
    """Inside the block, Stripe's errors become GatewayError (CardError, NotFound); with
    `unexpected`, so does an answer without the fields read from it (KeyError, IndexError)."""
    try:
        yield
    except stripe.StripeError as exc:
        raise _error(exc) from exc
    except (KeyError, IndexError) as exc:
        if unexpected is None:
            raise
        raise GatewayError(unexpected) from exc


def _unless_missing(call: Callable[[], _T]) -> _T | None:
    """What the call returns; None if Stripe does not know the object (a 404)."""
    try:
        with _stripe_errors():
            return call()
    except NotFound:
        return None


class Gateway:
    """A Stripe client for one deployment's keys."""

    def __init__(
        self,
        secret_key: str,
        *,
        webhook_secret: str | None = None,
        api_base: str | None = None,
        livemode: bool = False,
    ) -> None:
        self.offline = api_base is not None
        self.livemode = livemode
        self.webhook_secret = webhook_secret
        self.client = stripe.StripeClient(
            secret_key,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base} if api_base else {},
            max_network_retries=0 if api_base else 2,
        )

    # -- the catalogue -------------------------------------------------------------------

    def ensure_plan(self, currency: str, amount: int) -> str:
        """The monthly plan for this amount, created on first use; safe to call concurrently."""
        pid = plan_id(currency, amount)
        with _stripe_errors():
            if _unless_missing(lambda: self.client.v1.plans.retrieve(pid)) is None:
                self._create_plan(pid, currency, amount)
        return pid

    def _create_plan(self, pid: str, currency: str, amount: int) -> None:
        params: PlanCreateParams = {
            "id": pid,
            "amount": amount,
            "currency": currency.lower(),
            "interval": "month",
            "product": self._product(),
        }
        try:
            self.client.v1.plans.create(params=params, options={"idempotency_key": pid})
        except stripe.StripeError as exc:
            if exc.http_status not in (400, 409):  # 409 (fake) / 400 (real): made meanwhile
                raise
            self.client.v1.plans.retrieve(pid)  # it exists now, or this raises

    def _product(self) -> str:
        if self.offline:  # localstripe cannot create a product with a chosen id
            for product in self.client.v1.products.list(params={"limit": 100}).data:
                if as_dict(product.to_dict().get("metadata")).get("patrons") == PRODUCT_ID:
                    return product.id
            return self.client.v1.products.create(
                params={"name": "Monthly pledge", "metadata": {"patrons": PRODUCT_ID}}
            ).id
        found = _unless_missing(lambda: self.client.v1.products.retrieve(PRODUCT_ID))
        if found is not None:
            return found.id
        return self.client.v1.products.create(
            params={"id": PRODUCT_ID, "name": "Monthly pledge"},
            options={"idempotency_key": PRODUCT_ID},
        ).id

    # -- customers and cards -------------------------------------------------------------

    def create_customer(
        self, *, email: str, name: str | None, local_id: int, idempotency_key: str
    ) -> str:
        params: CustomerCreateParams = {
            "email": email,
            "metadata": {"patrons_customer": str(local_id)},
        }
        if name:
            params["name"] = name
        with _stripe_errors():
            customer = self.client.v1.customers.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        return customer.id

    def create_setup_intent(self, customer_id: str, *, idempotency_key: str) -> tuple[str, str]:
        """(id, client_secret) of a SetupIntent the browser confirms with the card."""
        with _stripe_errors():
            intent = self.client.v1.setup_intents.create(
                params={"customer": customer_id, "usage": "off_session"},
                options={"idempotency_key": idempotency_key},
            )
        return intent.id, intent.client_secret or ""

    def confirmed_payment_method(self, setup_intent_id: str, customer_id: str) -> str:
        """The card a succeeded SetupIntent of this customer collected."""
        with _stripe_errors():
            intent = self.client.v1.setup_intents.retrieve(setup_intent_id).to_dict()
        if object_id(intent.get("customer")) != customer_id:  # as good as unknown to them
            raise NotFound("That card setup belongs to someone else.")
        method = object_id(intent.get("payment_method"))
        if intent.get("status") != "succeeded" or method is None:
            raise CardError("The card was not confirmed. Please enter it again.")
        return method

    def set_default_card(self, customer_id: str, payment_method_id: str) -> Card:
        """Attach the card if it is not yet (real Stripe attaches on confirm), make it the
        default for invoices, and return what may be shown of it."""
        with _stripe_errors():
            method = self.client.v1.payment_methods.retrieve(payment_method_id).to_dict()
            owner = object_id(method.get("customer"))
            if owner is None:
                method = self.client.v1.payment_methods.attach(
                    payment_method_id, params={"customer": customer_id}
                ).to_dict()
            elif owner != customer_id:
                raise GatewayError("That card belongs to someone else.")
            self.client.v1.customers.update(
                customer_id,
                params={"invoice_settings": {"default_payment_method": payment_method_id}},
            )
        return Card.from_payment_method(method)

    # -- subscriptions -------------------------------------------------------------------

    @property
    def _latest_invoice_expand(self) -> list[str]:
        """What to expand to see the first invoice's PaymentIntent. localstripe (an older
        API) has `invoice.payment_intent`; at the pinned API version the invoice has no such
        field: its PaymentIntent is under `payments` (not included unless expanded) and its
        client secret in `confirmation_secret` (likewise). Untested offline: see README."""
        if self.offline:
            return ["latest_invoice.payment_intent"]
        return [
            "latest_invoice.payments.data.payment.payment_intent",
            "latest_invoice.confirmation_secret",
        ]

    def create_subscription(
        self, customer_id: str, plan: str, *, pledge_id: int, idempotency_key: str
    ) -> Subscription:
        item: SubscriptionCreateParamsItem = {"plan": plan} if self.offline else {"price": plan}
        with _stripe_errors():
            sub = self.client.v1.subscriptions.create(
                params={
                    "customer": customer_id,
                    "items": [item],
                    "metadata": {"patrons_pledge": str(pledge_id)},
                    "expand": self._latest_invoice_expand,
                },
                options={"idempotency_key": idempotency_key},
            )
        return Subscription.from_dict(sub.to_dict())

    def retrieve_subscription(self, subscription_id: str) -> Subscription | None:
        """The subscription as Stripe has it now; None if Stripe does not know it."""
        sub = _unless_missing(
            lambda: self.client.v1.subscriptions.retrieve(
                subscription_id, params={"expand": self._latest_invoice_expand}
            )
        )
        return Subscription.from_dict(sub.to_dict()) if sub is not None else None

    def change_plan(self, subscription: Subscription, plan: str) -> Subscription:
        """Switch the one item to another plan; Stripe prorates on the next invoice."""
        with _stripe_errors(unexpected="That pledge cannot be changed right now."):
            current = self.client.v1.subscriptions.retrieve(subscription.id).to_dict()
            item_id = as_dict(current["items"]["data"][0])["id"]
            item: SubscriptionUpdateParamsItem = (
                {"id": item_id, "plan": plan} if self.offline else {"id": item_id, "price": plan}
            )
            sub = self.client.v1.subscriptions.update(subscription.id, params={"items": [item]})
        return Subscription.from_dict(sub.to_dict())

    def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> Subscription:
        with _stripe_errors():
            sub = self.client.v1.subscriptions.update(
                subscription_id, params={"cancel_at_period_end": cancel}
            )
        return Subscription.from_dict(sub.to_dict())

    def cancel_now(self, subscription_id: str) -> Subscription | None:
        """Cancel at once; the canceled subscription, or None if Stripe does not know it."""
        sub = _unless_missing(lambda: self.client.v1.subscriptions.cancel(subscription_id))
        return Subscription.from_dict(sub.to_dict()) if sub is not None else None

    def list_subscriptions(self) -> Iterator[Subscription]:
        """Every subscription of the account, ended ones included (for `sync-stripe`)."""
        with _stripe_errors():
            page = self.client.v1.subscriptions.list(params={"status": "all", "limit": 100})
            for sub in page.auto_paging_iter():
                yield Subscription.from_dict(sub.to_dict())

    def list_invoices(self, subscription_id: str) -> list[Invoice]:
        with _stripe_errors():
            page = self.client.v1.invoices.list(
                params={"subscription": subscription_id, "limit": 100}
            )
            return [Invoice.from_dict(inv.to_dict()) for inv in page.auto_paging_iter()]

    def retrieve_invoice(self, invoice_id: str) -> Invoice | None:
        """The invoice; None if Stripe does not know it."""
        invoice = _unless_missing(lambda: self.client.v1.invoices.retrieve(invoice_id))
        return Invoice.from_dict(invoice.to_dict()) if invoice is not None else None

    def invoice_id_for_payment_intent(self, payment_intent_id: str) -> str | None:
        """The invoice a PaymentIntent paid. At the pinned API version neither a charge nor a
        webhook's invoice names the other, so a refund is matched to its payment through the
        Invoice Payments list; localstripe (older API) puts `invoice` on the charge itself."""
        if self.offline:
            return None
        with _stripe_errors():
            page = self.client.v1.invoice_payments.list(
                params={
                    "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
                    "limit": 1,
                }
            )
        for item in page.data:
            return object_id(item.to_dict().get("invoice"))
        return None

    def pay_open_invoices(self, subscription_id: str) -> list[Invoice]:
        """Try the subscription's unpaid invoices again now, with the customer's default card
        (after a past-due patron saved a new one). CardError if the card is refused again."""
        with _stripe_errors():
            page = self.client.v1.invoices.list(
                params={"subscription": subscription_id, "limit": 100}
            )  # no `status` filter: localstripe fails on it
            open_ids = [inv.id for inv in page.auto_paging_iter() if inv.status == "open"]
            return [Invoice.from_dict(self.client.v1.invoices.pay(i).to_dict()) for i in open_ids]

    # -- webhooks ------------------------------------------------------------------------

    def parse_event(self, payload: bytes, signature: str | None) -> Event:
        """Check the signature on the raw body first, then read it; SignatureError if either
        fails. Several `v1=` signatures (secret rotation) pass if one matches."""
        if not self.webhook_secret:
            raise SignatureError("no webhook secret is configured")
        if not signature:
            raise SignatureError("missing Stripe-Signature header")
        try:
            text = payload.decode("utf-8")
            stripe.WebhookSignature.verify_header(
                text, signature, self.webhook_secret, WEBHOOK_TOLERANCE
            )
            data = json.loads(text)
        except (
            stripe.SignatureVerificationError,
            UnicodeDecodeError,
            ValueError,
            RecursionError,  # JSON nested thousands deep, once signed
        ) as exc:
            raise SignatureError(str(exc)) from exc
        event = Event.from_payload(data)
        if event is None:
            raise SignatureError("not an event with an id, a type and an object")
        return event

    # -- offline only: what time would do ------------------------------------------------

    def simulate_renewal(self, subscription: Subscription) -> Invoice:
        """Invoice and charge the next month now (localstripe never moves time)."""
        self._offline_only()
        with _stripe_errors():
            draft = self.client.v1.invoices.create(
                params={
                    "customer": subscription.customer_id or "",
                    "subscription": subscription.id,
                }
            )
            return Invoice.from_dict(self.client.v1.invoices.pay(draft.id).to_dict())

    def simulate_failed_renewal(self, subscription: Subscription) -> Invoice:
        """A renewal whose payment fails: the subscription becomes past_due and Stripe sends
        `invoice.payment_failed` (localstripe's test card that asks for 3-D Secure, whose
        authentication is then failed)."""
        self._offline_only()
        customer = subscription.customer_id or ""
        with _stripe_errors(unexpected="The simulated failure could not be set up."):
            card = self.client.v1.payment_methods.create(
                params={
                    "type": "card",
                    "card": {
                        "number": "4000002500003155",
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

    def _offline_only(self) -> None:
        if not self.offline:
            raise GatewayError("Simulations exist only with the offline Stripe.")
