"""Confirm before charging: a pledge starts only for a confirmed address, and a reader who
chose an amount keeps it through every detour (sign-up and the code, sign-in, the code for
an unconfirmed address) to the card, against localstripe (tests/pledges/conftest.py)."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.models import BillingCustomer, OutboundEmail, Pledge, User
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_user

WHY = (
    "So we can send your receipts and let you manage or stop your pledge, you need an "
    "account — it takes a minute."
)
CHOICE = "/support?currency=USD&amount=1000"


def code_for(db: Session, email: str) -> str:
    db.rollback()
    message = db.scalars(
        select(OutboundEmail)
        .where(OutboundEmail.to_address == email, OutboundEmail.kind == "verify_email")
        .order_by(OutboundEmail.id.desc())
    ).first()
    assert message is not None
    match = re.search(r"^ {4}(\d{6})$", message.text_body, re.M)
    assert match, message.text_body
    return match.group(1)


def type_code(client: FlaskClient, code: str) -> Any:
    return client.post("/signup/sent", data={"code": code, "csrf_token": csrf_token(client)})


def shows_the_card_for(html: str, currency: str, amount: int) -> bool:
    chosen = f'value="{currency}" checked' in html and f'value="{amount}" checked' in html
    return chosen and 'id="card-element"' in html and 'data-card="start"' in html


def start(client: FlaskClient, currency: str = "USD", amount: int = 1000) -> Any:
    body = {"currency": currency, "amount": amount, "attempt": "try1"}
    headers = {"X-CSRFToken": csrf_token(client), "Accept": "application/json"}
    return client.post("/pledge/start", json=body, headers=headers)


# -- an unconfirmed address cannot start a pledge --------------------------------------------


def test_an_unconfirmed_reader_cannot_start_a_pledge(client: FlaskClient, db: Session) -> None:
    """Fails on the old code: the pledge started, and receipts went to an unchecked address."""
    reader = make_user(db, email_verified_at=None)
    login(client, reader.email, PASSWORD)
    response = start(client)
    assert response.status_code == 403
    assert "Confirm your email address" in response.get_json()["message"]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Pledge)) == 0
    assert db.scalar(select(func.count()).select_from(BillingCustomer)) == 0


def test_the_support_page_offers_an_unconfirmed_reader_a_code_not_a_card(
    client: FlaskClient, db: Session
) -> None:
    reader = make_user(db, email_verified_at=None)
    login(client, reader.email, PASSWORD)
    page = client.get(CHOICE)
    html = page.get_data(as_text=True)
    assert 'id="card-element"' not in html and "data-card=" not in html
    assert "js.stripe.com" not in html and "js.stripe.com" not in page.headers.get(
        "Content-Security-Policy", ""
    )
    assert reader.email in html and "six-digit code" in html
    assert 'formaction="/support/confirm"' in html and 'formmethod="post"' in html


def test_an_unconfirmed_reader_confirms_with_a_code_and_comes_back_to_the_same_choice(
    client: FlaskClient, db: Session
) -> None:
    reader = make_user(db, email_verified_at=None)
    login(client, reader.email, PASSWORD)
    response = client.post("/support/confirm", data={
        "currency": "USD", "amount": "other", "other_amount": "12.50",
        "csrf_token": csrf_token(client)})  # fmt: skip
    assert response.status_code == 303 and response.headers["Location"] == "/signup/sent"
    assert reader.email in client.get("/signup/sent").get_data(as_text=True)
    assert start(client).status_code == 403  # still unconfirmed
    back = type_code(client, code_for(db, reader.email))
    assert back.headers["Location"] == "/support?currency=USD&amount=1250"
    html = client.get(back.headers["Location"]).get_data(as_text=True)
    assert 'value="USD" checked' in html and 'value="12.50"' in html
    assert 'id="card-element"' in html
    assert start(client).status_code == 200  # now the card step opens


def test_the_mailed_link_also_brings_an_unconfirmed_reader_back_to_the_choice(
    client: FlaskClient, db: Session
) -> None:
    reader = make_user(db, email_verified_at=None)
    login(client, reader.email, PASSWORD)
    client.post("/support/confirm", data={"currency": "GBP", "amount": "500",
                                          "csrf_token": csrf_token(client)})  # fmt: skip
    db.rollback()
    body = db.scalars(
        select(OutboundEmail.text_body).where(OutboundEmail.to_address == reader.email)
    ).one()
    match = re.search(r"/verify\?token=([\w\-]+)", body)
    assert match, body
    response = client.post("/verify", data={"token": match.group(1),
                                            "csrf_token": csrf_token(client)})  # fmt: skip
    assert response.headers["Location"] == "/support?currency=GBP&amount=500"


def test_a_confirmed_reader_is_sent_straight_back(client: FlaskClient, db: Session) -> None:
    reader = make_user(db)
    login(client, reader.email, PASSWORD)
    response = client.post("/support/confirm", data={"currency": "EUR", "amount": "500",
                                                     "csrf_token": csrf_token(client)})  # fmt: skip
    assert response.headers["Location"] == "/support?currency=EUR&amount=500"
    db.rollback()
    assert db.scalar(select(func.count()).select_from(OutboundEmail)) == 0


def test_a_bad_choice_goes_back_to_the_page_that_explains_it(
    client: FlaskClient, db: Session
) -> None:
    reader = make_user(db, email_verified_at=None)
    login(client, reader.email, PASSWORD)
    response = client.post("/support/confirm", data={"currency": "EUR", "amount": "other",
                                                     "other_amount": "0.10",
                                                     "csrf_token": csrf_token(client)})  # fmt: skip
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert page.status_code == 400 and "between €1 and €1,000" in page.get_data(as_text=True)
    db.rollback()
    assert db.scalar(select(func.count()).select_from(OutboundEmail)) == 0  # no code mailed


def test_codes_mailed_from_the_support_page_are_limited(client: FlaskClient, db: Session) -> None:
    reader = make_user(db, email_verified_at=None)
    login(client, reader.email, PASSWORD)
    data = {"currency": "EUR", "amount": "500"}
    statuses = [
        client.post("/support/confirm", data={**data, "csrf_token": csrf_token(client)}).status_code
        for _ in range(6)
    ]
    assert statuses == [303] * 5 + [429]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(OutboundEmail)) == 5


# -- signed out: told why, and the choice survives every detour -------------------------------


def test_a_signed_out_continue_says_why_and_offers_both_ways(client: FlaskClient) -> None:
    """Fails on the old code: it went straight to the sign-in page, with no word of why."""
    response = client.get(CHOICE + "&continue=1")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert WHY in html and "You chose $10 a month." in html
    assert 'href="/signup?next=/support?currency%3DUSD%26amount%3D1000"' in html
    assert 'href="/login?next=/support?currency%3DUSD%26amount%3D1000"' in html
    assert "pledge_choice=USD:1000" in response.headers.get("Set-Cookie", "")


def test_the_choice_survives_sign_up_and_the_code(app: Flask, db: Session) -> None:
    """Fails on the old code: after confirming, the reader landed on /account."""
    client = app.test_client()
    page = client.get("/support?currency=GBP&amount=500&continue=1").get_data(as_text=True)
    signup_url = re.search(r'href="(/signup\?next=[^"]+)"', page)
    assert signup_url, page
    form = client.get(signup_url.group(1).replace("&amp;", "&"))
    assert "go straight on to your pledge" in form.get_data(as_text=True)
    signed_up = client.post(signup_url.group(1).replace("&amp;", "&"), data={
        "email": "new.patron@example.org", "password": "a long enough passphrase",
        "csrf_token": csrf_token(client)})  # fmt: skip
    assert signed_up.headers["Location"] == "/signup/sent"
    back = type_code(client, code_for(db, "new.patron@example.org"))
    assert back.headers["Location"] == "/support?currency=GBP&amount=500"
    assert shows_the_card_for(client.get(back.headers["Location"]).get_data(as_text=True),
                              "GBP", 500)  # fmt: skip
    assert start(client, "GBP", 500).status_code == 200
    db.rollback()
    user = db.scalars(select(User).where(User.email == "new.patron@example.org")).one()
    assert user.email_verified_at is not None


def test_the_choice_survives_signing_in(client: FlaskClient, db: Session) -> None:
    reader = make_user(db)
    page = client.get(CHOICE + "&continue=1").get_data(as_text=True)
    assert 'href="/login?next=/support?currency%3DUSD%26amount%3D1000"' in page
    signed_in = client.post("/login", data={
        "email": reader.email, "password": PASSWORD, "next": CHOICE,
        "csrf_token": csrf_token(client)})  # fmt: skip
    assert signed_in.headers["Location"] == CHOICE
    assert shows_the_card_for(client.get(CHOICE).get_data(as_text=True), "USD", 1000)
    # and without `next` (another detour), the choice cookie preselects it
    assert shows_the_card_for(client.get("/support").get_data(as_text=True), "USD", 1000)
