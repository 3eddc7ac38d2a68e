"""`POST /stripe/webhook` against localstripe, named after the threats it defends against
(docs/security.md section 5, threats 1-10 and 15).

Events are signed with the SDK's own helper. Most are synthetic (localstripe never sends
`invoice.paid`, `customer.subscription.updated` or `charge.*`), but their objects are the ones
localstripe holds, and the handler re-reads each subscription from localstripe as it would
from Stripe. One test feeds localstripe's real, signed deliveries to the app.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from patrons.core import clock
from patrons.models import (
    BillingCustomer,
    OutboundEmail,
    Payment,
    PaymentChange,
    Pledge,
    PledgeStatusChange,
    StripeEvent,
)
from patrons.pledges import inbox, records
from patrons.pledges.billing import gateway
from patrons.pledges.entitlement import user_is_active_patron
from tests.pledges.conftest import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    StripeWorld,
    deliver,
    event_payload,
    sign,
    table_rows,
)

URL = "/stripe/webhook"


def count(db: Session, model: Any) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(model)) or 0


def email_kinds(db: Session) -> list[str]:
    db.rollback()
    return sorted(db.scalars(select(OutboundEmail.kind)))


def post_raw(client: FlaskClient, body: bytes | str, signature: str | None, **kw: Any) -> Any:
    headers = {} if signature is None else {"Stripe-Signature": signature}
    return client.post(URL, data=body, headers=headers, content_type="application/json", **kw)


def first_invoice(world: StripeWorld, patron: Any) -> dict[str, Any]:
    return world.invoice_dict(patron.sub.latest_invoice_id)


# -- the basics ------------------------------------------------------------------------------


def test_a_paid_first_invoice_makes_an_active_patron(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    response = deliver(client, "invoice.paid", first_invoice(world, patron))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    assert "Set-Cookie" not in response.headers
    pledge = db.get(Pledge, patron.pledge_id)
    assert pledge is not None
    assert (pledge.status, pledge.stripe_subscription_id, pledge.amount) == (
        "active",
        patron.sub.id,
        500,
    )
    payment = db.scalar(select(Payment))
    assert payment is not None and (payment.status, payment.amount) == ("paid", 500)
    assert user_is_active_patron(db, patron.user.id, clock.now())
    assert email_kinds(db) == ["pledge_thanks"]
    changes = db.scalars(select(PledgeStatusChange)).all()
    assert [(c.from_status, c.to_status, c.source) for c in changes] == [
        ("pending", "active", "webhook")
    ]


def test_the_webhook_needs_no_csrf_token_and_sets_no_cookie(
    client: FlaskClient, world: StripeWorld
) -> None:
    client.get("/csrf-token")  # a session cookie exists: the webhook must not touch it
    patron = world.subscribe()
    response = deliver(
        client, "customer.subscription.created", world.subscription_dict(patron.sub.id)
    )
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    refused = post_raw(client, b"{}", "t=1,v1=00")
    assert refused.status_code == 400 and "Set-Cookie" not in refused.headers


def test_unhandled_event_types_are_acknowledged_and_write_nothing(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    before = table_rows(db)
    for event_type in (
        "customer.created",
        "payment_intent.succeeded",
        "invoice.created",
        "plan.created",
        "checkout.session.completed",
        "no.such.type",
    ):
        response = deliver(client, event_type, first_invoice(world, patron))
        assert response.status_code == 200, event_type
    assert table_rows(db) == before


# -- threat 1: forged webhooks -----------------------------------------------------------------


def _hmac(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def forged_requests(genuine: str) -> Iterator[tuple[str, bytes, str | None]]:
    """(name, body, Stripe-Signature) variants of one genuine event, none of them valid."""
    now = int(time.time())
    body = genuine.encode()
    good = _hmac(WEBHOOK_SECRET, now, body)
    # no or malformed signature header
    yield "no header", body, None
    yield "empty header", body, ""
    yield "garbage header", body, "garbage"
    yield "timestamp only", body, f"t={now}"
    yield "signature only", body, f"v1={good}"
    yield "non-numeric timestamp", body, f"t=now,v1={good}"
    yield "v0 scheme only", body, f"t={now},v0={good}"
    yield "empty v1", body, f"t={now},v1="
    yield "truncated signature", body, f"t={now},v1={good[:-2]}"
    yield "extended signature", body, f"t={now},v1={good}00"
    yield "upper-case hex", body, f"t={now},v1={good.upper()}"
    yield "two wrong signatures", body, f"t={now},v1={'0' * 64},v1={'f' * 64}"
    yield "timestamp shifted by one", body, f"t={now + 1},v1={good}"
    yield "signature of the empty body", body, f"t={now},v1={_hmac(WEBHOOK_SECRET, now, b'')}"
    # wrong secrets
    for name, secret in (
        ("another endpoint's secret", "whsec_another_endpoint"),
        ("empty secret", ""),
        ("secret with one character changed", WEBHOOK_SECRET[:-1] + "X"),
        ("secret key as the secret", SECRET_KEY),
        ("publishable key as the secret", PUBLISHABLE_KEY),
        ("the secret without its prefix", WEBHOOK_SECRET.removeprefix("whsec_")),
    ):
        yield name, body, f"t={now},v1={_hmac(secret, now, body)}"
    # stale signatures with the right secret (threat 2 too)
    for age in (301, 600, 3600, 86400, now):
        yield (
            f"signed {age} s ago",
            body,
            f"t={now - age},v1={_hmac(WEBHOOK_SECRET, now - age, body)}",
        )
    # the signature of the genuine body on a tampered body
    event = json.loads(genuine)
    tampered: list[tuple[str, Any]] = [
        ("another event id", {**event, "id": event["id"] + "x"}),
        ("another type", {**event, "type": "invoice.payment_failed"}),
        ("livemode flipped", {**event, "livemode": True}),
        ("created moved", {**event, "created": event["created"] - 1}),
    ]
    obj = event["data"]["object"]
    for field, value in (
        ("amount_paid", 1),
        ("amount_paid", 999999),
        ("status", "open"),
        ("customer", "cus_attacker"),
        ("currency", "usd"),
        ("id", "in_other"),
        ("subscription", "sub_other"),
    ):
        tampered.append(
            (f"object {field}={value}", {**event, "data": {"object": {**obj, field: value}}})
        )
    for name, changed in tampered:
        yield f"tampered: {name}", json.dumps(changed).encode(), f"t={now},v1={good}"
    yield (
        "re-serialised compactly",
        json.dumps(event, separators=(",", ":")).encode(),
        f"t={now},v1={good}",
    )
    yield "keys reordered", json.dumps(event, sort_keys=True).encode(), f"t={now},v1={good}"
    yield "trailing newline", body + b"\n", f"t={now},v1={good}"
    yield "leading space", b" " + body, f"t={now},v1={good}"
    yield "byte-order mark", b"\xef\xbb\xbf" + body, f"t={now},v1={good}"
    yield "truncated body", body[:-1], f"t={now},v1={good}"
    yield "empty body", b"", f"t={now},v1={good}"
    for position in (2, len(body) // 3, len(body) // 2, len(body) - 3):
        flipped = bytearray(body)
        flipped[position] ^= 0x01
        yield f"one bit flipped at {position}", bytes(flipped), f"t={now},v1={good}"
    # garbage, correctly signed: still refused, and never a 5xx
    for name, junk in (
        ("signed non-JSON", b"not json at all"),
        ("signed invalid UTF-8", b"\xff\xfe{\x00}"),
        ("signed JSON array", b"[1, 2, 3]"),
        ("signed JSON string", b'"evt_1"'),
        ("signed event without id", json.dumps({**event, "id": None}).encode()),
        (
            "signed event without type",
            json.dumps({k: v for k, v in event.items() if k != "type"}).encode(),
        ),
        (
            "signed event without data",
            json.dumps({k: v for k, v in event.items() if k != "data"}).encode(),
        ),
        (
            "signed event whose object has no id",
            json.dumps({**event, "data": {"object": {"object": "invoice"}}}).encode(),
        ),
        (
            "signed event with a list as object",
            json.dumps({**event, "data": {"object": [obj]}}).encode(),
        ),
        ("signed NaN", b'{"id": NaN}'),
        ("signed deep nesting", b"[" * 5000 + b"]" * 5000),
    ):
        yield name, junk, f"t={now},v1={_hmac(WEBHOOK_SECRET, now, junk)}"


def test_threat_1_fifty_forged_webhooks_are_refused_and_write_nothing(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    genuine = event_payload("evt_genuine", "invoice.paid", first_invoice(world, patron))
    variants = list(forged_requests(genuine))
    assert len(variants) >= 50
    assert len({name for name, _, _ in variants}) == len(variants)
    before = table_rows(db)
    answers = {}
    for name, body, signature in variants:
        answers[name] = post_raw(client, body, signature).status_code
    assert {name: code for name, code in answers.items() if not 400 <= code < 500} == {}
    for method in ("get", "put", "delete", "patch"):
        assert 400 <= getattr(client, method)(URL).status_code < 500
    assert table_rows(db) == before  # not one row written, in any table
    # and the genuine event, signed properly, does write: the forgeries were the difference
    assert post_raw(client, genuine, sign(genuine)).status_code == 200
    assert count(db, Payment) == 1


def test_threat_1_a_secret_rotation_accepts_either_signature(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    body = event_payload("evt_rotation", "invoice.paid", first_invoice(world, patron))
    now = int(time.time())
    header = (
        f"t={now},v1={_hmac('whsec_old_secret', now, body.encode())},"
        f"v1={_hmac(WEBHOOK_SECRET, now, body.encode())}"
    )
    assert post_raw(client, body, header).status_code == 200
    assert count(db, StripeEvent) == 1


# -- threat 2: replay ------------------------------------------------------------------------


def test_threat_2_a_replayed_old_signature_is_refused(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    body = event_payload("evt_replay", "invoice.paid", first_invoice(world, patron))
    before = table_rows(db)
    old = post_raw(client, body, sign(body, timestamp=int(time.time()) - 600))
    assert old.status_code == 400
    assert table_rows(db) == before
    fresh = sign(body)
    assert post_raw(client, body, fresh).status_code == 200
    after_first = table_rows(db)
    # a replay inside the 300 s window is accepted and changes nothing
    assert post_raw(client, body, fresh).status_code == 200
    assert table_rows(db) == after_first


# -- threats 3 and 4: duplicates ---------------------------------------------------------------


def without_events(rows: dict[str, int]) -> dict[str, int]:
    return {table: n for table, n in rows.items() if table != "stripe_events"}


def apply_waiting(app: Flask, db: Session) -> dict[str, int]:
    """What the worker does once the events' retry time has come."""
    db.execute(update(StripeEvent).values(next_attempt_at=None))
    db.commit()
    gw = gateway(app)
    assert gw is not None
    with app.app_context():  # as `flask stripe-worker` runs
        return inbox.apply_due(db, gw, grace_days=7)


