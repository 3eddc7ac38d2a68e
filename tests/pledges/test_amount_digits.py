"""Amounts only in ASCII digits (docs/security.md, amounts): Python's int() and the regex
`\\d` read "٥" (Arabic-Indic), "５" (fullwidth), "५" (Devanagari) and their kin as digits, so
the free amount on /support, the card step and the amount change took them. Each is now
refused with a message that says how to type it, as a 400 and never a 500; ASCII digits with
"." or "," before the cents still work. The staff and voting forms' whole numbers likewise.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from patrons.core.config import Settings
from patrons.pledges.choice import parse_choice
from patrons.pledges.errors import PledgeError
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_staff
from tests.pledges.test_pledge_flow import Reader, active_pledge, pledges_of
from tests.pledges.test_pledge_flow import reader as reader  # noqa: PLC0414  (the fixture)

DIGITS_MESSAGE = "Type the amount with the digits 0 to 9, like 5 or 7.50."
NOT_ASCII = {
    "arabic-indic 5": "\u0665",
    "fullwidth 5": "\uff15",
    "devanagari 7.50": "\u096d.\u096b\u0966",
    "arabic-indic with the arabic decimal separator": "\u0667\u066b\u0665\u0660",
    "fullwidth 7 with an ASCII point": "\uff17.50",
    "ASCII 1 and an arabic-indic 5": "1\u0665",
    "extended arabic-indic (persian) 5": "\u06f5",
    "bengali 5": "\u09eb",
    "mathematical bold 5": "\U0001d7d3",
    "superscript 5": "\u2075",
    "fullwidth point": "7\uff0e50",
}
CASES = list(NOT_ASCII.values())
IDS = list(NOT_ASCII)


@pytest.mark.parametrize("typed", CASES, ids=IDS)
def test_parse_choice_refuses_other_digits_with_a_400(app: Flask, typed: str) -> None:
    settings: Settings = app.config["SETTINGS"]
    with app.test_request_context(), pytest.raises(PledgeError) as refused:
        parse_choice(settings, "EUR", "other", typed)
    assert refused.value.status == 400
    assert refused.value.message in (DIGITS_MESSAGE, "Enter an amount, like 5 or 7.50.")
    if any(ch.isdigit() and not ch.isascii() for ch in typed):
        assert refused.value.message == DIGITS_MESSAGE


@pytest.mark.parametrize(
    ("typed", "minor"), [("7.50", 750), ("7,50", 750), (" 7 ", 700), ("12", 1200), ("7.5", 750)]
)
def test_ascii_amounts_with_a_point_or_comma_still_work(app: Flask, typed: str, minor: int) -> None:
    with app.test_request_context():
        choice = parse_choice(app.config["SETTINGS"], "EUR", "other", typed)
    assert (choice.currency, choice.amount) == ("EUR", minor)


@pytest.mark.parametrize("typed", CASES, ids=IDS)
def test_the_support_page_says_how_to_type_it(client: FlaskClient, typed: str) -> None:
    for extra in ({}, {"continue": "1"}):  # and Continue does not go on with it
        response = client.get(
            "/support",
            query_string={"currency": "EUR", "amount": "other", "other_amount": typed, **extra},
        )
        assert response.status_code == 400, extra
        html = response.get_data(as_text=True)
        assert 'role="alert"' in html and "Location" not in response.headers
        if any(ch.isdigit() and not ch.isascii() for ch in typed):
            assert DIGITS_MESSAGE in html


def test_a_suggested_amount_in_other_digits_is_refused(client: FlaskClient) -> None:
    response = client.get(
        "/support", query_string={"currency": "EUR", "amount": "\u0665\u0660\u0660"}
    )
    assert response.status_code == 400
    assert "Choose one of the amounts, or enter your own." in response.get_data(as_text=True)


@pytest.mark.parametrize("typed", ["\u0665", "\uff15\uff10", "1\u0665"])
def test_the_card_step_refuses_other_digits(reader: Reader, db: Session, typed: str) -> None:
    response = reader.start("EUR", "other", other_amount=typed)
    assert response.status_code == 400
    body: dict[str, Any] = response.get_json()
    assert body["ok"] is False and DIGITS_MESSAGE in str(body)
    assert pledges_of(db, reader.user) == []


def test_the_amount_change_refuses_other_digits(reader: Reader, db: Session) -> None:
    pledge = active_pledge(reader, db)
    for typed in ("\u0661\u0660", "\uff11\uff10", "\u0967\u0966.\u0966\u0966"):
        refused = reader.form("/pledge/amount", {"amount": "other", "other_amount": typed})
        assert refused.status_code == 400, typed
        assert DIGITS_MESSAGE in refused.get_data(as_text=True)
    assert pledges_of(db, reader.user)[0].amount == pledge.amount


# --- whole numbers on the staff and voting forms (core/formfields.SmallIntegerField) --------


def _staff(client: FlaskClient, db: Session) -> FlaskClient:
    login(client, make_staff(db).email, PASSWORD)
    return client


ROUND = {
    "title": "What next?",
    "opens_at": "2026-01-01T10:00",
    "closes_at": "2099-01-01T10:00",
}


@pytest.mark.parametrize("votes", ["\u0663", "\uff13", "3_0", "\u0969"])
def test_a_round_s_votes_per_patron_take_ascii_digits_only(
    client: FlaskClient, db: Session, votes: str
) -> None:
    staff = _staff(client, db)
    data = {**ROUND, "votes_per_patron": votes, "csrf_token": csrf_token(staff)}
    response = staff.post("/staff/voting/rounds/new", data=data)
    assert response.status_code == 400
    assert "Enter a whole number with the digits 0 to 9." in response.get_data(as_text=True)
    accepted = staff.post("/staff/voting/rounds/new", data={**data, "votes_per_patron": "3"})
    assert accepted.status_code == 303


def test_the_banner_days_take_ascii_digits_only(client: FlaskClient, db: Session) -> None:
    staff = _staff(client, db)
    page = staff.get("/staff/settings").get_data(as_text=True)
    assert "banner_dismiss_days" in page
    response = staff.post(
        "/staff/settings",
        data={"banner_dismiss_days": "\u0667", "csrf_token": csrf_token(staff)},
    )
    assert response.status_code == 400
    assert "Enter a whole number with the digits 0 to 9." in response.get_data(as_text=True)
