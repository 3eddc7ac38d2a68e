"""The gateway's reads of money (charges, disputes, a PaymentIntent's charge, invoices) against
localstripe and against Stripe's example shapes (tests/fixtures/stripe), its settings
(STRIPE_TIMEOUT, STRIPE_NETWORK_RETRIES) and its bounded calls: a Stripe that does not answer
is `Unreachable` within the timeout, never a wait of 80 s (issue 12, "Stripe calls are
bounded")."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from patrons.core.config import ConfigError, Settings
from patrons.pledges.billing import make_gateway
from patrons.pledges.gateway import Gateway
from patrons.pledges.stripe_objects import (
    BadEvent,
    Charge,
    Dispute,
    Event,
    GatewayError,
    Invoice,
    Unreachable,
)
from tests.pledges.conftest import SECRET_KEY, StripeWorld

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stripe"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


# -- against localstripe -------------------------------------------------------------------------


def paid_first_invoice(world: StripeWorld) -> tuple[Any, Invoice]:
    patron = world.subscribe()
    invoice = world.gateway.retrieve_invoice(patron.sub.latest_invoice_id)
    assert invoice is not None and invoice.status == "paid"
    return patron, invoice


def test_a_paid_invoice_its_payment_intent_and_its_charge_are_read(world: StripeWorld) -> None:
    patron, invoice = paid_first_invoice(world)
    gw = world.gateway
    assert invoice.finalized_at is not None and invoice.billing_reason is None  # localstripe
    assert invoice.payment_intent_id is not None
    charge_id = gw.charge_for_payment_intent(invoice.payment_intent_id)
    assert charge_id is not None and charge_id == invoice.charge_id
    charge = gw.retrieve_charge(charge_id)
    assert charge is not None
    assert (charge.paid, charge.refunded, charge.disputed, charge.status) == (
        True,
        False,
        False,
        "succeeded",
    )
    assert (charge.amount, charge.amount_refunded, charge.currency) == (500, 0, "EUR")
    assert charge.customer_id == patron.customer_id
    assert charge.payment_intent_id == invoice.payment_intent_id
    assert isinstance(charge.created, datetime)


def test_a_refund_shows_on_the_charge_read_again(world: StripeWorld) -> None:
    _, invoice = paid_first_invoice(world)
    assert invoice.charge_id is not None
    world.client.v1.refunds.create(params={"charge": invoice.charge_id, "amount": 200})
    partial = world.gateway.retrieve_charge(invoice.charge_id)
    assert partial is not None and (partial.amount_refunded, partial.refunded) == (200, False)
    # the rest, by amount (localstripe refunds the whole amount again when none is given)
    world.client.v1.refunds.create(params={"charge": invoice.charge_id, "amount": 300})
    whole = world.gateway.retrieve_charge(invoice.charge_id)
    assert whole is not None and (whole.amount_refunded, whole.refunded) == (500, True)


def test_what_stripe_does_not_know_is_none(world: StripeWorld) -> None:
    gw = world.gateway
    assert gw.retrieve_charge("ch_unknown") is None
    assert gw.retrieve_invoice("in_unknown") is None
    assert gw.charge_for_payment_intent("pi_unknown") is None


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_offline_there_are_no_disputes_and_nothing_is_asked(silent_port: int) -> None:
    gw = Gateway(SECRET_KEY, api_base=f"http://127.0.0.1:{silent_port}", timeout=5)
    started = time.monotonic()
    assert gw.retrieve_dispute("dp_1") is None
    assert gw.disputes_of_charge("ch_1") == []
    assert time.monotonic() - started < 0.5  # the silent port was never asked


# -- bounded calls -------------------------------------------------------------------------------


def _settings(tmp_path: Path, api_base: str, **env: str) -> Settings:
    """Settings read from the environment, as in production."""
    return Settings.from_env(
        {
            "PATRONS_ENV": "testing",
            "SECRET_KEY": "x" * 40,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
            "PATRONS_INSTANCE": str(tmp_path / "instance"),
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_API_BASE": api_base,
            **env,
        }
    )


@pytest.mark.parametrize("retries", ["0", "1"])
def test_a_stripe_that_never_answers_is_unreachable_within_the_timeout(
    silent_port: int, tmp_path: Path, retries: str
) -> None:
    settings = _settings(
        tmp_path,
        api_base=f"http://127.0.0.1:{silent_port}",
        STRIPE_TIMEOUT="0.5",
        STRIPE_NETWORK_RETRIES=retries,
    )
    assert (settings.stripe_timeout, settings.stripe_network_retries) == (0.5, int(retries))
    gw = make_gateway(settings)
    assert gw is not None
    started = time.monotonic()
    with pytest.raises(Unreachable) as caught:
        gw.retrieve_invoice("in_1")
    elapsed = time.monotonic() - started
    assert elapsed < (1.0 if retries == "0" else 2.5), elapsed
    assert caught.value.message == (
        "The payment service is not answering just now. Nothing was charged; "
        "please try again in a minute."
    )
    assert isinstance(caught.value, GatewayError)


def test_a_refused_connection_is_unreachable_too() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the call: nothing listens
    gw = Gateway(SECRET_KEY, api_base=f"http://127.0.0.1:{port}", timeout=0.5)
    with pytest.raises(Unreachable):
        gw.create_customer(email="a@example.org", name=None, local_id=1, idempotency_key="k")


def test_writes_are_bounded_too(silent_port: int) -> None:
    gw = Gateway(SECRET_KEY, api_base=f"http://127.0.0.1:{silent_port}", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(Unreachable):
        gw.create_customer(email="a@example.org", name=None, local_id=1, idempotency_key="k")
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("raw", ["0", "-1", "61", "nan", "inf", "ten", "1e3"])
def test_stripe_timeout_must_be_positive_and_at_most_a_minute(raw: str) -> None:
    with pytest.raises(ConfigError, match="STRIPE_TIMEOUT"):
        Settings.from_env({"SECRET_KEY": "x" * 40, "STRIPE_TIMEOUT": raw})


@pytest.mark.parametrize("raw", ["-1", "6", "one"])
def test_stripe_network_retries_must_be_between_0_and_5(raw: str) -> None:
    with pytest.raises(ConfigError, match="STRIPE_NETWORK_RETRIES"):
        Settings.from_env({"SECRET_KEY": "x" * 40, "STRIPE_NETWORK_RETRIES": raw})


def test_the_defaults_are_ten_seconds_and_one_retry_online_none_offline() -> None:
    settings = Settings.from_env({"SECRET_KEY": "x" * 40})
    assert (settings.stripe_timeout, settings.stripe_network_retries) == (10.0, None)
    online = Gateway(SECRET_KEY)
    offline = Gateway(SECRET_KEY, api_base="http://127.0.0.1:9")
    assert online.client._requestor._options.max_network_retries == 1  # noqa: SLF001
    assert offline.client._requestor._options.max_network_retries == 0  # noqa: SLF001


# -- the readers, on Stripe's shapes ---------------------------------------------------------------


def test_a_dispute_is_read_from_stripes_example_and_ours() -> None:
    example = Dispute.from_dict(load("api_dispute"))
    assert (example.id, example.charge_id, example.payment_intent_id) == (
        "dp_1Pgc71B7WZ01zgkWMevJiAUx",
        "ch_1PgafuB7WZ01zgkWXYmPNZs8",
        None,
    )
    assert (example.amount, example.currency, example.status) == (
        1000,
        "USD",
        "warning_needs_response",
    )
    assert example.created == datetime.fromtimestamp(1234567890, tz=UTC)
    ours = Dispute.from_dict(load("pinned_dispute"))
    assert (ours.charge_id, ours.payment_intent_id, ours.amount) == (
        "ch_pinned500",
        "pi_pinned500",
        500,
    )


@pytest.mark.parametrize("status", ["won", "lost", "under_review", "prevented", "warning_closed"])
def test_every_dispute_status_is_kept_and_nothing_else(status: str) -> None:
    assert Dispute.from_dict({**load("pinned_dispute"), "status": status}).status == status
    assert Dispute.from_dict({**load("pinned_dispute"), "status": "weird"}).status is None
    assert Dispute.from_dict({"id": "dp_1", "charge": {"id": "ch_1"}}).charge_id == "ch_1"


def test_a_charge_tells_paid_refunded_and_disputed() -> None:
    example = Charge.from_dict(load("api_charge"))
    assert (example.paid, example.refunded, example.disputed, example.status) == (
        True,
        False,
        False,
        "succeeded",
    )
    assert example.created == datetime.fromtimestamp(1234567890, tz=UTC)
    refunded = Charge.from_dict(load("pinned_charge_refunded"))
    assert (refunded.refunded, refunded.amount_refunded, refunded.payment_intent_id) == (
        True,
        500,
        "pi_pinned500",
    )
    odd = Charge.from_dict({"id": "ch_1", "disputed": "true", "paid": 1, "created": 10**30})
    assert (odd.disputed, odd.paid, odd.created, odd.status) == (False, False, None, None)


def test_an_invoice_tells_why_it_was_made_and_when_it_was_final() -> None:
    first = Invoice.from_dict(load("pinned_invoice_paid"))
    assert first.billing_reason == "subscription_create"
    assert first.finalized_at == datetime.fromtimestamp(1795736579, tz=UTC)
    draft = Invoice.from_dict(load("api_invoice"))
    assert (draft.billing_reason, draft.finalized_at) == ("manual", None)


def _event(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "evt_1",
        "type": "charge.refunded",
        "created": 1795736590,
        "livemode": False,
        "data": {"object": load("pinned_charge_refunded")},
    }
    body.update(changes)
    return body


def test_an_event_names_its_connected_account() -> None:
    assert Event.from_payload(_event()).account is None
    assert Event.from_payload(_event(account=None)).account is None
    assert Event.from_payload(_event(account="acct_1")).account == "acct_1"
    assert Event.from_payload(_event(livemode=True)).livemode is True


@pytest.mark.parametrize(
    "changes",
    [
        {"livemode": "true"},
        {"livemode": 1},
        {"livemode": None},
        {"account": 7},
        {"account": ""},
        {"id": 5},
        {"type": None},
        {"data": {"object": {"id": ""}}},
        {"data": []},
    ],
    ids=repr,
)
def test_an_event_with_a_field_of_the_wrong_kind_is_a_bad_event(changes: dict[str, Any]) -> None:
    with pytest.raises(BadEvent):
        Event.from_payload(_event(**changes))
    without = _event()
    del without["livemode"]
    with pytest.raises(BadEvent):
        Event.from_payload(without)


def test_a_huge_created_is_no_date_not_an_error() -> None:
    assert Event.from_payload(_event(created=2**53)).created is None
    assert Event.from_payload(_event(created=-(2**53))).created is None
