"""Reading the outbox in tests: the newest message of a kind to an address, the link in it,
and who a test client is signed in as."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.models import OutboundEmail

LINK = re.compile(r"http://patrons\.test(/[\w/\-]*\?token=[\w.\-]+)")


def messages(db: Session, to: str | None = None) -> list[OutboundEmail]:
    db.rollback()
    db.expire_all()
    query = select(OutboundEmail).order_by(OutboundEmail.id)
    if to is not None:
        query = query.where(func.lower(OutboundEmail.to_address) == to.lower())
    return list(db.scalars(query))


def last_mail(db: Session, to: str, kind: str) -> OutboundEmail:
    found = [m for m in messages(db, to) if m.kind == kind]
    assert found, f"no {kind} mail to {to}: {[m.kind for m in messages(db, to)]}"
    return found[-1]


def link(db: Session, to: str, kind: str) -> str:
    """The path (with its ?token=) of the link in the newest `kind` mail to `to`."""
    message = last_mail(db, to, kind)
    match = LINK.search(message.text_body)
    assert match, message.text_body
    assert match.group(0) in message.html_body  # the same link in both parts
    return match.group(1)


def token_of(path: str) -> str:
    return path.split("token=", 1)[1]


def signed_in(client: FlaskClient) -> bool:
    return client.get("/account").status_code == 200


def clone(client: FlaskClient) -> FlaskClient:
    """Another client holding the same cookies (a copied cookie jar)."""
    other = client.application.test_client()
    for name in ("session",):
        cookie = client.get_cookie(name)
        if cookie is not None:
            other.set_cookie(name, cookie.value)
    return other
