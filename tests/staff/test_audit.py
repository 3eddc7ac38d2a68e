"""Staff actions on money or people (patrons/staff/*): a fresh second factor (15 minutes)
for each, a line in the audit log for each, staff's audit page (/staff/audit) with its
filters and pages, and the log's retention (`flask prune-audit`)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from types import SimpleNamespace

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.core import clock, extensions
from patrons.models import AuditEvent, Pledge, StripeEvent, User
from patrons.staff import simulate
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_patron, make_staff, make_user

FRESH_ROUTES = {
    "staff.members",
    "staff.reports.member",
    "staff.reports.table_csv",
    "staff.stripe_events.retry_event",
    "staff.simulate.renewal",
    "staff.simulate.failed_renewal",
    "accounts.two_factor_setup",
    "accounts.two_factor_new_codes",
}


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 6, 12, 0, 10, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def move(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(clock, "now", fake.now)
    extensions.limiter.reset()
    return fake


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulations' view wiring without a Stripe: a gateway that says it is offline and
    services that answer at once (the simulations themselves: tests/pledges)."""
    monkeypatch.setattr(simulate, "gateway", lambda: SimpleNamespace(offline=True))
    monkeypatch.setattr(simulate, "simulate_renewals", lambda db, gw: 2)
    monkeypatch.setattr(simulate, "simulate_failed_renewal",
                        lambda db, gw, pledge_id: SimpleNamespace(id=pledge_id, status="past_due",
                                                                  user_id=None))  # fmt: skip


@pytest.fixture
def world(db: Session) -> SimpleNamespace:
    staff = make_staff(db)
    patron = make_patron(db, email="patron@example.org")
    db.add(StripeEvent(id="evt_failed", type="invoice.paid", received_at=clock.now(),
                       object_id="in_x", state="failed", attempts=12, last_error="x"))  # fmt: skip
    db.commit()
    pledge_id = db.scalars(select(Pledge.id).where(Pledge.user_id == patron.id)).one()
    return SimpleNamespace(staff=staff, patron=patron, pledge_id=pledge_id)


def requests_for(world: SimpleNamespace) -> dict[str, tuple[str, str, dict[str, str]]]:
    """endpoint -> (method, URL, form fields) of each staff action that asks again."""
    return {
        "staff.members": ("GET", "/staff/members?q=patron", {}),
        "staff.reports.member": ("GET", f"/staff/members/{world.patron.id}", {}),
        "staff.reports.table_csv": ("GET", "/staff/reports/mrr.csv?from=2026-01-01", {}),
        "staff.stripe_events.retry_event": ("POST", "/staff/stripe-events/evt_failed/retry", {}),
        "staff.simulate.renewal": ("POST", "/staff/simulate/renewal", {}),
        "staff.simulate.failed_renewal": (
            "POST",
            f"/staff/simulate/failed-renewal/{world.pledge_id}",
            {"note": "a b&c"},
        ),  # fmt: skip
    }


def send(client: FlaskClient, method: str, url: str, fields: dict[str, str]):  # type: ignore[no-untyped-def]
    if method == "GET":
        return client.get(url)
    return client.post(url, data={**fields, "csrf_token": csrf_token(client)})


