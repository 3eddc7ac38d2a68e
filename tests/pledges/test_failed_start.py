"""A start that failed never locks the reader out (issue 12): a card declined at the first
charge, or a 3-D Secure step left unfinished, then a reload. `/support` says the pledge was
not completed and offers to finish it (another card, or the bank's confirmation again) or to
start over (the incomplete subscription is canceled at Stripe, the pledge ends `abandoned`).
And when Stripe does not answer, the reader gets a 503 with Retry-After, and a retry works.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons import create_app
from patrons.models import BillingCustomer, OutboundEmail, Payment, PledgeStatusChange
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_user
from tests.pledges.conftest import deliver, stripe_settings
from tests.pledges.test_pledge_flow import (
    DECLINED_ON_CHARGE,
    GOOD,
    THREE_D_SECURE,
    Reader,
    pledges_of,
)

NOT_COMPLETED = "Your pledge was not completed"


@pytest.fixture
def reader(app: Flask, db: Session, localstripe: str) -> Reader:
    return Reader(app, make_user(db, display_name="Olena"), localstripe)


def _declined_at_first_charge(reader: Reader) -> Any:
    response = reader.pledge(number=DECLINED_ON_CHARGE)
    assert response.status_code == 402, response.get_json()
    assert "declined" in response.get_json()["message"]
    return response


def _left_at_3d_secure(reader: Reader) -> str:
    """The payment's 3-D Secure window was closed (the tab, or the reader, went away)."""
    response = reader.pledge(number=THREE_D_SECURE)
    body = response.get_json()
    assert body["status"] == "requires_action", body
    return str(body["client_secret"])


def _support(reader: Reader) -> str:
    response = reader.client.get("/support")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _assert_not_completed_panel(page: str) -> None:
    assert NOT_COMPLETED in page
    assert "You already pledge" not in page
    assert 'action="/pledge/start-over"' in page  # start over
    assert 'data-card="finish"' in page  # finish this one


@pytest.mark.parametrize("how", ["declined", "3ds"])
def test_support_shows_the_unfinished_pledge_with_both_choices(
    reader: Reader, db: Session, how: str
) -> None:
    if how == "declined":
        _declined_at_first_charge(reader)
    else:
        _left_at_3d_secure(reader)
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.status == "incomplete"
    _assert_not_completed_panel(_support(reader))
    page = reader.client.get("/pledge").get_data(as_text=True)
    assert NOT_COMPLETED in page and 'href="/support"' in page


def test_a_pending_pledge_left_before_the_card_is_not_completed_either(
    reader: Reader, db: Session
) -> None:
    assert reader.start().status_code == 200  # then the tab was closed
    page = _support(reader)
    assert NOT_COMPLETED in page and "You already pledge" not in page
    assert 'action="/pledge/start-over"' in page and 'data-card="start"' in page


@pytest.mark.parametrize("how", ["declined", "3ds", "pending"])
def test_start_over_cancels_at_stripe_and_the_pledge_ends_abandoned(
    reader: Reader, db: Session, how: str
) -> None:
    if how == "declined":
        _declined_at_first_charge(reader)
    elif how == "3ds":
        _left_at_3d_secure(reader)
    else:
        reader.start()
    (pledge,) = pledges_of(db, reader.user)
    response = reader.form("/pledge/start-over")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/support")
    (ended,) = pledges_of(db, reader.user)
    assert ended.status == "abandoned" and ended.ended_at is not None
    history = db.execute(
        select(PledgeStatusChange.to_status, PledgeStatusChange.source)
        .where(PledgeStatusChange.pledge_id == ended.id)
        .order_by(PledgeStatusChange.id)
    ).all()
    assert history[-1] == ("abandoned", "reader")
    if pledge.stripe_subscription_id:
        sub = reader.stripe.v1.subscriptions.retrieve(pledge.stripe_subscription_id)
        assert sub.status in ("canceled", "incomplete_expired")
        # Stripe's word on the cancellation comes later: the reader's reason stays
        event = deliver(reader.client, "customer.subscription.deleted", sub.to_dict())
        assert event.status_code == 200
        db.expire_all()
        assert [p.status for p in pledges_of(db, reader.user)] == ["abandoned"]
    page = _support(reader)
    assert NOT_COMPLETED not in page and 'data-card="start"' in page
    assert "nothing was charged" in page.lower()

    assert reader.pledge(number=GOOD).get_json()["status"] == "active"
    assert [p.status for p in pledges_of(db, reader.user)] == ["abandoned", "active"]
    assert reader.form("/pledge/start-over").status_code == 409  # nothing left to start over


