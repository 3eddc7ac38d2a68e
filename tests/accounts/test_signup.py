"""Sign-up that tells nobody whether an address has an account, and the six-digit code that
confirms the address on the page after it (patrons/accounts/signup.py, signup_views.py).

The same-work property is tested by counting (the password hasher runs once and one mail is
queued in each branch), never by timing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons import mail
from patrons.accounts import audit, email_tokens
from patrons.accounts import signup as signing_up
from patrons.models import AuditEvent, OutboundEmail, User
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_user

NEW = "new.reader@example.org"
TAKEN = "known@example.org"


def client_from(app: Flask, ip: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def signup(client: FlaskClient, email: str = NEW, next_url: str | None = None) -> Any:
    data = {"email": email, "password": "a long enough passphrase", "display_name": "New",
            "csrf_token": csrf_token(client)}  # fmt: skip
    url = "/signup" if next_url is None else f"/signup?next={next_url}"
    return client.post(url, data=data)


def mails(db: Session, to: str, kind: str | None = None) -> list[OutboundEmail]:
    db.rollback()
    query = select(OutboundEmail).where(OutboundEmail.to_address == to)
    if kind is not None:
        query = query.where(OutboundEmail.kind == kind)
    return list(db.scalars(query.order_by(OutboundEmail.id)))


def code_in(message: OutboundEmail) -> str:
    match = re.search(r"^ {4}(\d{6})$", message.text_body, re.M)
    assert match, message.text_body
    return match.group(1)


def link_in(message: OutboundEmail) -> str:
    match = re.search(r"http://patrons\.test/verify\?token=([\w\-]+)", message.text_body)
    assert match, message.text_body
    return match.group(1)


def type_code(client: FlaskClient, code: str) -> Any:
    return client.post("/signup/sent", data={"code": code, "csrf_token": csrf_token(client)})


def session_of(client: FlaskClient) -> dict[str, Any]:
    with client.session_transaction() as saved:
        return dict(saved)


def error_of(response: Any) -> str:
    match = re.search(r'role="alert">([^<]*)<', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:2000]
    return match.group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


# -- the same work, the same answer ----------------------------------------------------------


def test_both_branches_hash_the_password_and_queue_exactly_one_mail(
    app: Flask, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails on the old code: a taken address skipped the hash (8 ms against 180 ms)."""
    make_user(db, email=TAKEN)
    hashed: list[str] = []
    queued: list[str] = []
    real_hash, real_queue = signing_up.hash_password, mail.queue_message

    def counting_hash(password: str) -> str:
        hashed.append(password)
        return real_hash(password)

    def counting_queue(db: Session, to: str, template: str, *args: Any, **kw: Any) -> Any:
        queued.append(template)
        return real_queue(db, to, template, *args, **kw)

    monkeypatch.setattr(signing_up, "hash_password", counting_hash)
    monkeypatch.setattr(mail, "queue_message", counting_queue)
    answers = {}
    for email in (TAKEN, NEW):
        hashed.clear(), queued.clear()
        client = app.test_client()
        response = signup(client, email)
        answers[email] = (len(hashed), len(queued), response.status_code,
                          response.headers["Location"], sorted(session_of(client)))  # fmt: skip
    assert answers[TAKEN][:2] == answers[NEW][:2] == (1, 1)  # one hash, one mail: each branch
    assert answers[TAKEN] == answers[NEW]  # the same answer
    assert answers[NEW][2:4] == (303, "/signup/sent") and "confirm" in answers[NEW][4]
    assert [m.kind for m in mails(db, TAKEN)] == ["account_exists"]  # its owner hears of it
    assert [m.kind for m in mails(db, NEW)] == ["verify_email"]
    assert db.scalar(select(func.count()).select_from(User)) == 2


def test_the_code_page_and_the_session_look_the_same_for_a_taken_address(
    app: Flask, db: Session
) -> None:
    make_user(db, email=TAKEN)
    pages, sessions = {}, {}
    for email in (TAKEN, NEW):
        client = app.test_client()
        signup(client, email)
        pages[email] = client.get("/signup/sent").get_data(as_text=True).replace(email, "@")
        sessions[email] = session_of(client)["confirm"]
    strip = re.compile(r'name="csrf_token"[^>]*>')  # each client has its own token
    assert strip.sub("", pages[TAKEN]) == strip.sub("", pages[NEW])
    assert "six-digit code" in pages[NEW]
    taken, new = sessions[TAKEN], sessions[NEW]
    assert len(taken["who"]) == len(new["who"]) and taken["who"] != new["who"]
    assert {k: v for k, v in taken.items() if k not in ("who", "email")} == {
        k: v for k, v in new.items() if k not in ("who", "email")
    }
    user = db.scalars(select(User).where(User.email == NEW)).one()
    with app.app_context():  # only the server reads which account it is, or that it is none
        assert signing_up.unseal(new["who"]) == user.id
        assert signing_up.unseal(taken["who"]) == signing_up.NOBODY


