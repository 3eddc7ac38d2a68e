"""Becoming a patron and managing the pledge, against localstripe.

The browser's part (Stripe.js confirming the SetupIntent, 3-D Secure) is played by the SDK
and localstripe's own browser routes; everything else goes through the app's routes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons import create_app
from patrons.core import clock, extensions
from patrons.models import (
    BillingCustomer,
    OutboundEmail,
    Payment,
    Pledge,
    PledgeStatusChange,
    StripeCallLease,
    User,
)
from patrons.pledges import records
from patrons.pledges.billing import gateway
from tests.conftest import csrf_token, empty_tables, login, make_settings
from tests.factories import PASSWORD, make_staff, make_user
from tests.pledges.conftest import PUBLISHABLE_KEY, SECRET_KEY

GOOD = "4242424242424242"
DECLINED = "4000000000000002"
EXPIRED = "4000000000000069"  # localstripe declines it like real Stripe's "expired card"
THREE_D_SECURE = "4000002500003155"
DECLINED_ON_CHARGE = "4000000000000341"  # attaches, then the first charge is declined


# -- the browser's part, and the app's JSON steps -----------------------------------------------


class Reader:
    """A signed-in reader's browser: the app's JSON steps and what Stripe.js would do."""

    def __init__(self, app: Flask, user: User, localstripe: str) -> None:
        self.client = app.test_client()
        self.user = user
        self.localstripe = localstripe
        self.stripe = stripe.StripeClient(
            SECRET_KEY, base_addresses={"api": localstripe}, max_network_retries=0
        )
        login(self.client, user.email, PASSWORD)
        self.token = csrf_token(self.client)
        self.attempts = 0

    def post(self, url: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(
            url, json=body or {}, headers={"X-CSRFToken": self.token, "Accept": "application/json"}
        )

    def form(self, url: str, data: dict[str, str] | None = None) -> Any:
        return self.client.post(url, data={**(data or {}), "csrf_token": self.token})

    def start(self, currency: str = "EUR", amount: Any = 500, **extra: Any) -> Any:
        self.attempts += 1
        body = {"currency": currency, "amount": amount, "attempt": f"try{self.attempts}", **extra}
        return self.post("/pledge/start", body)

    def confirm_card(self, client_secret: str, number: str = GOOD, *, authenticate: bool = True):  # type: ignore[no-untyped-def]
        """confirmCardSetup: the SetupIntent's id, or the CardError Stripe.js would show."""
        setup_id = client_secret.split("_secret_")[0]
        method = self.stripe.v1.payment_methods.create(
            params={"type": "card", "card": {"number": number, "exp_month": 12,
                                             "exp_year": 2030, "cvc": "123"}}
        )  # fmt: skip
        intent = self.stripe.v1.setup_intents.confirm(
            setup_id, params={"payment_method": method.id}
        )
        if intent.status == "requires_action":  # the 3-D Secure modal
            if not authenticate:
                self.stripe.v1.setup_intents.cancel(setup_id)
                raise stripe.CardError("authentication failed", None, "authentication_failed")
            intent = self.stripe.v1.setup_intents.confirm(setup_id)
        assert intent.status == "succeeded"
        return setup_id

    def authenticate_payment(self, client_secret: str, success: bool = True) -> None:
        """confirmCardPayment: the modal's "Complete" or "Fail authentication"."""
        intent = client_secret.split("_secret_")[0]
        response = requests.post(
            f"{self.localstripe}/v1/payment_intents/{intent}/_authenticate?success={str(success).lower()}",
            json={"key": PUBLISHABLE_KEY, "client_secret": client_secret},
            timeout=5,
        )
        assert response.status_code == 200, response.text

    def pledge(self, currency: str = "EUR", amount: Any = 500, number: str = GOOD) -> Any:
        """start → card → subscribe; the subscribe response."""
        started = self.start(currency, amount)
        assert started.status_code == 200, started.get_json()
        setup_id = self.confirm_card(started.get_json()["client_secret"], number)
        return self.post("/pledge/subscribe", {"setup_intent": setup_id})


@pytest.fixture
def reader(app: Flask, db: Session, localstripe: str) -> Reader:
    return Reader(app, make_user(db, display_name="Olena"), localstripe)


