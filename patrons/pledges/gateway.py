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
leaves this module as a GatewayError (`stripe_errors`): Unreachable when Stripe did not answer
within `timeout`, retries included (the SDK retries a POST with an idempotency key).
Webhooks are read by signature.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeAlias, TypeVar

import stripe

from patrons.pledges.gateway_payments import PaymentReads
from patrons.pledges.offline_stripe import OfflineSimulations
from patrons.pledges.signature import TOLERANCE, read_event
from patrons.pledges.stripe_objects import (
    Card,
    CardError,
    Event,
    GatewayError,
    NotFound,
    Subscription,
    Unreachable,
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
WEBHOOK_TOLERANCE = TOLERANCE  # seconds either side of now

_T = TypeVar("_T")
Client: TypeAlias = stripe.StripeClient


def _error(exc: stripe.StripeError) -> GatewayError:
    if isinstance(exc, stripe.CardError):
        return CardError(exc.user_message or "Your card was declined.", code=exc.code)
    if isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404:
        return NotFound(exc.user_message or "Not found.", code=exc.code)
    if isinstance(exc, stripe.APIConnectionError):  # refused, reset or timed out
        return Unreachable()
    return GatewayError(
        "The payment service did not answer as expected. Nothing was charged; please try again.",
        code=getattr(exc, "code", None),
    )


@contextmanager
def stripe_errors(unexpected: str | None = None) -> Iterator[None]:
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
        with stripe_errors():
            return call()
    except NotFound:
        return None


class Gateway(PaymentReads, OfflineSimulations):
    """A Stripe client for one deployment's keys. Its reads of invoices, charges and disputes
    are in gateway_payments.py, the offline simulations in offline_stripe.py."""

    errors = staticmethod(stripe_errors)  # for those mixins, which cannot import this module
    unless_missing = staticmethod(_unless_missing)

    def __init__(
        self,
        secret_key: str,
        *,
        webhook_secret: str | None = None,
        api_base: str | None = None,
        livemode: bool = False,
        timeout: float = 10.0,
        network_retries: int | None = None,
    ) -> None:
        """`timeout`: seconds one call may take, retries included (each attempt gets an equal
        share, half of it at most to connect); `network_retries`: 1 online, 0 offline."""
        self.offline = api_base is not None
        self.livemode = livemode
        self.webhook_secret = webhook_secret
        if network_retries is None:
            network_retries = 0 if self.offline else 1
        share = timeout / (network_retries + 1)
        self.client = stripe.StripeClient(
            secret_key,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base} if api_base else {},
            http_client=stripe.RequestsClient(timeout=(min(3.0, share / 2), share)),
            max_network_retries=network_retries,
        )

    # -- the catalogue -------------------------------------------------------------------

    def ensure_plan(self, currency: str, amount: int) -> str:
        """The monthly plan for this amount, created on first use; safe to call concurrently."""
        pid = plan_id(currency, amount)
        with stripe_errors():
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
        with stripe_errors():
            customer = self.client.v1.customers.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        return customer.id

    def create_setup_intent(self, customer_id: str, *, idempotency_key: str) -> tuple[str, str]:
        """(id, client_secret) of a SetupIntent the browser confirms with the card."""
        with stripe_errors():
            intent = self.client.v1.setup_intents.create(
                params={"customer": customer_id, "usage": "off_session"},
                options={"idempotency_key": idempotency_key},
            )
        return intent.id, intent.client_secret or ""

    def confirmed_payment_method(self, setup_intent_id: str, customer_id: str) -> str:
        """The card a succeeded SetupIntent of this customer collected."""
        with stripe_errors():
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
        with stripe_errors():
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
        with stripe_errors():
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
        with stripe_errors(unexpected="That pledge cannot be changed right now."):
            current = self.client.v1.subscriptions.retrieve(subscription.id).to_dict()
            item_id = as_dict(current["items"]["data"][0])["id"]
            item: SubscriptionUpdateParamsItem = (
                {"id": item_id, "plan": plan} if self.offline else {"id": item_id, "price": plan}
            )
            sub = self.client.v1.subscriptions.update(subscription.id, params={"items": [item]})
        return Subscription.from_dict(sub.to_dict())

    def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> Subscription:
        with stripe_errors():
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
        with stripe_errors():
            page = self.client.v1.subscriptions.list(params={"status": "all", "limit": 100})
            for sub in page.auto_paging_iter():
                yield Subscription.from_dict(sub.to_dict())

    # -- webhooks ------------------------------------------------------------------------

    def parse_event(self, payload: bytes, signature: str | bytes | None) -> Event:
        """The event of a webhook (signature.py): SignatureError for a header, signature or
        timestamp that does not hold, BadEvent (a SignatureError) for a signed body we will
        not read."""
        return read_event(payload, signature, self.webhook_secret)