def test_the_sealed_account_reads_back_only_with_the_key(app: Flask) -> None:
    with app.app_context():
        sealed = [signing_up.seal(42) for _ in range(3)]
        assert len(set(sealed)) == 3 and len({len(s) for s in sealed}) == 1
        assert [signing_up.unseal(s) for s in sealed] == [42, 42, 42]
        assert signing_up.unseal(signing_up.seal(signing_up.NOBODY)) == signing_up.NOBODY
        for junk in (None, 42, "", "not base64!", "A" * 80, sealed[0][:-4]):
            assert signing_up.unseal(junk) == signing_up.NOBODY
        app.config["SECRET_KEY"] = "another key, another reading"
        assert signing_up.unseal(sealed[0]) != 42


def test_no_code_works_for_a_taken_address_and_the_answers_match_a_real_one(
    app: Flask, db: Session
) -> None:
    owner = make_user(db, email=TAKEN, email_verified_at=None)
    with app.test_request_context():  # the owner's own live code, from their own sign-up
        own = email_tokens.issue(db, owner, email_tokens.VERIFY, with_code=True)
        db.commit()
    taken = client_from(app, "198.51.100.1")
    new = client_from(app, "198.51.100.2")
    signup(taken, TAKEN)
    signup(new, NEW)
    real = code_in(mails(db, NEW, "verify_email")[-1])
    assert own.code is not None
    answers: dict[str, list[tuple[int, str]]] = {"taken": [], "new": []}
    for _attempt in range(6):
        for name, client, code in (("taken", taken, own.code), ("new", new, wrong(real))):
            response = type_code(client, code)
            answers[name].append((response.status_code, error_of(response)))
    assert answers["taken"] == answers["new"]
    assert [status for status, _ in answers["new"]] == [400] * 6
    assert "last try" in answers["new"][4][1] and "expired or was used" in answers["new"][5][1]
    db.rollback()
    assert db.get(User, owner.id).email_verified_at is None  # type: ignore[union-attr]
    assert taken.get("/account").status_code == 302  # nobody signed in


# -- the code --------------------------------------------------------------------------------


def test_a_right_code_confirms_signs_in_and_goes_on(client: FlaskClient, db: Session) -> None:
    signup(client, NEW, next_url="/support?currency%3DUSD%26amount%3D1000")
    message = mails(db, NEW, "verify_email")[-1]
    assert "work once, for 24 hours" in message.text_body  # how long, in the mail
    assert code_in(message) in message.html_body and link_in(message) in message.html_body
    assert client.get("/account").status_code == 302  # not signed in before the code
    response = type_code(client, code_in(message))
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == "/support?currency=USD&amount=1000"
    db.rollback()
    user = db.scalars(select(User).where(User.email == NEW)).one()
    assert user.email_verified_at is not None
    kinds = db.scalars(select(AuditEvent.kind).where(AuditEvent.user_id == user.id)).all()
    assert audit.EMAIL_VERIFIED in kinds and audit.SIGN_IN in kinds
    assert "confirm" not in session_of(client)
    assert client.get("/account").status_code == 200
    again = client.get("/signup/sent").get_data(as_text=True)
    assert "six-digit code" not in again  # the page is done with this account


def test_the_link_in_the_same_mail_also_confirms_and_leads_on(
    client: FlaskClient, db: Session
) -> None:
    signup(client, NEW, next_url="/support?currency%3DGBP%26amount%3D500")
    token = link_in(mails(db, NEW, "verify_email")[-1])
    response = client.post("/verify", data={"token": token, "csrf_token": csrf_token(client)})
    assert response.headers["Location"] == "/support?currency=GBP&amount=500"
    db.rollback()
    assert db.scalars(select(User).where(User.email == NEW)).one().email_verified_at is not None