def test_finish_a_declined_start_with_another_card(reader: Reader, db: Session) -> None:
    _declined_at_first_charge(reader)
    (pledge,) = pledges_of(db, reader.user)
    answer = reader.post("/pledge/finish", {"attempt": "fin1"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "needs_card"
    setup_id = reader.confirm_card(answer.get_json()["client_secret"], GOOD)
    done = reader.post("/pledge/finish/card", {"setup_intent": setup_id})
    assert done.get_json() == {"ok": True, "status": "active", "redirect": "/pledge"}
    (finished,) = pledges_of(db, reader.user)
    assert finished.id == pledge.id and finished.status == "active"
    assert finished.stripe_subscription_id == pledge.stripe_subscription_id
    assert finished.card_last4 == "4242"
    statuses = db.scalars(select(Payment.status).where(Payment.pledge_id == pledge.id)).all()
    assert "paid" in statuses


def test_finish_a_declined_start_with_a_card_declined_again(reader: Reader, db: Session) -> None:
    _declined_at_first_charge(reader)
    answer = reader.post("/pledge/finish", {"attempt": "fin1"}).get_json()
    setup_id = reader.confirm_card(answer["client_secret"], DECLINED_ON_CHARGE)
    done = reader.post("/pledge/finish/card", {"setup_intent": setup_id})
    assert done.status_code == 402 and "declined" in done.get_json()["message"]
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.status == "incomplete"
    _assert_not_completed_panel(_support(reader))


def test_finish_an_abandoned_3d_secure_by_authenticating_again(reader: Reader, db: Session) -> None:
    _left_at_3d_secure(reader)
    answer = reader.post("/pledge/finish", {"attempt": "fin1"})
    body = answer.get_json()
    assert body["status"] == "requires_action" and body["client_secret"].startswith("pi_")
    reader.authenticate_payment(body["client_secret"], success=True)
    refreshed = reader.post("/pledge/refresh")
    assert refreshed.get_json() == {"ok": True, "status": "active", "redirect": "/pledge"}
    assert [p.status for p in pledges_of(db, reader.user)] == ["active"]


def test_finish_and_start_over_need_an_unfinished_pledge(reader: Reader) -> None:
    assert reader.post("/pledge/finish", {"attempt": "fin1"}).status_code == 409
    assert reader.post("/pledge/finish/card", {"setup_intent": "seti_x"}).status_code == 409
    assert reader.form("/pledge/start-over").status_code == 409
    assert reader.client.post("/pledge/start-over").status_code == 400  # no CSRF token


# -- the mail about a failed payment is for renewals (item 7 of the brief) ---------------------


def _failure_mails(db: Session, reader: Reader) -> list[str]:
    db.rollback()
    return list(
        db.scalars(
            select(OutboundEmail.kind).where(
                OutboundEmail.to_address == reader.user.email,
                OutboundEmail.kind == "pledge_payment_failed",
            )
        )
    )


def test_a_declined_first_charge_in_the_browser_queues_no_failure_mail_itself(
    reader: Reader, db: Session
) -> None:
    _declined_at_first_charge(reader)
    assert _failure_mails(db, reader) == []


def test_nor_does_stripes_event_about_that_first_charge(
    reader: Reader, db: Session, world: Any
) -> None:
    """The page already said the card was declined: Stripe's `invoice.payment_failed` for the
    first invoice (billing_reason `subscription_create`) mails nothing either."""
    _declined_at_first_charge(reader)
    (pledge,) = pledges_of(db, reader.user)
    sub = world.subscription_dict(pledge.stripe_subscription_id)
    invoice = world.invoice_dict(sub["latest_invoice"])
    assert deliver(reader.client, "invoice.payment_failed", invoice).status_code == 200
    _wait_for_the_inbox(db)
    assert _failure_mails(db, reader) == []


def _wait_for_the_inbox(db: Session) -> None:
    """Events may be applied just after the answer (on a background thread): give them a
    moment, as long as an event is still waiting."""
    from patrons.models import StripeEvent

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        db.rollback()
        waiting = db.scalar(select(StripeEvent.id).where(StripeEvent.state == "pending").limit(1))
        if waiting is None:
            return
        time.sleep(0.05)


def test_the_pages_queue_no_failure_mail_of_their_own(reader: Reader, db: Session) -> None:
    """Finishing and starting over write no mail themselves (whatever records.py decides)."""
    _declined_at_first_charge(reader)
    db.rollback()
    before = db.scalars(select(OutboundEmail.id)).all()
    reader.post("/pledge/finish", {"attempt": "fin1"})
    reader.form("/pledge/start-over")
    db.rollback()
    after = db.scalars(select(OutboundEmail.kind).where(OutboundEmail.id.not_in(before))).all()
    assert "pledge_payment_failed" not in after


# -- Stripe does not answer ------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


def _retry_after(response: Any) -> int:
    """The Retry-After of a 503: a minute (RETRY_AFTER_SECONDS), whatever the route's rate
    limit window."""
    return int(response.headers["Retry-After"])


@pytest.fixture
def unreachable_app(database_url: str, tmp_path: Path) -> Any:
    settings = stripe_settings(
        database_url, tmp_path / "down", f"http://127.0.0.1:{_closed_port()}"
    )
    other = create_app(settings)
    yield other
    other.extensions["db.engine"].dispose()


def test_stripe_unreachable_is_a_503_to_try_again_and_a_retry_works(
    app: Flask, unreachable_app: Flask, db: Session, localstripe: str
) -> None:
    user = make_user(db)
    down = unreachable_app.test_client()
    login(down, user.email, PASSWORD)
    token = csrf_token(down)
    body = {"currency": "EUR", "amount": 500, "attempt": "down1"}
    response = down.post("/pledge/start", json=body, headers={"X-CSRFToken": token})
    assert response.status_code == 503
    assert _retry_after(response) == 60
    assert "try again in a minute" in response.get_json()["message"]
    db.rollback()
    customer = db.scalar(select(BillingCustomer).where(BillingCustomer.user_id == user.id))
    assert customer is None or customer.stripe_customer_id is None  # no lease left in it
    # the page while Stripe is down: the unfinished pledge can be started over, or retried
    assert down.get("/support").status_code == 200
    assert down.post("/pledge/refresh", headers={"X-CSRFToken": token}).status_code in (409, 503)

    # Stripe is back: the same reader pledges at once (the pending row is reused)
    back = Reader(app, user, localstripe)
    assert back.pledge(number=GOOD).get_json()["status"] == "active"
    assert [p.status for p in pledges_of(db, user)] == ["active"]


def test_stripe_unreachable_while_managing_is_a_503_page(
    app: Flask, unreachable_app: Flask, reader: Reader, db: Session
) -> None:
    assert reader.pledge(number=GOOD).get_json()["status"] == "active"
    down = unreachable_app.test_client()
    login(down, reader.user.email, PASSWORD)
    token = csrf_token(down)
    response = down.post("/pledge/cancel", data={"reason": "", "csrf_token": token})
    assert response.status_code == 503
    assert _retry_after(response) == 60
    assert "try again in a minute" in response.get_data(as_text=True)
    (pledge,) = pledges_of(db, reader.user)
    assert pledge.status == "active" and pledge.cancel_at_period_end is False
