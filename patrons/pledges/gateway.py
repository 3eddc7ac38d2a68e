"""Every call to Stripe, and the only module that imports `stripe`.

It runs against real Stripe (test or live mode) and against localstripe (`STRIPE_API_BASE`,
offline) alike, and hides where the two differ (docs: localstripe.md):
- the catalogue is monthly Plans with fixed ids (`patron-eur-500`), sent as `price` to real
  Stripe and as `plan` to localstripe;
- the period end is on the subscription item (current API) or the subscription (older);
- an invoice names its subscription in `parent.subscription_details` (current) or
  `subscription` (older), and its payment in `payments` (current) or `payment_intent`.
The rest of the app sees only the plain dataclasses below, built from plain dicts, so webhook
payloads and API responses go through the same readers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import stripe

# The API version this code and tests/fixtures/stripe are written for; the webhook endpoint
# must be created with the same version (README, "Real Stripe").
API_VERSION = "2026-10-28.endive"
PRODUCT_ID = "patrons-monthly-pledge"
PLAN_PATTERN = re.compile(r"^patron-(?P<currency>[a-z]{3})-(?P<amount>[1-9][0-9]{0,8})$")
WEBHOOK_TOLERANCE = 300  # seconds: an older signature is a replay


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


class SignatureError(Exception):
    """A webhook whose signature, timestamp or body cannot be trusted."""


def plan_id(currency: str, amount: int) -> str:
    return f"patron-{currency.lower()}-{amount}"


def parse_plan_id(value: str | None) -> tuple[str, int] | None:
    """(CURRENCY, amount) for one of our plan ids, None for anything else."""
    match = PLAN_PATTERN.match(value or "")
    if match is None:
        return None
    return match["currency"].upper(), int(match["amount"])


def _ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _id(value: Any) -> str | None:
    """An id whether the field holds the id or the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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
        items = _dict(data.get("items")).get("data") or []
        item = _dict(items[0]) if items else {}
        price = _dict(item.get("price")) or _dict(item.get("plan")) or _dict(data.get("plan"))
        amount = price.get("unit_amount", price.get("amount"))
        currency = price.get("currency")
        period_end = item.get("current_period_end", data.get("current_period_end"))
        invoice = data.get("latest_invoice")
        intent = _dict(_dict(invoice).get("payment_intent"))
        if not intent:  # current API: the invoice's payments list
            payments = _dict(_dict(invoice).get("payments")).get("data") or []
            if payments:
                intent = _dict(_dict(_dict(payments[0]).get("payment")).get("payment_intent"))
        error = _dict(intent.get("last_payment_error"))
        return cls(
            id=str(data["id"]),
            customer_id=_id(data.get("customer")),
            status=str(data.get("status") or "incomplete"),
            plan_id=_id(price) if price else None,
            amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            currency=currency.upper() if isinstance(currency, str) else None,
            current_period_end=_ts(period_end),
            cancel_at_period_end=bool(data.get("cancel_at_period_end")),
            canceled_at=_ts(data.get("canceled_at")),
            ended_at=_ts(data.get("ended_at")),
            created=_ts(data.get("created") or data.get("start_date")),
            metadata={str(k): str(v) for k, v in _dict(data.get("metadata")).items()},
            latest_invoice_id=_id(invoice),
            payment_intent_status=intent.get("status") if intent else None,
            payment_intent_client_secret=(
                intent.get("client_secret")
                or _dict(_dict(invoice).get("confirmation_secret")).get("client_secret")
                if intent
                else None
            ),
            payment_error=error.get("message") or error.get("code") if error else None,
        )


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Invoice:
        parent = _dict(_dict(data.get("parent")).get("subscription_details"))
        subscription = _id(parent.get("subscription")) or _id(data.get("subscription"))
        intent = _id(data.get("payment_intent"))
        charge = _id(data.get("charge"))
        for payment in _dict(data.get("payments")).get("data") or []:
            inner = _dict(_dict(payment).get("payment"))
            intent = intent or _id(inner.get("payment_intent"))
            charge = charge or _id(inner.get("charge"))
        transitions = _dict(data.get("status_transitions"))
        currency = data.get("currency")
        return cls(
            id=str(data["id"]),
            customer_id=_id(data.get("customer")),
            subscription_id=subscription,
            status=data.get("status"),
            amount_due=_int(data.get("amount_due")),
            amount_paid=_int(data.get("amount_paid")),
            currency=currency.upper() if isinstance(currency, str) else None,
            created=_ts(data.get("created") or data.get("date")),
            paid_at=_ts(transitions.get("paid_at")),
            payment_intent_id=intent,
            charge_id=charge,
            attempt_count=_int(data.get("attempt_count")),
        )