def pledges_of(db: Session, user: User) -> list[Pledge]:
    db.rollback()
    return list(db.scalars(select(Pledge).where(Pledge.user_id == user.id).order_by(Pledge.id)))


def stripe_customers(localstripe: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{localstripe}/v1/customers?limit=100", auth=(SECRET_KEY, ""), timeout=5
    )
    return response.json()["data"]


def active_pledge(reader: Reader, db: Session, amount: int = 500) -> Pledge:
    response = reader.pledge(amount=amount)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "active"
    (pledge,) = [p for p in pledges_of(db, reader.user) if p.status == "active"]
    return pledge


# -- becoming a patron ---------------------------------------------------------------------------


def test_start_confirm_subscribe_makes_an_active_pledge_with_a_payment(
    reader: Reader, db: Session, localstripe: str
) -> None:
    response = reader.pledge(amount=500)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"ok": True, "status": "active", "redirect": "/pledge"}

    (pledge,) = pledges_of(db, reader.user)
    assert (pledge.status, pledge.amount, pledge.currency) == ("active", 500, "EUR")
    assert pledge.plan_id == "patron-eur-500"
    assert (pledge.card_brand, pledge.card_last4) == ("visa", "4242")
    assert pledge.current_period_end is not None and pledge.started_at is not None
    (payment,) = db.scalars(select(Payment).where(Payment.pledge_id == pledge.id))
    assert (payment.status, payment.amount, payment.currency) == ("paid", 500, "EUR")
    customer = db.scalar(select(BillingCustomer).where(BillingCustomer.user_id == reader.user.id))
    assert customer is not None and customer.stripe_customer_id == pledge.stripe_customer_id
    assert [c["id"] for c in stripe_customers(localstripe)] == [customer.stripe_customer_id]
    kinds = db.scalars(
        select(OutboundEmail.kind).where(OutboundEmail.to_address == reader.user.email)
    )
    assert "pledge_thanks" in list(kinds)

    page = reader.client.get("/pledge").get_data(as_text=True)
    assert "Thank you: you are now a patron." in page
    assert "€5 a month" in page and "Visa ending in 4242" in page
    assert f"/pledge/receipts/{payment.id}" in page
    # a second click after it worked subscribes nothing more
    again = reader.post("/pledge/subscribe", {"setup_intent": "seti_whatever"})
    assert again.get_json()["status"] == "active"
    assert len(pledges_of(db, reader.user)) == 1
    assert reader.start().status_code == 409  # one open pledge per reader


def test_a_declined_or_expired_card_shows_why_and_a_second_try_works(
    reader: Reader, db: Session
) -> None:
    started = reader.start()
    secret = started.get_json()["client_secret"]
    for number in (DECLINED, EXPIRED):
        with pytest.raises(stripe.CardError) as declined:
            reader.confirm_card(secret, number)
        assert declined.value.user_message == "Your card was declined."
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.status == "pending" and pledge.stripe_subscription_id is None

    response = reader.pledge(number=GOOD)
    assert response.get_json()["status"] == "active"
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.status == "active"


def test_a_card_declined_on_the_first_charge_leaves_nothing_that_blocks_a_retry(
    reader: Reader, db: Session
) -> None:
    response = reader.pledge(number=DECLINED_ON_CHARGE)
    assert response.status_code == 402
    assert response.get_json() == {
        "ok": False,
        "message": "Your card was declined, so nothing was charged. Try another card.",
    }
    # kept, to be finished with another card (tests/pledges/test_failed_start.py) ...
    (failed,) = pledges_of(db, reader.user)
    assert failed.status == "incomplete"
    assert db.scalar(select(Payment.status).where(Payment.pledge_id == failed.id)) != "paid"

    # ... or, as here, the card form's next try starts over: that one is canceled at Stripe
    response = reader.pledge(amount=1000, number=GOOD)
    assert response.get_json()["status"] == "active"
    first, second = pledges_of(db, reader.user)
    assert first.id == failed.id and (first.status, second.status) == ("abandoned", "active")
    assert first.ended_at is not None and second.amount == 1000
    old_sub = reader.stripe.v1.subscriptions.retrieve(first.stripe_subscription_id)
    assert old_sub.status in ("canceled", "incomplete_expired")