def hidden_fields(html: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    found += re.findall(r'<input id="[^"]*" name="([^"]+)" type="hidden" value="([^"]*)"', html)
    return {unescape(k): unescape(v) for k, v in found}


def test_the_marked_routes_are_the_ones_on_money_or_people(app: Flask) -> None:
    marked = {
        endpoint
        for endpoint, view in app.view_functions.items()
        if getattr(view, "fresh_second_factor", False)
    }
    assert marked == FRESH_ROUTES


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("endpoint", sorted(r for r in FRESH_ROUTES if r.startswith("staff.")))
def test_each_staff_action_asks_again_after_fifteen_minutes(
    app: Flask, db: Session, world: SimpleNamespace, now: Clock, endpoint: str
) -> None:
    method, url, fields = requests_for(world)[endpoint]
    client = app.test_client()
    login(client, world.staff.email, PASSWORD)
    now.move(minutes=14)
    assert send(client, method, url, fields).status_code in (200, 303)  # fresh: it runs
    now.move(minutes=2)  # 16 minutes after the sign-in
    before = db.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    asked = send(client, method, url, fields)
    if method == "GET":
        assert asked.status_code == 302
        assert asked.headers["Location"].startswith("/account/confirm?next=")
        page = client.get(asked.headers["Location"])
        assert page.status_code == 200 and "Confirm it is you" in page.get_data(as_text=True)
        back = client.post("/account/confirm", data={
            "proof": PASSWORD, "next": url, "csrf_token": csrf_token(client)})  # fmt: skip
        assert back.status_code == 303 and back.headers["Location"] == url
    else:
        assert asked.status_code == 401
        html = asked.get_data(as_text=True)
        assert "Confirm it is you" in html and 'type="password"' in html
        kept = hidden_fields(html)
        assert {k: v for k, v in kept.items() if k.startswith("keep-")} == {
            f"keep-{k}": v for k, v in fields.items()
        }
        wrong = client.post("/account/confirm", data={**kept, "proof": "not it"})
        assert wrong.status_code == 400 and "not your password" in wrong.get_data(as_text=True)
        again = client.post("/account/confirm", data={**kept, "proof": PASSWORD})
        assert again.status_code == 200
        resend = again.get_data(as_text=True)
        assert f'action="{url}"' in resend
        assert {k: v for k, v in hidden_fields(resend).items() if k != "csrf_token"} == fields
    db.rollback()
    new = db.scalars(select(AuditEvent).where(AuditEvent.id > (before or 0))).all()
    assert not [e for e in new if e.kind.startswith("staff.")]  # nothing done while asked
    done = send(client, method, url, fields)  # fresh again for 15 minutes
    assert done.status_code in (200, 303), done.status_code
    db.rollback()
    last = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert last is not None and last.kind.startswith("staff.")
    assert last.actor_id == world.staff.id


def test_staff_with_two_factor_confirm_with_a_code_used_once(
    app: Flask, db: Session, world: SimpleNamespace, now: Clock
) -> None:
    secret = pyotp.random_base32()
    staff = db.get(User, world.staff.id)
    assert staff is not None
    staff.totp_secret, staff.two_factor_enabled_at = secret, now.at
    db.commit()
    client = app.test_client()
    login(client, staff.email, PASSWORD)  # asks for the code
    client.post("/login/two-factor", data={"code": pyotp.TOTP(secret).at(now.at),
                                           "csrf_token": csrf_token(client)})  # fmt: skip
    assert client.get("/staff/reports/mrr.csv").status_code == 200
    now.move(minutes=16)
    url = "/staff/reports/mrr.csv"
    assert client.get(url).headers["Location"].startswith("/account/confirm?next=")
    page = client.get("/account/confirm?next=" + url).get_data(as_text=True)
    assert "authenticator app" in page and 'type="password"' not in page
    with_password = client.post("/account/confirm", data={
        "proof": PASSWORD, "next": url, "csrf_token": csrf_token(client)})  # fmt: skip
    assert with_password.status_code == 400  # two-factor on: the password is not enough
    code = pyotp.TOTP(secret).at(now.at)
    ok = client.post("/account/confirm", data={
        "proof": code, "next": url, "csrf_token": csrf_token(client)})  # fmt: skip
    assert ok.status_code == 303 and client.get(url).status_code == 200
    now.move(minutes=16)
    replay = client.post("/account/confirm", data={
        "proof": code, "next": url, "csrf_token": csrf_token(client)})  # fmt: skip
    assert replay.status_code == 400


def test_the_audit_page_lists_staff_actions_with_filters_and_pages(
    app: Flask, db: Session, world: SimpleNamespace, now: Clock
) -> None:
    other = make_staff(db, email="second@example.org")
    reader = make_user(db, email="reader@example.org")
    client = app.test_client()
    login(client, world.staff.email, PASSWORD)
    client.get("/staff/reports/mrr.csv?from=2026-01-01")
    client.get(f"/staff/members/{world.patron.id}")
    login(app.test_client(), reader.email, PASSWORD)  # a reader's sign-in: not a staff action
    for n in range(55):
        db.add(AuditEvent(actor_id=other.id, kind="staff.members", ip="192.0.2.1",
                          detail=json.dumps({"q": f"q{n}"}), user_agent="",
                          created_at=now.at - timedelta(days=1, minutes=n)))  # fmt: skip
    db.commit()

    first = unescape(client.get("/staff/audit").get_data(as_text=True))
    assert "Downloaded a report table (CSV)" in first and "table:</small> mrr" in first
    assert "Opened a member’s record" in first and "patron@example.org" in first
    assert "Signed in" not in first and "reader@example.org" not in first
    assert first.count("<tr>") == 1 + 50  # the header and one page
    assert 'rel="next" href="/staff/audit?page=2"' in first
    second = client.get("/staff/audit?page=2").get_data(as_text=True)
    assert second.count("<tr>") == 1 + 7

    mine = unescape(client.get(f"/staff/audit?actor={world.staff.id}").get_data(as_text=True))
    assert mine.count("<tr>") == 1 + 2 and "second@example.org</td>" not in mine
    exports = unescape(client.get("/staff/audit?kind=staff.export").get_data(as_text=True))
    assert exports.count("<tr>") == 1 + 1 and "table:</small> mrr" in exports
    for odd in ("?page=0", "?page=-3", "?page=x", "?page=99999999999", "?actor=x",
                "?actor=99999999999", "?kind=" + "k" * 500):  # fmt: skip
        assert client.get("/staff/audit" + odd).status_code == 200, odd


def test_only_staff_see_the_audit_page(app: Flask, db: Session, world: SimpleNamespace) -> None:
    reader = app.test_client()
    login(reader, make_user(db).email, PASSWORD)
    assert reader.get("/staff/audit").status_code == 403
    anonymous = app.test_client().get("/staff/audit")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")


def test_prune_audit_deletes_only_events_older_than_the_setting(
    app: Flask, db: Session, now: Clock
) -> None:
    for days in (400, 366, 364, 0):
        db.add(AuditEvent(kind="sign_in", ip="", user_agent="",
                          created_at=now.at - timedelta(days=days)))  # fmt: skip
    db.commit()
    result = app.test_cli_runner().invoke(args=["prune-audit"])
    assert result.exit_code == 0 and "Deleted 2 audit events older than 365 days" in result.output
    db.rollback()
    ages = sorted((now.at - c).days for c in db.scalars(select(AuditEvent.created_at)))
    assert ages == [0, 364]
    result = app.test_cli_runner().invoke(args=["prune-audit", "--keep-days", "30"])
    assert "Deleted 1 audit events" in result.output
    db.rollback()
    assert [(now.at - c).days for c in db.scalars(select(AuditEvent.created_at))] == [0]
    assert app.test_cli_runner().invoke(args=["prune-audit", "--keep-days", "0"]).exit_code == 2


def test_making_staff_on_the_command_line_is_recorded(app: Flask, db: Session) -> None:
    member = make_user(db, email="member@example.org")
    result = app.test_cli_runner().invoke(args=["create-staff", "member@example.org"])
    assert result.exit_code == 0, result.output
    db.rollback()
    event = db.scalars(select(AuditEvent).where(AuditEvent.kind == "staff.role")).one()
    assert event.user_id == member.id and event.actor_id is None
    assert json.loads(event.detail or "{}") == {"via": "create-staff", "created": False}
    client = app.test_client()
    login(client, "member@example.org", PASSWORD)
    page = unescape(client.get("/staff/audit").get_data(as_text=True))
    assert "Made an account staff" in page and "the command line, or a deleted account" in page