def _one_effect(db: Session) -> None:
    assert count(db, StripeEvent) == 1
    assert count(db, Payment) == 1
    assert count(db, Pledge) == 1
    assert count(db, PledgeStatusChange) == 1
    assert email_kinds(db) == ["pledge_thanks"]


def test_threat_3_the_same_event_ten_times_makes_one_effect(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    body = event_payload("evt_ten_times", "invoice.paid", first_invoice(world, patron))
    answers = [post_raw(client, body, sign(body)) for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10
    assert [a.get_data(as_text=True).strip() for a in answers[1:]] == ["Duplicate."] * 9
    _one_effect(db)


def test_threat_3_a_redelivery_stores_nothing_and_applies_nothing_again(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    """The INSERT ... ON CONFLICT DO NOTHING of the event id is the only guard: the first
    delivery is received and applied, the others are answered "Duplicate." and the event,
    applied already, is not claimed again."""
    patron = world.subscribe()
    body = event_payload("evt_redelivered", "invoice.paid", first_invoice(world, patron))
    answers = [post_raw(client, body, sign(body)) for _ in range(10)]
    assert [a.get_data(as_text=True).strip() for a in answers] == ["Received."] + ["Duplicate."] * 9
    row = db.get(StripeEvent, "evt_redelivered")
    assert row is not None and (row.state, row.attempts) == ("applied", 1)
    _one_effect(db)


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app over real HTTP on loopback, a thread per request."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_threat_4_the_same_event_twenty_times_at_once_makes_one_effect(
    live_server: str, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    body = event_payload("evt_concurrent", "invoice.paid", first_invoice(world, patron))
    headers = {"Stripe-Signature": sign(body), "Content-Type": "application/json"}
    barrier = threading.Barrier(20)

    def post(_: int) -> tuple[int, str]:
        with requests.Session() as http:
            barrier.wait(timeout=30)
            response = http.post(live_server + URL, data=body, headers=headers, timeout=60)
            return response.status_code, response.text.strip()

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(post, range(20)))
    assert Counter(code for code, _ in answers) == {200: 20}, answers
    assert Counter(text for _, text in answers) == {"Received.": 1, "Duplicate.": 19}
    _one_effect(db)


@pytest.mark.parametrize("pending", [True, False], ids=["pending pledge", "no pledge row"])
def test_threat_4_different_events_of_one_new_pledge_at_once_write_it_once(
    live_server: str, db: Session, world: StripeWorld, pending: bool
) -> None:
    """Twelve distinct events about one subscription, concurrently: the pledge, the payment
    and each email once. With a pending pledge they queue on its row lock; without one, the
    losers of the race to insert it are retried, not answered with a 5xx."""
    patron = world.subscribe(pending=pending)
    invoice = first_invoice(world, patron)
    sub = world.subscription_dict(patron.sub.id)
    bodies = [
        event_payload(f"evt_mix_{n}", kind, obj)
        for n, (kind, obj) in enumerate(
            [
                ("invoice.paid", invoice),
                ("invoice.payment_succeeded", invoice),
                ("customer.subscription.created", sub),
                ("customer.subscription.updated", sub),
            ]
            * 3
        )
    ]
    barrier = threading.Barrier(len(bodies))

    def post(body: str) -> int:
        headers = {"Stripe-Signature": sign(body), "Content-Type": "application/json"}
        with requests.Session() as http:
            barrier.wait(timeout=30)
            return http.post(live_server + URL, data=body, headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        codes = list(pool.map(post, bodies))
    assert codes == [200] * len(bodies)
    assert count(db, StripeEvent) == len(bodies)
    assert count(db, Pledge) == 1 and count(db, Payment) == 1
    assert count(db, PledgeStatusChange) == 1
    assert email_kinds(db) == ["pledge_thanks"]


# -- threat 5: two events, one fact --------------------------------------------------------------


def test_threat_5_two_events_for_one_invoice_make_one_payment(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    invoice = first_invoice(world, patron)
    assert deliver(client, "invoice.paid", invoice, "evt_paid").status_code == 200
    assert deliver(client, "invoice.payment_succeeded", invoice, "evt_succeeded").status_code == 200
    assert deliver(client, "invoice.paid", invoice, "evt_paid_again_new_id").status_code == 200
    assert count(db, StripeEvent) == 3
    assert count(db, Payment) == 1
    assert email_kinds(db) == ["pledge_thanks"]


# -- threat 6: any order ------------------------------------------------------------------------


def _state(db: Session, user_id: int) -> dict[str, Any]:
    db.rollback()
    pledge = db.scalar(select(Pledge))
    assert pledge is not None
    payments = sorted(
        (
            p.stripe_invoice_id,
            p.status,
            p.amount,
            p.paid_at,
            p.failure_notified_attempt,
            p.receipt_sent_at is not None,
        )
        for p in db.scalars(select(Payment))
    )
    return {
        "pledge": (
            pledge.id,
            pledge.user_id,
            pledge.status,
            pledge.amount,
            pledge.currency,
            pledge.plan_id,
            pledge.stripe_subscription_id,
            pledge.cancel_at_period_end,
            pledge.current_period_end,
            pledge.started_at,
            pledge.ended_at,
        ),
        "payments": payments,
        "emails": email_kinds(db),
        "events": count(db, StripeEvent),
        "entitled": user_is_active_patron(db, user_id, clock.now()),
    }


def _reset_pledge(db: Session, pledge_row: dict[str, Any]) -> None:
    db.rollback()
    for model in (OutboundEmail, StripeEvent, PledgeStatusChange, PaymentChange, Payment, Pledge):
        db.execute(delete(model))
    db.add(Pledge(**pledge_row))
    db.commit()


@pytest.mark.slow
def test_threat_6_all_120_orders_of_a_lifecycle_end_in_the_same_state(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    # Drive one real subscription through its life in localstripe, keeping each snapshot.
    patron = world.subscribe()
    gw = world.gateway
    created = world.subscription_dict(patron.sub.id)
    paid = first_invoice(world, patron)
    gw.set_cancel_at_period_end(patron.sub.id, True)
    updated = world.subscription_dict(patron.sub.id)
    failed = world.invoice_dict(gw.simulate_failed_renewal(patron.sub).id)
    assert world.subscription_dict(patron.sub.id)["status"] == "past_due"
    gw.cancel_now(patron.sub.id)
    deleted = world.subscription_dict(patron.sub.id)
    assert deleted["status"] == "canceled" and failed["status"] == "open"
    lifecycle = [
        ("evt_1_created", "customer.subscription.created", created),
        ("evt_2_paid", "invoice.paid", paid),
        ("evt_3_updated", "customer.subscription.updated", updated),
        ("evt_4_failed", "invoice.payment_failed", failed),
        ("evt_5_deleted", "customer.subscription.deleted", deleted),
    ]
    bodies = [(event_payload(i, t, o)) for i, t, o in lifecycle]
    pending = db.get(Pledge, patron.pledge_id)
    assert pending is not None
    pledge_row = {c.key: getattr(pending, c.key) for c in Pledge.__table__.columns}

    def run(order: tuple[int, ...]) -> dict[str, Any]:
        _reset_pledge(db, pledge_row)
        for index in order:
            response = post_raw(client, bodies[index], sign(bodies[index]))
            assert response.status_code == 200, (order, response.get_data(as_text=True))
        return _state(db, patron.user.id)

    chronological = run((0, 1, 2, 3, 4))
    assert chronological["pledge"][2] == "canceled"
    # every event reads the subscription as it is now, canceled: no "update your card" mail
    assert chronological["emails"] == ["pledge_ended", "pledge_thanks"]
    assert [p[1] for p in chronological["payments"]] in (["paid", "failed"], ["failed", "paid"])
    assert chronological["events"] == 5 and chronological["entitled"] is False
    orders = list(itertools.permutations(range(5)))
    assert len(orders) == 120
    mismatches = {order: state for order in orders if (state := run(order)) != chronological}
    assert mismatches == {}


# -- threat 7: unknown customer, later known ----------------------------------------------------


def test_threat_7_an_unknown_customer_is_retried_until_known(
    app: Flask, client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    """Acknowledged at once (Stripe need not retry), kept pending with the reason, applied
    by the worker once the customer is ours."""
    patron = world.subscribe(known=False)
    sub = world.subscription_dict(patron.sub.id)
    body = event_payload("evt_early", "customer.subscription.created", sub)
    invoice_body = event_payload("evt_early_invoice", "invoice.paid", first_invoice(world, patron))
    for payload in (body, invoice_body):
        assert post_raw(client, payload, sign(payload)).status_code == 200
    assert count(db, Pledge) == 0 and count(db, Payment) == 0
    early = db.get(StripeEvent, "evt_early")
    assert early is not None and early.state == "pending" and early.next_attempt_at is not None
    assert "unknown here" in (early.last_error or "")
    # the pledge page's commit lands: the customer is ours now
    db.add(
        BillingCustomer(
            user_id=patron.user.id, stripe_customer_id=patron.customer_id, created_at=clock.now()
        )
    )
    db.commit()
    assert apply_waiting(app, db) == {"applied": 2}
    pledge = db.scalar(select(Pledge).where(Pledge.stripe_subscription_id.is_not(None)))
    assert pledge is not None and pledge.user_id == patron.user.id
    assert (pledge.status, pledge.stripe_subscription_id) == ("active", patron.sub.id)
    assert count(db, Payment) == 1 and email_kinds(db) == ["pledge_thanks"]


# -- threat 8: failure half-way -----------------------------------------------------------------


def test_threat_8_a_failure_while_applying_rolls_the_effects_back_and_keeps_the_event(
    app: Flask,
    client: FlaskClient,
    db: Session,
    world: StripeWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patron = world.subscribe()
    body = event_payload("evt_fails_once", "invoice.paid", first_invoice(world, patron))
    before = table_rows(db)
    real = records.apply_invoice
    calls = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        real(*args, **kwargs)  # its rows are flushed, then the failure
        raise RuntimeError("injected after the payment flush")

    monkeypatch.setattr(records, "apply_invoice", broken)
    received = post_raw(client, body, sign(body))
    assert received.status_code == 200  # stored: Stripe need not retry
    assert calls == [1]
    after = table_rows(db)
    assert len(after.pop("stripe_events")) == len(before.pop("stripe_events")) + 1
    assert after == before  # no effect survived
    row = db.get(StripeEvent, "evt_fails_once")
    assert row is not None and row.state == "pending" and "injected" in (row.last_error or "")
    monkeypatch.setattr(records, "apply_invoice", real)
    assert apply_waiting(app, db) == {"applied": 1}
    assert post_raw(client, body, sign(body)).get_data(as_text=True).strip() == "Duplicate."
    _one_effect(db)


# -- threat 9: the other mode ---------------------------------------------------------------


def test_threat_9_an_event_of_the_other_mode_is_refused(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    before = table_rows(db)
    response = deliver(client, "invoice.paid", first_invoice(world, patron), livemode=True)
    assert response.status_code == 400
    assert "mismatch" in response.get_data(as_text=True)
    assert table_rows(db) == before


# -- threat 10 (webhook side): a plan that is not ours ------------------------------------------


def test_threat_10_a_subscription_whose_amount_differs_from_its_plan_is_refused(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    # someone with dashboard access made plan "patron-eur-500" cost 1 cent
    world.client.v1.plans.create(
        params={
            "id": "patron-eur-500",
            "amount": 1,
            "currency": "eur",
            "interval": "month",
            "product": {"name": "Tampered"},
        }
    )
    patron = world.subscribe(amount=500, plan="patron-eur-500")
    assert patron.sub.amount == 1
    before = without_events(table_rows(db))
    for event_type, obj in (
        ("customer.subscription.created", world.subscription_dict(patron.sub.id)),
        ("invoice.paid", first_invoice(world, patron)),
    ):
        response = deliver(client, event_type, obj)
        assert response.status_code == 200, event_type  # stored, then refused for good
    assert without_events(table_rows(db)) == before
    states = db.execute(select(StripeEvent.state, StripeEvent.last_error)).all()
    assert [state for state, _ in states] == ["failed", "failed"]
    assert all("Refused" in (reason or "") for _, reason in states)
    assert db.get(Pledge, patron.pledge_id).status == "pending"  # type: ignore[union-attr]


def test_threat_10_a_foreign_plan_is_refused(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    world.client.v1.plans.create(
        params={
            "id": "gold",
            "amount": 500,
            "currency": "eur",
            "interval": "month",
            "product": {"name": "Gold"},
        }
    )
    patron = world.subscribe(plan="gold")
    before = without_events(table_rows(db))
    response = deliver(
        client, "customer.subscription.updated", world.subscription_dict(patron.sub.id)
    )
    assert response.status_code == 200
    assert without_events(table_rows(db)) == before
    assert db.scalar(select(StripeEvent.state)) == "failed"


def test_threat_41_a_signed_object_stripe_does_not_know_has_no_effect(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    """Never trust, always re-read: a correctly signed event about a subscription, invoice or
    charge Stripe does not have changes nothing, and says why."""
    patron = world.subscribe()
    snapshot = world.subscription_dict(patron.sub.id)
    snapshot["id"] = "sub_unknown_to_stripe"
    snapshot["items"]["data"][0]["plan"]["amount"] = 1
    invoice = first_invoice(world, patron) | {"id": "in_unknown_to_stripe"}
    charge = {"id": "ch_stranger", "object": "charge", "amount": 100, "amount_refunded": 100}
    before = without_events(table_rows(db))
    for event_type, obj in (
        ("customer.subscription.created", snapshot),
        ("invoice.paid", invoice),
        ("charge.refunded", charge),
    ):
        assert deliver(client, event_type, obj).status_code == 200
    assert without_events(table_rows(db)) == before
    reasons = db.scalars(select(StripeEvent.last_error).where(StripeEvent.state == "ignored"))
    assert sorted(reason.split(" ")[-1] for reason in reasons if reason) == [
        "ch_stranger", "in_unknown_to_stripe", "sub_unknown_to_stripe",
    ]  # fmt: skip


# -- threat 15: flooding ----------------------------------------------------------------------


def test_threat_15_a_two_megabyte_body_is_refused_before_anything_else(
    client: FlaskClient, db: Session
) -> None:
    before = table_rows(db)
    huge = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    assert post_raw(client, huge, sign(huge)).status_code == 413
    just_over = b"x" * (64 * 1024 + 1)
    assert post_raw(client, just_over, sign(just_over)).status_code == 413
    assert post_raw(client, huge, None).status_code == 413
    form = client.post(URL, data={"payload": "x" * (100 * 1024)})
    assert form.status_code == 413
    assert table_rows(db) == before


def test_threat_15_a_thousand_unsigned_posts_get_no_5xx(client: FlaskClient, db: Session) -> None:
    before = table_rows(db)
    bodies: list[bytes] = [b"", b"{}", b"null", b'{"id": "evt_x", "type": "invoice.paid"}']
    codes: Counter[int] = Counter()
    for n in range(1000):
        body = bodies[n % len(bodies)] + str(n).encode() * (n % 7)
        signature = None if n % 3 == 0 else f"t={int(time.time())},v1={n:064x}"
        codes[post_raw(client, body, signature).status_code] += 1
    assert codes == {400: 1000}
    assert table_rows(db) == before


# -- refunds, disputes --------------------------------------------------------------------------


def test_refunds_read_from_stripe_update_the_payment(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    """The event's own numbers are not used: the charge is read again from Stripe. (Disputes,
    which localstripe does not have, are tested against tests/pledges/fake_stripe.py.)"""
    patron = world.subscribe()
    invoice = first_invoice(world, patron)
    assert deliver(client, "invoice.paid", invoice).status_code == 200
    charge_id = invoice["charge"]["id"]
    world.client.v1.refunds.create(params={"charge": charge_id, "amount": 200})
    lying = world.charge_dict(charge_id) | {"amount_refunded": 500, "refunded": True}
    assert deliver(client, "charge.refunded", lying).status_code == 200
    payment = db.scalar(select(Payment))
    assert payment is not None
    assert (payment.status, payment.amount_refunded, payment.net) == (
        "partially_refunded",
        200,
        300,
    )
    assert user_is_active_patron(db, patron.user.id, clock.now())  # a partial refund keeps rights
    world.client.v1.refunds.create(params={"charge": charge_id, "amount": 300})
    assert deliver(client, "charge.refunded", world.charge_dict(charge_id)).status_code == 200
    db.refresh(payment)
    assert (payment.status, payment.amount_refunded, payment.net) == ("refunded", 500, 0)
    assert not user_is_active_patron(db, patron.user.id, clock.now())
    history = db.execute(
        select(PaymentChange.from_status, PaymentChange.to_status, PaymentChange.source)
        .order_by(PaymentChange.id)
    ).all()  # fmt: skip
    assert [tuple(row) for row in history] == [
        (None, "paid", "webhook"),
        ("paid", "partially_refunded", "webhook"),
        ("partially_refunded", "refunded", "webhook"),
    ]


def test_a_refund_that_comes_before_its_invoice_event_records_both(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe(pending=True)
    invoice = first_invoice(world, patron)
    charge_id = invoice["charge"]["id"]
    world.client.v1.refunds.create(params={"charge": charge_id})
    assert deliver(client, "charge.refunded", world.charge_dict(charge_id)).status_code == 200
    payment = db.scalar(select(Payment))
    assert payment is not None and (payment.status, payment.net) == ("refunded", 0)
    pledge = db.get(Pledge, patron.pledge_id)
    assert pledge is not None and pledge.status == "active"
    assert not user_is_active_patron(db, patron.user.id, clock.now())
    assert deliver(client, "invoice.paid", invoice).status_code == 200  # late: changes nothing
    db.refresh(payment)
    assert payment.status == "refunded"


# -- email: thanks first, receipts later, a notice per failed attempt, the end once -------------


def test_emails_are_queued_once_each(client: FlaskClient, db: Session, world: StripeWorld) -> None:
    patron = world.subscribe()
    gw = world.gateway
    first = first_invoice(world, patron)
    for _ in range(2):
        assert deliver(client, "invoice.paid", first).status_code == 200
        assert deliver(client, "invoice.payment_succeeded", first).status_code == 200
    assert email_kinds(db) == ["pledge_thanks"]
    renewal = world.invoice_dict(gw.simulate_renewal(patron.sub).id)
    for _ in range(2):
        assert deliver(client, "invoice.payment_succeeded", renewal).status_code == 200
    assert email_kinds(db) == ["pledge_receipt", "pledge_thanks"]
    failed = world.invoice_dict(gw.simulate_failed_renewal(patron.sub).id)
    for _ in range(2):
        assert deliver(client, "invoice.payment_failed", failed).status_code == 200
    assert email_kinds(db) == ["pledge_payment_failed", "pledge_receipt", "pledge_thanks"]
    pledge = db.get(Pledge, patron.pledge_id)
    assert pledge is not None and pledge.status == "past_due"
    # the event's own attempt count is not believed: Stripe's invoice still says attempt 1
    claimed_second = failed | {"attempt_count": 2}
    assert deliver(client, "invoice.payment_failed", claimed_second).status_code == 200
    assert email_kinds(db).count("pledge_payment_failed") == 1
    gw.cancel_now(patron.sub.id)
    deleted = world.subscription_dict(patron.sub.id)
    for _ in range(2):
        assert deliver(client, "customer.subscription.deleted", deleted).status_code == 200
    assert deliver(client, "customer.subscription.updated", deleted).status_code == 200
    kinds = email_kinds(db)
    assert kinds.count("pledge_ended") == 1
    db.rollback()
    ended = db.scalar(select(OutboundEmail).where(OutboundEmail.kind == "pledge_ended"))
    assert ended is not None and ended.to_address == patron.user.email
    assert "€5" in ended.text_body
    notice = db.scalar(select(OutboundEmail).where(OutboundEmail.kind == "pledge_payment_failed"))
    assert notice is not None and "http://patrons.test/pledge" in notice.text_body
    # sent at once after the commit (tests send inline, to instance/outbox)
    assert {m.status for m in db.scalars(select(OutboundEmail))} == {"sent"}


def test_a_stale_snapshot_never_reopens_an_ended_pledge(
    client: FlaskClient, db: Session, world: StripeWorld
) -> None:
    patron = world.subscribe()
    created = world.subscription_dict(patron.sub.id)
    world.gateway.cancel_now(patron.sub.id)
    assert (
        deliver(
            client, "customer.subscription.deleted", world.subscription_dict(patron.sub.id)
        ).status_code
        == 200
    )
    api_base = world.app.config["SETTINGS"].stripe_api_base
    requests.delete(f"{api_base}/_config/data", timeout=5).raise_for_status()
    # Stripe has forgotten the subscription; an old copy of it arrives late
    assert deliver(client, "customer.subscription.created", created).status_code == 200
    pledge = db.get(Pledge, patron.pledge_id)
    assert pledge is not None and pledge.status == "canceled"
    assert email_kinds(db) == ["pledge_ended"]


# -- localstripe's own deliveries --------------------------------------------------------------


def test_localstripes_real_deliveries_are_accepted(
    client: FlaskClient, db: Session, world: StripeWorld, webhook_inbox: Any
) -> None:
    patron = world.subscribe()
    for event_type in (
        "invoice.payment_succeeded",
        "customer.subscription.created",
        "invoice.created",
        "payment_intent.succeeded",
    ):
        body, signature = webhook_inbox.wait_for(event_type)
        response = post_raw(client, body, signature)
        assert response.status_code == 200, (event_type, response.get_data(as_text=True))
    pledge = db.get(Pledge, patron.pledge_id)
    assert pledge is not None and pledge.status == "active"
    assert count(db, Payment) == 1 and email_kinds(db) == ["pledge_thanks"]
    world.gateway.cancel_now(patron.sub.id)
    body, signature = webhook_inbox.wait_for("customer.subscription.deleted")
    assert post_raw(client, body, signature).status_code == 200
    db.refresh(pledge)
    assert pledge.status == "canceled"
    assert email_kinds(db) == ["pledge_ended", "pledge_thanks"]
    tampered = body.replace(b'"canceled"', b'"active"', 1)
    assert post_raw(client, tampered, signature).status_code == 400
    for body, signature in list(webhook_inbox.inbox):  # every delivery verifies
        assert post_raw(client, body, signature).status_code == 200