def test_3d_secure_requires_action_then_the_payment_is_confirmed(
    reader: Reader, db: Session
) -> None:
    response = reader.pledge(number=THREE_D_SECURE)
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "requires_action"
    assert body["client_secret"].startswith("pi_")
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.status == "incomplete"

    reader.authenticate_payment(body["client_secret"], success=True)
    refreshed = reader.post("/pledge/refresh")
    assert refreshed.get_json() == {"ok": True, "status": "active", "redirect": "/pledge"}
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.status == "active"
    assert db.scalar(select(Payment.status).where(Payment.pledge_id == pledge.id)) == "paid"


def test_failed_3d_secure_says_so_and_a_second_try_works(reader: Reader, db: Session) -> None:
    started = reader.start()
    with pytest.raises(stripe.CardError):  # "Fail authentication" when the card is set up
        reader.confirm_card(started.get_json()["client_secret"], THREE_D_SECURE, authenticate=False)

    response = reader.pledge(number=THREE_D_SECURE)  # authenticated now, but not the payment
    reader.authenticate_payment(response.get_json()["client_secret"], success=False)
    refreshed = reader.post("/pledge/refresh")
    assert refreshed.status_code == 402
    assert "not authenticated" in refreshed.get_json()["message"]
    (failed,) = pledges_of(db, reader.user)
    assert not failed.is_open

    assert reader.pledge(number=GOOD).get_json()["status"] == "active"
    assert [p.status for p in pledges_of(db, reader.user)][-1] == "active"


# -- the server decides the amount (threat 10) ---------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"currency": "EUR", "amount": 5},  # below the minimum (1.00)
        {"currency": "EUR", "amount": 100_001},  # above the maximum (1,000.00)
        {"currency": "EUR", "amount": -500},
        {"currency": "EUR", "amount": "5.00"},
        {"currency": "JPY", "amount": 500},
        {"currency": "EUR", "amount": "other", "other_amount": "0.50"},
        {"currency": "EUR", "amount": 500, "plan": "patron-eur-1"},
        {"currency": "EUR", "amount": 500, "plan": "price_1AbCdEfGh"},
        {"currency": "EUR", "amount": 500, "attempt": "x" * 200},
        {"currency": "EUR", "amount": True},
        {"currency": ["EUR"], "amount": {"value": 500}},
    ],
)
def test_threat_10_a_tampered_amount_or_plan_is_refused_and_creates_nothing(
    reader: Reader, db: Session, localstripe: str, body: dict[str, Any]
) -> None:
    body = {"attempt": "try", **body}
    response = reader.post("/pledge/start", body)
    assert response.status_code == 400
    assert response.get_json()["ok"] is False and response.get_json()["message"]
    assert pledges_of(db, reader.user) == []
    assert db.scalar(select(func.count()).select_from(BillingCustomer)) == 0
    assert stripe_customers(localstripe) == []


def test_the_free_amount_is_taken_in_major_units(reader: Reader, db: Session) -> None:
    started = reader.start("GBP", "other", other_amount="7,50")
    assert started.status_code == 200, started.get_json()
    assert (started.get_json()["amount"], started.get_json()["currency"]) == (750, "GBP")
    (pledge,) = pledges_of(db, reader.user)
    assert (pledge.amount, pledge.currency, pledge.plan_id) == (750, "GBP", "patron-gbp-750")


def test_json_steps_need_the_csrf_header(reader: Reader) -> None:
    response = reader.client.post(
        "/pledge/start", json={"currency": "EUR", "amount": 500, "attempt": "a"},
        headers={"Accept": "application/json"},
    )  # fmt: skip
    assert response.status_code == 400
    assert "expired" in response.get_json()["message"]


# -- a double click, two tabs, a retry (threat 12) -----------------------------------------------


