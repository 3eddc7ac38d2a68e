"""Sign in with an emailed link, the reset and the verification link (docs/security.md):
the same answer for every address, links from SITE_URL, only hashes stored, 15 minutes in
the asking browser, the owner's way in while the password is being guessed, the audit log."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from patrons.accounts import email_tokens
from patrons.core import clock
from patrons.core.db import Base
from patrons.models import AuditEvent, User
from tests.accounts.mailbox import clone, link, messages, signed_in, token_of
from tests.accounts.test_threats import OPEN_REDIRECTS
from tests.conftest import csrf_token, make_settings
from tests.factories import make_user
from tests.helpers import extra_app

KNOWN = "known@example.org"


def ask(client: FlaskClient, path: str, email: str, **kw: str) -> TestResponse:
    return client.post(path, data={"email": email, "csrf_token": csrf_token(client), **kw})


def open_link(client: FlaskClient, token: str, **kw: str) -> TestResponse:
    data = {"token": token, "csrf_token": csrf_token(client), **kw}
    return client.post("/login/link/open", data=data)


def page(response: TestResponse, email: str) -> str:
    """The page without what differs by design: the address typed, the CSRF token."""
    body = response.get_data(as_text=True).replace(email, "ADDRESS")
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]*"', "", body)


@pytest.mark.parametrize(("path", "kind"), [("/reset", "reset_password"),
                                            ("/login/link", "sign_in_link")])  # fmt: skip
def test_asking_answers_the_same_and_queues_one_mail_for_any_address(
    app: Flask, db: Session, path: str, kind: str
) -> None:
    make_user(db, email=KNOWN)
    known = ask(app.test_client(), path, KNOWN)  # a browser each: the same cookies set
    unknown = ask(app.test_client(), path, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert page(known, KNOWN) == page(unknown, "nobody@example.org")
    assert {k for k, _ in known.headers} == {k for k, _ in unknown.headers}
    mails = messages(db)
    assert [(m.to_address, m.kind, m.status) for m in mails] == [
        (KNOWN, kind, "sent"), ("nobody@example.org", "no_account", "sent")
    ]  # fmt: skip
    assert "http://patrons.test/signup" in mails[1].text_body


def test_the_link_signs_in_once_in_the_asking_browser(client: FlaskClient, db: Session) -> None:
    user = make_user(db, email=KNOWN)
    ask(client, "/login/link", KNOWN, next="/topics")
    path = link(db, KNOWN, "sign_in_link")
    assert path.startswith("/login/link/open?token=")
    assert "15 minutes" in messages(db, KNOWN)[-1].text_body
    copied = clone(client)
    shown = client.get(path)
    assert shown.status_code == 200 and KNOWN in shown.get_data(as_text=True)
    assert not signed_in(client)  # a GET (a mail scanner) signs nobody in
    response = open_link(client, token_of(path))
    assert response.status_code == 302 and response.headers["Location"] == "/topics"
    assert signed_in(client)
    again = open_link(copied, token_of(path))
    assert again.status_code == 400 and "already been used" in again.get_data(as_text=True)
    assert not signed_in(copied)
    kinds = [(e.kind, json.loads(e.detail or "{}")) for e in db.scalars(select(AuditEvent))]
    assert ("token.used", {"purpose": "sign-in"}) in kinds
    assert ("sign_in", {"method": "link"}) in kinds
    assert all(e.user_id == user.id for e in db.scalars(select(AuditEvent)))


def test_the_link_does_not_open_in_another_browser(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    make_user(db, email=KNOWN)
    ask(client, "/login/link", KNOWN)
    token = token_of(link(db, KNOWN, "sign_in_link"))
    elsewhere = app.test_client()
    refused = open_link(elsewhere, token)
    assert refused.status_code == 400 and "same browser" in refused.get_data(as_text=True)
    assert elsewhere.get(f"/login/link/open?token={token}").status_code == 400
    assert not signed_in(elsewhere)
    assert open_link(client, token).status_code == 302  # not spent by the refusal
    assert signed_in(client)


def test_the_link_opens_anywhere_when_the_setting_is_off(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path / "i", sign_in_link_same_browser=False)
    with extra_app(settings) as app:
        db = app.extensions["db.sessionmaker"]()
        try:
            make_user(db, email=KNOWN)
            ask(app.test_client(), "/login/link", KNOWN)
            token = token_of(link(db, KNOWN, "sign_in_link"))
        finally:
            db.close()
        elsewhere = app.test_client()
        assert open_link(elsewhere, token).status_code == 302
        assert signed_in(elsewhere)


def test_the_link_expires_after_15_minutes(
    monkeypatch: pytest.MonkeyPatch, client: FlaskClient, db: Session
) -> None:
    make_user(db, email=KNOWN)
    ask(client, "/login/link", KNOWN)
    token = token_of(link(db, KNOWN, "sign_in_link"))
    later = clock.now() + timedelta(minutes=15)
    monkeypatch.setattr(clock, "now", lambda: later)
    response = open_link(client, token)
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    assert not signed_in(client)


def test_the_owner_gets_in_by_link_while_the_password_is_being_guessed(
    client: FlaskClient, db: Session
) -> None:
    user = make_user(db, email=KNOWN, failed_sign_ins=30,
                     sign_in_blocked_until=clock.now() + timedelta(hours=1))  # fmt: skip
    ask(client, "/login/link", KNOWN)
    assert open_link(client, token_of(link(db, KNOWN, "sign_in_link"))).status_code == 302
    assert signed_in(client)
    db.expire_all()
    owner = db.get(User, user.id)
    assert owner is not None
    assert (owner.failed_sign_ins, owner.sign_in_blocked_until) == (0, None)


def test_asking_is_limited_per_address_alike_for_every_address(app: Flask, db: Session) -> None:
    make_user(db, email=KNOWN)
    for email in (KNOWN, "nobody@example.org"):
        statuses = []
        for n in range(4):  # a new client (IP) each time: the limit is the address's
            client = app.test_client()
            client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 1}"
            statuses.append(ask(client, "/login/link", email).status_code)
        assert statuses == [200, 200, 200, 429], email


@pytest.mark.parametrize("target", OPEN_REDIRECTS[:8])
def test_the_link_never_leads_off_the_site(client: FlaskClient, db: Session, target: str) -> None:
    make_user(db, email=KNOWN)
    ask(client, "/login/link", KNOWN, next=target)
    response = open_link(client, token_of(link(db, KNOWN, "sign_in_link")))
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))


@pytest.mark.parametrize(("path", "kind"), [("/reset", "reset_password"),
                                            ("/login/link", "sign_in_link")])  # fmt: skip
def test_mailed_links_come_from_site_url_whatever_the_host(
    client: FlaskClient, db: Session, path: str, kind: str
) -> None:
    make_user(db, email=KNOWN)
    token = client.get("/csrf-token", base_url="http://evil.example").get_json()["token"]
    data = {"email": KNOWN, "csrf_token": token}
    client.post(path, data=data, base_url="http://evil.example",
                headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})  # fmt: skip
    body = messages(db, KNOWN)[-1].text_body
    assert "evil.example" not in body and link(db, KNOWN, kind)


def test_only_hashes_of_links_are_stored(app: Flask, client: FlaskClient, db: Session) -> None:
    """The raw token of every kind of link is in no table but the mail queue."""
    make_user(db, email=KNOWN, email_verified_at=None)
    ask(client, "/login/link", KNOWN)
    ask(client, "/reset", KNOWN)
    user = db.scalars(select(User)).one()
    with app.app_context():  # the code's hash is keyed with the app's secret
        verify = email_tokens.issue(db, user, email_tokens.VERIFY, with_code=True)  # sign-up's
        db.commit()
    tokens = [token_of(link(db, KNOWN, kind)) for kind in ("sign_in_link", "reset_password")]
    tokens += [verify.token, verify.code or "no code"]
    with app.extensions["db.engine"].connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name == "outbound_emails":
                continue
            dump = repr(conn.execute(text(f"SELECT * FROM {table.name}")).all())  # noqa: S608
            assert not any(token in dump for token in tokens), table.name
