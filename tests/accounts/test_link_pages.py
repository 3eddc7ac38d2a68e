"""The pages a mailed link opens: the reset (an hour, once, signs in), the verification
(signs in on its first use and goes on to where the reader was going), and the audit log and
security stamp of password and address changes (docs/security.md)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.accounts import email_tokens
from patrons.core import clock
from patrons.models import AuditEvent, User
from tests.accounts.mailbox import link, messages, signed_in, token_of
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_user

KNOWN = "known@example.org"
NEW_PASSWORD = "seven amber lamps in the archive"


def audit_log(db: Session) -> list[tuple[str, dict[str, object]]]:
    db.rollback()
    events = db.scalars(select(AuditEvent).order_by(AuditEvent.id))
    return [(e.kind, json.loads(e.detail or "{}")) for e in events]


def stamp(db: Session, user_id: int) -> str:
    db.rollback()
    db.expire_all()
    user = db.get(User, user_id)
    assert user is not None
    return user.security_stamp


def post(client: FlaskClient, path: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={**data, "csrf_token": csrf_token(client)})


def test_a_reset_lasts_an_hour_signs_in_and_turns_the_stamp_over(
    client: FlaskClient, db: Session
) -> None:
    user = make_user(db, email=KNOWN, email_verified_at=None)
    before = user.security_stamp
    post(client, "/reset", email=KNOWN)
    assert "1 hour" in messages(db, KNOWN)[-1].text_body
    path = link(db, KNOWN, "reset_password")
    assert client.get(path).status_code == 200
    response = post(client, "/reset/new", token=token_of(path), new_password=NEW_PASSWORD,
                    confirm=NEW_PASSWORD)  # fmt: skip
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert signed_in(client) and stamp(db, user.id) != before
    changed = db.get(User, user.id)
    assert changed is not None and changed.email_verified_at is not None  # the link proved it
    kinds = audit_log(db)
    for event in [("token.used", {"purpose": "reset"}), ("password.reset", {}),
                  ("email.verified", {}), ("sign_in", {"method": "reset"})]:  # fmt: skip
        assert event in kinds


def test_a_reset_link_expires_after_an_hour(
    monkeypatch: pytest.MonkeyPatch, client: FlaskClient, db: Session
) -> None:
    make_user(db, email=KNOWN)
    post(client, "/reset", email=KNOWN)
    path = link(db, KNOWN, "reset_password")
    later = clock.now() + timedelta(hours=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    response = client.get(path)
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)


def test_verification_signs_in_once_and_goes_on_to_where_the_reader_was_going(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    user = make_user(db, email=KNOWN, email_verified_at=None)
    issued = email_tokens.issue(db, user, email_tokens.VERIFY, data={"next": "/support"})
    db.commit()
    response = post(client, "/verify", token=issued.token)
    assert response.status_code == 302 and response.headers["Location"] == "/support"
    assert signed_in(client)
    kinds = audit_log(db)
    for event in [("token.used", {"purpose": "verify"}), ("email.verified", {}),
                  ("sign_in", {"method": "verify"})]:  # fmt: skip
        assert event in kinds
    again = app.test_client().get(f"/verify?token={issued.token}")
    body = again.get_data(as_text=True)
    assert again.status_code == 200 and "already confirmed" in body
    assert issued.token not in body  # no button to press again


def test_a_verification_link_with_an_outside_next_stays_on_the_site(
    client: FlaskClient, db: Session
) -> None:
    user = make_user(db, email=KNOWN, email_verified_at=None)
    issued = email_tokens.issue(db, user, email_tokens.VERIFY, data={"next": "//evil.example"})
    db.commit()
    response = post(client, "/verify", token=issued.token)
    assert response.headers["Location"] == "/account"


def test_a_password_change_is_audited_and_turns_the_stamp_over(
    client: FlaskClient, db: Session
) -> None:
    user = make_user(db, email=KNOWN)
    login(client, KNOWN, PASSWORD)
    before = stamp(db, user.id)
    response = post(client, "/account/password", current_password=PASSWORD,
                    new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)  # fmt: skip
    assert response.status_code == 302 and signed_in(client)  # this session stays
    assert stamp(db, user.id) != before
    assert ("password.changed", {}) in audit_log(db)


def test_an_address_change_turns_the_stamp_over_twice_and_is_audited(
    client: FlaskClient, db: Session
) -> None:
    user = make_user(db, email=KNOWN)
    login(client, KNOWN, PASSWORD)
    before = stamp(db, user.id)
    post(client, "/account/email", new_email="moved@example.org", password=PASSWORD)
    asked = stamp(db, user.id)
    assert asked != before
    assert "24 hours" in messages(db, "moved@example.org")[-1].text_body
    path = link(db, "moved@example.org", "confirm_new_email")
    assert post(client, "/account/email/confirm", token=token_of(path)).status_code == 302
    assert stamp(db, user.id) != asked
    kinds = audit_log(db)
    assert ("token.used", {"purpose": "email-change"}) in kinds and ("email.changed", {}) in kinds