def test_threat_11_another_readers_or_a_made_up_setup_intent_entitles_nobody(
    app: Flask, db: Session, localstripe: str
) -> None:
    """The card step's result is checked on the server: a SetupIntent must be the one this
    reader's own pledge opened, whatever id the browser sends."""
    victim = Reader(app, make_user(db, email="victim@example.org"), localstripe)
    thief = Reader(app, make_user(db, email="thief@example.org"), localstripe)
    victims_setup = victim.confirm_card(victim.start().get_json()["client_secret"])
    assert thief.start().status_code == 200  # the thief has a pending pledge of their own
    for setup_id in (victims_setup, "seti_made_up", "seti_" + "x" * 300):
        answer = thief.post("/pledge/subscribe", {"setup_intent": setup_id})
        assert 400 <= answer.status_code < 500, (setup_id, answer.get_json())
    assert [p.status for p in pledges_of(db, thief.user)] == ["pending"]
    assert db.scalar(select(func.count()).select_from(Payment)) == 0
    # the victim's own card step still completes, once
    done = victim.post("/pledge/subscribe", {"setup_intent": victims_setup})
    assert done.get_json()["status"] == "active"
    assert [p.status for p in pledges_of(db, victim.user)] == ["active"]


def test_threat_12_ten_concurrent_starts_make_one_customer_and_one_pledge(
    app: Flask, db: Session, localstripe: str
) -> None:
    user = make_user(db)
    readers = [Reader(app, user, localstripe) for _ in range(10)]
    barrier = threading.Barrier(len(readers))
    answers: list[Any] = [None] * len(readers)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = readers[index].start()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(readers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(a.status_code for a in answers)
    # 202: another tab is creating the customer right now, the page asks again (no waiting)
    assert set(statuses) <= {200, 202, 409}, [a.get_json() for a in answers]
    assert 200 in statuses
    for answer in answers:
        if answer.status_code == 202:
            assert answer.get_json() == {
                "ok": True,
                "status": "processing",
                "message": "Your pledge is being set up. One moment…",
            }
    assert len(stripe_customers(localstripe)) == 1
    assert db.scalar(select(func.count()).select_from(BillingCustomer)) == 1
    (pledge,) = pledges_of(db, user)
    assert pledge.status == "pending"
    # and the pledge completes as usual from any of the tabs that got a SetupIntent
    winner = next(r for r, a in zip(readers, answers, strict=True) if a.status_code == 200)
    answer = answers[readers.index(winner)]
    setup_id = winner.confirm_card(answer.get_json()["client_secret"])
    assert (
        winner.post("/pledge/subscribe", {"setup_intent": setup_id}).get_json()["status"]
        == "active"
    )


def test_a_second_window_changing_the_amount_is_caught_before_charging(
    app: Flask, reader: Reader, db: Session, localstripe: str
) -> None:
    first = reader.start("EUR", 500).get_json()
    other_window = Reader(app, reader.user, localstripe)
    assert other_window.start("EUR", 2500).status_code == 200
    setup_id = reader.confirm_card(first["client_secret"])
    body = {"setup_intent": setup_id, "currency": "EUR", "amount": 500}
    response = reader.post("/pledge/subscribe", body)
    assert response.status_code == 409
    assert "changed in another window" in response.get_json()["message"]
    assert reader.stripe.v1.subscriptions.list(params={"status": "all"}).data == []


def test_concurrent_subscribes_make_one_subscription(
    app: Flask, db: Session, localstripe: str
) -> None:
    user = make_user(db)
    first = Reader(app, user, localstripe)
    setup_id = first.confirm_card(first.start().get_json()["client_secret"])
    tabs = [first] + [Reader(app, user, localstripe) for _ in range(4)]
    barrier = threading.Barrier(len(tabs))
    answers: list[Any] = [None] * len(tabs)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = tabs[index].post("/pledge/subscribe", {"setup_intent": setup_id})

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(tabs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # one tab creates the subscription; the others are told at once that it is in progress
    # (202, nobody sleeps), and their pages then ask /pledge/refresh, which gives the result
    assert all(a.status_code in (200, 202) for a in answers), [a.get_json() for a in answers]
    assert [a.get_json()["status"] for a in answers].count("active") >= 1
    for tab, answer in zip(tabs, answers, strict=True):
        if answer.status_code == 202:
            assert answer.get_json() == {"ok": True, "status": "processing"}
            assert tab.post("/pledge/refresh").get_json()["status"] == "active"
    subs = first.stripe.v1.subscriptions.list(params={"status": "all"}).data
    assert len(subs) == 1
    (pledge,) = pledges_of(db, user)
    assert pledge.status == "active" and pledge.stripe_subscription_id == subs[0].id
    db.rollback()
    assert db.scalar(select(func.count()).select_from(StripeCallLease)) == 0  # all given back


# -- managing the pledge ------------------------------------------------------------------------


def test_change_the_amount(reader: Reader, db: Session) -> None:
    pledge = active_pledge(reader, db)
    response = reader.form("/pledge/amount", {"amount": "1000"})
    assert response.status_code == 303
    page = reader.client.get("/pledge").get_data(as_text=True)
    assert "Your pledge is now €10 a month, from today." in page
    assert "added to your next payment" in page
    (pledge,) = pledges_of(db, reader.user)
    assert (pledge.amount, pledge.plan_id, pledge.status) == (1000, "patron-eur-1000", "active")
    sub = reader.stripe.v1.subscriptions.retrieve(pledge.stripe_subscription_id)
    assert sub["items"].data[0].plan.id == "patron-eur-1000"
    history = db.execute(
        select(PledgeStatusChange.from_status, PledgeStatusChange.to_status,
               PledgeStatusChange.amount)
        .where(PledgeStatusChange.pledge_id == pledge.id).order_by(PledgeStatusChange.id)
    ).all()  # fmt: skip
    assert history[-1] == ("active", "active", 1000)  # the amount change, for the reports
    assert [h.amount for h in history].count(1000) == 1

    for data in ({"amount": "5"}, {"amount": "other", "other_amount": "5000.01"},
                 {"amount": "1000"}, {"amount": "other", "other_amount": "lots"}):  # fmt: skip
        refused = reader.form("/pledge/amount", data)
        assert refused.status_code == 400, data
        assert 'role="alert"' in refused.get_data(as_text=True)
    assert pledges_of(db, reader.user)[0].amount == 1000


def test_cancel_with_a_reason_mails_a_confirmation_and_resume_keeps_it(
    reader: Reader, db: Session
) -> None:
    pledge = active_pledge(reader, db)
    response = reader.form("/pledge/cancel", {"reason": "  Money is  tight this year. "})
    assert response.status_code == 303
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.cancel_at_period_end is True and pledge.status == "active"
    assert pledge.cancel_reason == "Money is tight this year."
    message = db.scalars(
        select(OutboundEmail).where(
            OutboundEmail.to_address == reader.user.email, OutboundEmail.kind == "pledge_canceled"
        )
    ).one()
    assert "€5" in message.text_body and "/pledge" in message.text_body
    page = reader.client.get("/pledge").get_data(as_text=True)
    assert "Your pledge will end on" in page and "Keep my pledge" in page
    assert reader.form("/pledge/cancel").status_code == 409  # already ending

    assert reader.form("/pledge/resume").status_code == 303
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.cancel_at_period_end is False and pledge.cancel_reason is None
    sub = reader.stripe.v1.subscriptions.retrieve(pledge.stripe_subscription_id)
    assert sub.cancel_at_period_end is False
    assert "Your pledge continues" in reader.client.get("/pledge").get_data(as_text=True)
    assert reader.form("/pledge/resume").status_code == 409


def test_pledge_again_after_the_pledge_ended(app: Flask, reader: Reader, db: Session) -> None:
    pledge = active_pledge(reader, db)
    with app.app_context():  # the period ends: Stripe cancels, and the app hears of it
        sub = gateway(app).cancel_now(pledge.stripe_subscription_id or "")
        assert sub is not None
        records.apply_subscription(db, sub, now=clock.now(), source="webhook")
        db.commit()
    page = reader.client.get("/pledge").get_data(as_text=True)
    assert "This pledge has ended" in page and "Pledge again" in page
    assert reader.form("/pledge/cancel").status_code == 409

    assert reader.pledge(amount=300).get_json()["status"] == "active"
    old, new = pledges_of(db, reader.user)
    assert (old.status, new.status, new.amount) == ("canceled", "active", 300)
    assert "€3 a month" in reader.client.get("/pledge").get_data(as_text=True)


def test_update_the_card(reader: Reader, db: Session) -> None:
    active_pledge(reader, db)
    started = reader.post("/pledge/card", {"attempt": "card1"})
    assert started.status_code == 200
    setup_id = reader.confirm_card(started.get_json()["client_secret"], "5555555555554444")
    done = reader.post("/pledge/card/confirm", {"setup_intent": setup_id})
    assert done.get_json() == {"ok": True, "redirect": "/pledge"}
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.card_last4 == "4444"  # (localstripe calls every card a Visa)
    assert "used from your next payment" in reader.client.get("/pledge").get_data(as_text=True)
    assert reader.post("/pledge/card/confirm", {"setup_intent": "nope"}).status_code == 400


def test_receipts_are_the_owners_only(app: Flask, reader: Reader, db: Session) -> None:
    pledge = active_pledge(reader, db)
    payment_id = db.scalar(select(Payment.id).where(Payment.pledge_id == pledge.id))
    mine = reader.client.get(f"/pledge/receipts/{payment_id}")
    assert mine.status_code == 200
    assert "€5" in mine.get_data(as_text=True)
    assert "no-store" in mine.headers["Cache-Control"]

    other = app.test_client()
    login(other, make_user(db).email, PASSWORD)
    assert other.get(f"/pledge/receipts/{payment_id}").status_code == 404
    assert other.get(f"/pledge/receipts/{payment_id + 1000}").status_code == 404
    assert app.test_client().get(f"/pledge/receipts/{payment_id}").status_code == 302


# -- the support page ---------------------------------------------------------------------------


def test_support_page_offers_the_options(client: FlaskClient) -> None:
    page = client.get("/support").get_data(as_text=True)
    assert "a cup of coffee" in page
    for code in ("EUR", "USD", "GBP", "UAH"):
        assert f'value="{code}"' in page
    assert 'value="300" checked' in page  # the cup of coffee, preselected
    assert "Between €1 and €1,000 a month." in page
    assert "js.stripe.com" not in page  # anonymous readers get no card form, no Stripe.js


def test_an_anonymous_choice_survives_signing_in(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    response = client.get("/support?currency=USD&amount=1000&continue=1")
    assert response.status_code == 200  # says why an account is needed, and offers both ways
    assert 'href="/login?next=/support?currency%3DUSD%26amount%3D1000"' in response.get_data(
        as_text=True
    )
    user = make_user(db)
    back = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client),
              "next": "/support?currency=USD&amount=1000"},
    )  # fmt: skip
    assert back.headers["Location"] == "/support?currency=USD&amount=1000"
    page = client.get(back.headers["Location"])
    html = page.get_data(as_text=True)
    assert 'value="USD" checked' in html and 'value="1000" checked' in html
    assert 'id="card-element"' in html
    assert "/js.stripe.com/v3/" in html
    csp = page.headers["Content-Security-Policy"]
    origin = app.config["SETTINGS"].stripe_api_base
    assert f"script-src 'self' {origin}" in csp and f"connect-src 'self' {origin}" in csp
    assert "unsafe-inline" not in csp
    # the choice is also kept for a reader who signs up first (no `next` through the mail)
    assert 'value="1000" checked' in client.get("/support").get_data(as_text=True)
    assert "js.stripe.com" not in client.get("/").headers["Content-Security-Policy"]