@dataclass(frozen=True)
class Charge:
    id: str
    customer_id: str | None
    payment_intent_id: str | None
    invoice_id: str | None  # only in older API versions
    amount: int
    amount_refunded: int
    currency: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Charge:
        currency = data.get("currency")
        return cls(
            id=str(data["id"]),
            customer_id=_id(data.get("customer")),
            payment_intent_id=_id(data.get("payment_intent")),
            invoice_id=_id(data.get("invoice")),
            amount=_int(data.get("amount")),
            amount_refunded=_int(data.get("amount_refunded")),
            currency=currency.upper() if isinstance(currency, str) else None,
        )


@dataclass(frozen=True)
class Card:
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created: datetime | None
    livemode: bool
    object: dict[str, Any]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _error(exc: stripe.StripeError) -> GatewayError:
    if isinstance(exc, stripe.CardError):
        return CardError(exc.user_message or "Your card was declined.", code=exc.code)
    if isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404:
        return NotFound(exc.user_message or "Not found.", code=exc.code)
    return GatewayError(
        "The payment service did not answer as expected. Nothing was charged; please try again.",
        code=getattr(exc, "code", None),
    )


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
        try:
            self.client.v1.plans.retrieve(pid)
            return pid
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise _error(exc) from exc
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        params: dict[str, Any] = {
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
                raise _error(exc) from exc
            self.client.v1.plans.retrieve(pid)  # it exists now, or this raises
        return pid

    def _product(self) -> str:
        if self.offline:  # localstripe cannot create a product with a chosen id
            for product in self.client.v1.products.list(params={"limit": 100}).data:
                if _dict(product.to_dict().get("metadata")).get("patrons") == PRODUCT_ID:
                    return product.id
            return self.client.v1.products.create(
                params={"name": "Monthly pledge", "metadata": {"patrons": PRODUCT_ID}}
            ).id
        try:
            return self.client.v1.products.retrieve(PRODUCT_ID).id
        except stripe.InvalidRequestError:
            return self.client.v1.products.create(
                params={"id": PRODUCT_ID, "name": "Monthly pledge"},
                options={"idempotency_key": PRODUCT_ID},
            ).id

    # -- customers and cards -------------------------------------------------------------

    def create_customer(
        self, *, email: str, name: str | None, local_id: int, idempotency_key: str
    ) -> str:
        params: dict[str, Any] = {"email": email, "metadata": {"patrons_customer": str(local_id)}}
        if name:
            params["name"] = name
        try:
            customer = self.client.v1.customers.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        return customer.id

    def create_setup_intent(self, customer_id: str, *, idempotency_key: str) -> tuple[str, str]:
        """(id, client_secret) of a SetupIntent the browser confirms with the card."""
        try:
            intent = self.client.v1.setup_intents.create(
                params={"customer": customer_id, "usage": "off_session"},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        return intent.id, intent.client_secret

    def confirmed_payment_method(self, setup_intent_id: str, customer_id: str) -> str:
        """The card a succeeded SetupIntent of this customer collected."""
        try:
            intent = self.client.v1.setup_intents.retrieve(setup_intent_id).to_dict()
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        if _id(intent.get("customer")) != customer_id:  # as good as unknown to this customer
            raise NotFound("That card setup belongs to someone else.")
        if intent.get("status") != "succeeded" or not _id(intent.get("payment_method")):
            raise CardError("The card was not confirmed. Please enter it again.")
        return _id(intent["payment_method"]) or ""

    def set_default_card(self, customer_id: str, payment_method_id: str) -> Card:
        """Attach the card if it is not yet (real Stripe attaches on confirm), make it the
        default for invoices, and return what may be shown of it."""
        try:
            method = self.client.v1.payment_methods.retrieve(payment_method_id).to_dict()
            owner = _id(method.get("customer"))
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
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        return _card(method)

    def default_card(self, customer_id: str) -> Card | None:
        try:
            customer = self.client.v1.customers.retrieve(customer_id).to_dict()
            pm = _id(_dict(customer.get("invoice_settings")).get("default_payment_method"))
            if pm is None:
                return None
            return _card(self.client.v1.payment_methods.retrieve(pm).to_dict())
        except stripe.StripeError as exc:
            raise _error(exc) from exc

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

    def _item(self, plan: str) -> dict[str, str]:
        return {"plan": plan} if self.offline else {"price": plan}

    def create_subscription(
        self, customer_id: str, plan: str, *, pledge_id: int, idempotency_key: str
    ) -> Subscription:
        try:
            sub = self.client.v1.subscriptions.create(
                params={
                    "customer": customer_id,
                    "items": [self._item(plan)],
                    "metadata": {"patrons_pledge": str(pledge_id)},
                    "expand": self._latest_invoice_expand,
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        return Subscription.from_dict(sub.to_dict())

    def retrieve_subscription(self, subscription_id: str) -> Subscription | None:
        """The subscription as Stripe has it now; None if Stripe does not know it."""
        try:
            sub = self.client.v1.subscriptions.retrieve(
                subscription_id, params={"expand": self._latest_invoice_expand}
            )
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise _error(exc) from exc
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        return Subscription.from_dict(sub.to_dict())

    def change_plan(self, subscription: Subscription, plan: str) -> Subscription:
        """Switch the one item to another plan; Stripe prorates on the next invoice."""
        try:
            current = self.client.v1.subscriptions.retrieve(subscription.id).to_dict()
            item_id = _dict(current["items"]["data"][0])["id"]
            item = {"id": item_id, **self._item(plan)}
            sub = self.client.v1.subscriptions.update(subscription.id, params={"items": [item]})
        except (stripe.StripeError, KeyError, IndexError) as exc:
            raise (
                _error(exc)
                if isinstance(exc, stripe.StripeError)
                else GatewayError("That pledge cannot be changed right now.")
            ) from exc
        return Subscription.from_dict(sub.to_dict())

    def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> Subscription:
        try:
            sub = self.client.v1.subscriptions.update(
                subscription_id, params={"cancel_at_period_end": cancel}
            )
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        return Subscription.from_dict(sub.to_dict())

    def cancel_now(self, subscription_id: str) -> Subscription | None:
        try:
            sub = self.client.v1.subscriptions.cancel(subscription_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise _error(exc) from exc
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        return Subscription.from_dict(sub.to_dict())

    def list_subscriptions(self) -> Iterator[Subscription]:
        """Every subscription of the account, ended ones included (for `sync-stripe`)."""
        try:
            page = self.client.v1.subscriptions.list(params={"status": "all", "limit": 100})
            for sub in page.auto_paging_iter():
                yield Subscription.from_dict(sub.to_dict())
        except stripe.StripeError as exc:
            raise _error(exc) from exc

    def list_invoices(self, subscription_id: str) -> list[Invoice]:
        try:
            page = self.client.v1.invoices.list(
                params={"subscription": subscription_id, "limit": 100}
            )
            return [Invoice.from_dict(inv.to_dict()) for inv in page.auto_paging_iter()]
        except stripe.StripeError as exc:
            raise _error(exc) from exc

    def retrieve_invoice(self, invoice_id: str) -> Invoice | None:
        try:
            return Invoice.from_dict(self.client.v1.invoices.retrieve(invoice_id).to_dict())
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise _error(exc) from exc
        except stripe.StripeError as exc:
            raise _error(exc) from exc

    def invoice_id_for_payment_intent(self, payment_intent_id: str) -> str | None:
        """The invoice a PaymentIntent paid. At the pinned API version neither a charge nor a
        webhook's invoice names the other, so a refund is matched to its payment through the
        Invoice Payments list; localstripe (older API) puts `invoice` on the charge itself."""
        if self.offline:
            return None
        try:
            page = self.client.v1.invoice_payments.list(
                params={
                    "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
                    "limit": 1,
                }
            )
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        for item in page.data:
            return _id(item.to_dict().get("invoice"))
        return None

    def pay_open_invoices(self, subscription_id: str) -> list[Invoice]:
        """Try the subscription's unpaid invoices again now, with the customer's default card
        (after a past-due patron saved a new one). CardError if the card is refused again."""
        try:
            page = self.client.v1.invoices.list(
                params={"subscription": subscription_id, "limit": 100}
            )  # no `status` filter: localstripe fails on it
            open_ids = [inv.id for inv in page.auto_paging_iter() if inv.status == "open"]
            return [Invoice.from_dict(self.client.v1.invoices.pay(i).to_dict()) for i in open_ids]
        except stripe.StripeError as exc:
            raise _error(exc) from exc

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
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise SignatureError("not an event")
        obj = _dict(_dict(data.get("data")).get("object"))
        if not isinstance(data.get("type"), str) or not isinstance(obj.get("id"), str):
            raise SignatureError("an event without a type or an object")
        return Event(
            id=data["id"],
            type=data["type"],
            created=_ts(data.get("created")),
            livemode=data.get("livemode") is True,
            object=obj,
        )

    # -- offline only: what time would do ------------------------------------------------

    def simulate_renewal(self, subscription: Subscription) -> Invoice:
        """Invoice and charge the next month now (localstripe never moves time)."""
        self._offline_only()
        try:
            draft = self.client.v1.invoices.create(
                params={"customer": subscription.customer_id, "subscription": subscription.id}
            )
            return Invoice.from_dict(self.client.v1.invoices.pay(draft.id).to_dict())
        except stripe.StripeError as exc:
            raise _error(exc) from exc

    def simulate_failed_renewal(self, subscription: Subscription) -> Invoice:
        """A renewal whose payment fails: the subscription becomes past_due and Stripe sends
        `invoice.payment_failed` (the 3-D Secure failure recipe in docs/localstripe.md)."""
        self._offline_only()
        customer = subscription.customer_id or ""
        try:
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
            intent = _dict(invoice.to_dict().get("payment_intent"))
            self.client.raw_request(
                "post",
                f"/v1/payment_intents/{intent['id']}/_authenticate?success=false",
                client_secret=intent["client_secret"],
            )
            return Invoice.from_dict(self.client.v1.invoices.retrieve(draft.id).to_dict())
        except (stripe.StripeError, KeyError) as exc:
            raise (
                _error(exc)
                if isinstance(exc, stripe.StripeError)
                else GatewayError("The simulated failure could not be set up.")
            ) from exc

    def _offline_only(self) -> None:
        if not self.offline:
            raise GatewayError("Simulations exist only with the offline Stripe.")


def _card(method: Mapping[str, Any]) -> Card:
    card = _dict(method.get("card"))
    month, year = card.get("exp_month"), card.get("exp_year")
    return Card(
        brand=str(card.get("brand") or "card"),
        last4=str(card.get("last4") or "")[-4:],
        exp_month=month if isinstance(month, int) else None,
        exp_year=year if isinstance(year, int) else None,
    )