def test_five_wrong_codes_spend_it_and_a_new_code_replaces_it(
    client: FlaskClient, db: Session
) -> None:
    signup(client, NEW)
    first = code_in(mails(db, NEW, "verify_email")[-1])
    for _attempt in range(5):
        assert type_code(client, wrong(first)).status_code == 400
    spent = type_code(client, first)
    assert spent.status_code == 400 and "expired or was used" in error_of(spent)
    resent = client.post("/verify/resend", data={"csrf_token": csrf_token(client)})
    assert resent.status_code == 303 and resent.headers["Location"] == "/signup/sent"
    assert "A new code is on its way" in client.get("/signup/sent").get_data(as_text=True)
    second = code_in(mails(db, NEW, "verify_email")[-1])
    assert len(mails(db, NEW, "verify_email")) == 2
    if second != first:
        assert type_code(client, first).status_code == 400
    assert type_code(client, second).status_code in (302, 303)
    assert client.get("/account").status_code == 200


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "1" * 5000])
def test_a_malformed_code_is_a_clear_400_and_costs_no_try(
    client: FlaskClient, db: Session, typed: str
) -> None:
    signup(client, NEW)
    response = type_code(client, typed)
    assert response.status_code == 400
    assert error_of(response) == "Type the six digits from the email."
    assert session_of(client)["confirm"]["tries"] == 0


def test_a_code_with_spaces_is_read(client: FlaskClient, db: Session) -> None:
    signup(client, NEW)
    code = code_in(mails(db, NEW, "verify_email")[-1])
    assert type_code(client, f" {code[:3]} {code[3:]} ").status_code in (302, 303)


def test_the_code_page_without_a_sign_up_asks_for_the_link(client: FlaskClient) -> None:
    page = client.get("/signup/sent")
    assert page.status_code == 200 and "Open the link in it" in page.get_data(as_text=True)
    refused = type_code(client, "123456")
    assert refused.status_code == 400
    assert "no longer knows which address" in refused.get_data(as_text=True)
    resend = client.post("/verify/resend", data={"csrf_token": csrf_token(client)})
    assert resend.status_code == 400


def test_a_new_code_for_a_taken_address_mails_its_owner_again(
    client: FlaskClient, db: Session
) -> None:
    make_user(db, email=TAKEN)
    signup(client, TAKEN)
    response = client.post("/verify/resend", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 303 and response.headers["Location"] == "/signup/sent"
    assert [m.kind for m in mails(db, TAKEN)] == ["account_exists", "account_exists"]


def test_a_signed_in_unconfirmed_reader_gets_a_code_from_the_account_page(
    client: FlaskClient, db: Session
) -> None:
    user = make_user(db, email_verified_at=None)
    login(client, user.email, PASSWORD)
    response = client.post("/verify/resend", data={"email": user.email,
                                                   "csrf_token": csrf_token(client)})  # fmt: skip
    assert response.headers["Location"] == "/signup/sent"
    assert user.email in client.get("/signup/sent").get_data(as_text=True)
    answer = type_code(client, code_in(mails(db, user.email, "verify_email")[-1]))
    assert answer.headers["Location"] == "/account"
    db.rollback()
    assert db.get(User, user.id).email_verified_at is not None  # type: ignore[union-attr]


def test_next_never_leaves_the_site(client: FlaskClient, db: Session) -> None:
    signup(client, NEW, next_url="https://evil.example/")
    assert session_of(client)["confirm"]["next"] == "/account"
    response = type_code(client, code_in(mails(db, NEW, "verify_email")[-1]))
    assert response.headers["Location"] == "/account"


# -- rate limits -----------------------------------------------------------------------------


def test_codes_for_one_address_are_limited_across_sessions_and_addresses(
    app: Flask, db: Session
) -> None:
    """Ten tries an hour per address, whoever types them and whether or not the address had
    an account (a real account's sessions and a taken address's share one count)."""
    first = client_from(app, "198.51.100.1")
    second = client_from(app, "198.51.100.2")
    signup(first, NEW)  # creates the account
    signup(second, NEW)  # now a taken address: a page where no code works
    statuses = [type_code(first, "000000").status_code for _ in range(5)]
    statuses += [type_code(second, "000000").status_code for _ in range(6)]
    assert statuses == [400] * 10 + [429]


def test_codes_from_one_ip_are_limited(app: Flask, db: Session) -> None:
    clients = [app.test_client() for _ in range(3)]
    for n, client in enumerate(clients):
        signup(client, f"reader{n}@example.org")
    statuses = [type_code(clients[n % 3], "000000").status_code for n in range(11)]
    assert statuses == [400] * 10 + [429]