def test_a_free_amount_out_of_bounds_is_a_clear_400(client: FlaskClient) -> None:
    response = client.get("/support?currency=EUR&amount=other&other_amount=0.10")
    assert response.status_code == 400
    assert "A monthly pledge in EUR is between €1 and €1,000." in response.get_data(as_text=True)
    assert client.get("/support?currency=XXX&amount=100").status_code == 400
    # without JavaScript, "show the amounts in this currency" keeps no amount of the old one
    page = client.get("/support?currency=UAH&amount=300&show=1")
    assert page.status_code == 200
    assert 'value="UAH" checked' in page.get_data(as_text=True)
    assert 'value="6000" checked' in page.get_data(as_text=True)  # ₴60, a cup of coffee


def _other_app(database_url: str, tmp_path: Path, **stripe: Any) -> Flask:
    return create_app(make_settings(database_url, tmp_path / "other", **stripe))


def test_without_stripe_pledges_are_not_open_yet(
    database_url: str, tmp_path: Path, db: Session
) -> None:
    other = _other_app(database_url, tmp_path)
    try:
        client = other.test_client()
        page = client.get("/support").get_data(as_text=True)
        assert "Monthly pledges are not open yet." in page
        login(client, make_user(db).email, PASSWORD)
        token = csrf_token(client)
        response = client.post("/pledge/start", json={}, headers={"X-CSRFToken": token})
        assert response.status_code == 404
        assert client.get("/pledge").status_code == 200
    finally:
        other.extensions["db.engine"].dispose()


