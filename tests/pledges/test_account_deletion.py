"""Deleting an account stops its pledge at Stripe first (issue 3: "any pledge cancelled"),
and keeps the account when the pledge cannot be stopped: a card must not go on being
charged every month for an account that no longer exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons import create_app
from patrons.models import Payment, Pledge, PledgeStatusChange, User
from tests.conftest import empty_tables
from tests.factories import PASSWORD, make_patron, make_user
from tests.pledges.conftest import stripe_settings
from tests.pledges.test_pledge_flow import Reader, active_pledge


def delete(reader: Reader, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return reader.form("/account/delete", {"password": password})


def test_deleting_the_account_cancels_the_pledge_at_stripe_now(
    app: Flask, db: Session, localstripe: str
) -> None:
    reader = Reader(app, make_user(db), localstripe)
    user_id = reader.user.id
    pledge = active_pledge(reader, db)
    page = reader.client.get("/account/delete").get_data(as_text=True)
    assert "stops now" in page  # the page says what happens to the pledge

    response = delete(reader)

    assert response.status_code == 302
    remote = reader.stripe.v1.subscriptions.retrieve(pledge.stripe_subscription_id or "")
    assert remote.status == "canceled"
    db.expire_all()
    stored = db.get(Pledge, pledge.id)
    assert stored is not None
    assert (stored.status, stored.user_id, stored.cancel_reason) == (
        "canceled",
        None,
        "account deleted",
    )
    assert stored.ended_at is not None
    history = db.scalars(
        select(PledgeStatusChange.to_status).where(PledgeStatusChange.pledge_id == pledge.id)
    ).all()
    assert history[-1] == "canceled"
    assert db.scalar(select(Payment.status).where(Payment.pledge_id == pledge.id)) == "paid"
    assert db.get(User, user_id) is None


def test_a_wrong_password_touches_neither_stripe_nor_the_pledge(
    app: Flask, db: Session, localstripe: str
) -> None:
    reader = Reader(app, make_user(db), localstripe)
    pledge = active_pledge(reader, db)
    response = delete(reader, "not the password")
    assert response.status_code == 400
    remote = reader.stripe.v1.subscriptions.retrieve(pledge.stripe_subscription_id or "")
    assert remote.status == "active"
    db.expire_all()
    assert db.get(Pledge, pledge.id).status == "active"  # type: ignore[union-attr]


@pytest.mark.parametrize("api_base", ["http://127.0.0.1:9", None], ids=["unreachable", "none"])
def test_when_the_pledge_cannot_be_stopped_the_account_is_kept(
    database_url: str, tmp_path: Path, api_base: str | None
) -> None:
    """Stripe unreachable (nothing listens on port 9), or no Stripe keys configured while
    the reader still has a subscription: a 503 with a message, and nothing erased."""
    from tests.conftest import csrf_token, login

    if api_base:
        settings = stripe_settings(database_url, tmp_path / "instance", api_base)
    else:
        from tests.conftest import make_settings

        settings = make_settings(database_url, tmp_path / "instance")
    app = create_app(settings)
    try:
        session = app.extensions["db.sessionmaker"]()
        patron = make_patron(session)
        client = app.test_client()
        login(client, patron.email, PASSWORD)
        response = client.post(
            "/account/delete", data={"password": PASSWORD, "csrf_token": csrf_token(client)}
        )
        assert response.status_code == 503
        assert "could not be stopped" in response.get_data(as_text=True)
        session.expire_all()
        assert session.get(User, patron.id) is not None
        pledge = session.scalars(select(Pledge).where(Pledge.user_id == patron.id)).one()
        assert pledge.status == "active"
        assert client.get("/account").status_code == 200  # still signed in
        session.close()
    finally:
        empty_tables(app)
        app.extensions["db.engine"].dispose()
