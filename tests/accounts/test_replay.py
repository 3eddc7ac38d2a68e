"""Every kind of emailed link means one thing once (docs/security.md): used a second time, or
after a sign-out, a password change, a reset or an address change that happened after it was
mailed, it signs nobody in and changes nothing. Links come from the mails the app sends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from patrons.models import User
from tests.accounts.mailbox import clone, link, signed_in, token_of
from tests.conftest import csrf_token, login

FIRST_PASSWORD = "quiet lantern over the salt flats"
CHANGED_PASSWORD = "a kettle of hawks above the river"
RESET_PASSWORD = "seven amber lamps in the archive"
TRIED_PASSWORD = "what the replayed link would set"
KINDS = ["verify", "reset", "email-change", "sign-in"]
EVENTS = ["second use", "sign-out", "password change", "reset", "email change"]


@dataclass
class Reader:
    """A reader who signed up through the site, and the state they are in now."""

    app: Flask
    db: Session
    email: str = "reader@example.org"
    password: str = FIRST_PASSWORD
    moves: list[str] = field(default_factory=lambda: ["moved@example.org", "again@example.org"])

    def user(self) -> User:
        self.db.rollback()
        self.db.expire_all()
        return self.db.scalars(select(User)).one()

    def device(self) -> FlaskClient:
        """One of the reader's own browsers, signed in with the password."""
        client = self.app.test_client()
        login(client, self.email, self.password)
        return client

    def post(self, client: FlaskClient, path: str, **data: str) -> TestResponse:
        return client.post(path, data={**data, "csrf_token": csrf_token(client)})

    def obtain(self, kind: str) -> tuple[str, Callable[[], FlaskClient]]:
        """A link of `kind` from its mail, and how to get a browser that may open it."""
        asker = self.app.test_client()
        if kind == "verify":  # the one sign-up mailed
            return token_of(link(self.db, self.email, "verify_email")), self.app.test_client
        if kind == "reset":
            self.post(asker, "/reset", email=self.email)
            return token_of(link(self.db, self.email, "reset_password")), self.app.test_client
        if kind == "email-change":
            new = self.moves.pop(0)
            self.post(self.device(), "/account/email", new_email=new, password=self.password)
            return token_of(link(self.db, new, "confirm_new_email")), self.app.test_client
        self.post(asker, "/login/link", email=self.email)
        return token_of(link(self.db, self.email, "sign_in_link")), lambda: clone(asker)

    def use(
        self, kind: str, token: str, client: FlaskClient, password: str = TRIED_PASSWORD
    ) -> TestResponse:
        if kind == "verify":
            return self.post(client, "/verify", token=token)
        if kind == "reset":
            return self.post(client, "/reset/new", token=token, new_password=password,
                             confirm=password)  # fmt: skip
        if kind == "email-change":
            return self.post(client, "/account/email/confirm", token=token)
        return self.post(client, "/login/link/open", token=token)

    def happen(self, event: str) -> None:
        """`event` (not "second use"), done by the reader in another browser."""
        if event == "sign-out":
            self.post(self.device(), "/logout")
        elif event == "password change":
            new = {"new_password": CHANGED_PASSWORD, "confirm": CHANGED_PASSWORD}
            response = self.post(
                self.device(), "/account/password", current_password=self.password, **new
            )
            assert response.status_code == 302, response.status_code
            self.password = CHANGED_PASSWORD
        elif event == "reset":
            token, browser = self.obtain("reset")
            response = self.use("reset", token, browser(), RESET_PASSWORD)
            assert response.status_code == 302, response.get_data(as_text=True)[:300]
            self.password = RESET_PASSWORD
        elif event == "email change":
            token, browser = self.obtain("email-change")
            response = self.use("email-change", token, browser())
            assert response.status_code == 302, response.get_data(as_text=True)[:300]
            self.email = self.user().email


def sign_up(client: FlaskClient, email: str, password: str) -> None:
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    response = client.post("/signup", data=data)
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]


@pytest.fixture
def reader(app: Flask, db: Session) -> Reader:
    sign_up(app.test_client(), "reader@example.org", FIRST_PASSWORD)
    return Reader(app, db)


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("kind", KINDS)
def test_an_emailed_link_means_nothing_after(reader: Reader, kind: str, event: str) -> None:
    token, browser = reader.obtain(kind)
    if event == "second use":
        first = reader.use(kind, token, browser())
        assert first.status_code == 302, first.get_data(as_text=True)[:300]
    else:
        reader.happen(event)
    before = reader.user()
    password_hash, email = before.password_hash, before.email
    replayer = browser()
    response = reader.use(kind, token, replayer)
    after = reader.user()
    assert not signed_in(replayer), f"{kind} after {event} signed in"
    assert (after.password_hash, after.email) == (password_hash, email)
    if kind == "verify":  # confirms (at most), never signs in
        body = response.get_data(as_text=True)
        if event == "second use":
            assert response.status_code == 200 and "already confirmed" in body
        else:
            assert response.status_code == 302 and response.headers["Location"].startswith("/login")
            assert after.email_verified_at is not None
    else:
        assert response.status_code == 400, response.status_code