# -- staff's offline simulations ----------------------------------------------------------------


def test_simulated_renewals_and_a_failed_one_show_on_the_pledge_page(
    app: Flask, reader: Reader, db: Session
) -> None:
    pledge = active_pledge(reader, db)
    staff = app.test_client()
    login(staff, make_staff(db).email, PASSWORD)
    token = csrf_token(staff)
    assert "Simulate next month" in staff.get("/staff/simulate").get_data(as_text=True)
    assert staff.post("/staff/simulate/renewal", data={"csrf_token": token}).status_code == 303
    db.rollback()
    paid = db.scalars(select(Payment.status).where(Payment.pledge_id == pledge.id)).all()
    assert list(paid) == ["paid", "paid"]

    url = f"/staff/simulate/failed-renewal/{pledge.id}"
    assert staff.post(url, data={"csrf_token": token}).status_code == 303
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.status == "past_due"
    page = reader.client.get("/pledge").get_data(as_text=True)
    assert "Your last payment did not go through" in page
    assert "update your card below</a>." in page
    assert "the next attempt to collect it will use the new card" in page
    assert (
        staff.post("/staff/simulate/failed-renewal/999999", data={"csrf_token": token}).status_code
        == 404
    )
    assert reader.client.get("/staff/simulate").status_code == 403

    # a new card: the missed payment is tried again with it at once
    started = reader.post("/pledge/card", {"attempt": "card2"})
    setup_id = reader.confirm_card(started.get_json()["client_secret"], GOOD)
    assert reader.post("/pledge/card/confirm", {"setup_intent": setup_id}).status_code == 200
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.status == "active"
    statuses = db.scalars(select(Payment.status).where(Payment.pledge_id == pledge.id)).all()
    assert sorted(statuses) == ["paid", "paid", "paid"]
    page = reader.client.get("/pledge").get_data(as_text=True)
    assert "the missed payment went through" in page
    assert "Your last payment did not go through" not in page


def test_a_past_due_patron_is_told_until_when_their_rights_last(
    app: Flask, reader: Reader, db: Session
) -> None:
    from flask_babel import format_date as babel_date

    from patrons.pledges import entitlement, simulations

    pledge = active_pledge(reader, db)
    assert "You keep your rights as a patron until" not in reader.client.get("/pledge").get_data(
        as_text=True
    )
    with app.app_context():
        simulations.simulate_failed_renewal(db, gateway(app), pledge.id)
        db.commit()
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.status == "past_due"
    grace = app.config["SETTINGS"].pledge_grace_days
    until = entitlement.rights_until(db, pledge, grace)
    assert until is not None
    with app.test_request_context():
        expected = babel_date(until, format="long")  # e.g. "March 9, 2027"
    page = reader.client.get("/pledge").get_data(as_text=True)
    assert f"You keep your rights as a patron until {expected}." in page
    assert '<a href="#card-heading">update your card below</a>' in page
    assert 'id="card-heading"' in page


def test_simulations_do_not_exist_with_real_keys(
    database_url: str, tmp_path: Path, db: Session
) -> None:
    other = _other_app(database_url, tmp_path, stripe_secret_key="sk_test_real",
                       stripe_publishable_key="pk_test_real")  # fmt: skip
    try:
        staff = other.test_client()
        login(staff, make_staff(db).email, PASSWORD)
        token = csrf_token(staff)
        assert staff.get("/staff/simulate").status_code == 404
        assert staff.post("/staff/simulate/renewal", data={"csrf_token": token}).status_code == 404
        url = "/staff/simulate/failed-renewal/1"
        assert staff.post(url, data={"csrf_token": token}).status_code == 404
        # and the card form would load the real Stripe.js, allowed by the CSP
        reader = other.test_client()
        login(reader, make_user(db).email, PASSWORD)
        page = reader.get("/support")
        assert '<script src="https://js.stripe.com/v3/"></script>' in page.get_data(as_text=True)
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self' https://js.stripe.com" in csp
        assert "connect-src 'self' https://api.stripe.com" in csp
        assert "frame-src https://js.stripe.com https://hooks.stripe.com" in csp
    finally:
        empty_tables(other)
        other.extensions["db.engine"].dispose()


# -- bad input is a 4xx, never a 5xx (with Stripe configured: tests/test_fuzz_forms.py runs
#    without it, where these routes are 404s) -------------------------------------------------

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["EUR", "usd", "other", "500", "7.50", "seti_x", "patron-eur-500", "lease:"]),
)
KEYS = st.sampled_from(
    ["currency", "amount", "other_amount", "plan", "attempt", "setup_intent", "reason"]
)


@pytest.fixture
def no_rate_limits() -> Any:
    saved = extensions.limiter.enabled
    extensions.limiter.enabled = False
    yield
    extensions.limiter.enabled = saved


@pytest.mark.parametrize(
    "url",
    ["/pledge/start", "/pledge/subscribe", "/pledge/refresh", "/pledge/card",
     "/pledge/card/confirm", "/pledge/amount", "/pledge/cancel", "/pledge/resume"],
)  # fmt: skip
def test_random_input_never_makes_a_server_error(
    reader: Reader, db: Session, no_rate_limits: None, url: str
) -> None:
    active_pledge(reader, db)

    @hypothesis_settings(max_examples=60, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.dictionaries(KEYS, ANY_VALUE, max_size=5), st.booleans())
    def run(data: dict[str, Any], as_json: bool) -> None:
        if as_json:
            response = reader.post(url, data)
        else:
            form = {k: str(v) for k, v in data.items() if v is not None and "\x00" not in str(v)}
            response = reader.form(url, form)
        assert response.status_code < 500, (data, response.get_data(as_text=True)[:300])
        assert "Traceback" not in response.get_data(as_text=True)

    run()


def test_random_support_page_arguments_never_make_a_server_error(client: FlaskClient) -> None:
    names = st.sampled_from(["currency", "amount", "other_amount", "continue", "show", "src"])

    @hypothesis_settings(max_examples=200, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.dictionaries(names, st.text(max_size=20), max_size=5))
    def run(args: dict[str, str]) -> None:
        assert client.get("/support", query_string=args).status_code < 500, args

    run()


def test_the_account_page_sums_up_the_pledge(
    app: Flask, client: FlaskClient, reader: Reader, db: Session
) -> None:
    chosen = client.get("/support?currency=GBP&amount=500&continue=1")  # before signing up
    login(client, make_user(db).email, PASSWORD)
    page = client.get("/account").get_data(as_text=True)
    assert "You chose to pledge £5 a month." in page
    assert "/support?currency=GBP&amp;amount=500" in page
    assert chosen.status_code == 200

    assert "You do not pledge yet." in reader.client.get("/account").get_data(as_text=True)
    active_pledge(reader, db)
    page = reader.client.get("/account").get_data(as_text=True)
    assert "You pledge €5 a month." in page and 'href="/pledge"' in page


def test_the_staff_navigation_links_the_simulations_only_offline(
    app: Flask, db: Session, database_url: str, tmp_path: Path
) -> None:
    from patrons import create_app

    staff = make_staff(db)
    client = app.test_client()
    login(client, staff.email, PASSWORD)
    assert 'href="/staff/simulate"' in client.get("/staff/").get_data(as_text=True)
    plain = create_app(make_settings(database_url, tmp_path / "plain"))  # no Stripe keys
    try:
        other = plain.test_client()
        login(other, staff.email, PASSWORD)
        assert "/staff/simulate" not in other.get("/staff/").get_data(as_text=True)
    finally:
        plain.extensions["db.engine"].dispose()
