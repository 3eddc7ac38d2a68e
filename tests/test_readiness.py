"""/readyz's body (queues, worker, degraded), and the database going away under the app."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from patrons.core import clock
from patrons.models import OutboundEmail, StripeEvent
from patrons.models.pledges import EventState
from tests.conftest import make_settings
from tests.factories import make_article
from tests.helpers import ON_POSTGRES, extra_app


def _queued_mail(minutes_ago: int, status: str = "queued") -> OutboundEmail:
    at = clock.now() - timedelta(minutes=minutes_ago)
    return OutboundEmail(
        to_address="reader@example.org", subject="s", text_body="t", html_body="h",
        kind="test", status=status, created_at=at, next_attempt_at=at,
    )  # fmt: skip


def test_readyz_tells_the_queues_and_their_oldest_age(client, db):
    db.add_all([_queued_mail(10), _queued_mail(3), _queued_mail(60, status="sent")])
    db.add_all(
        [
            StripeEvent(id="evt_old", type="invoice.paid", received_at=clock.now()
                        - timedelta(minutes=20), state=EventState.PENDING),
            StripeEvent(id="evt_done", type="invoice.paid", received_at=clock.now()
                        - timedelta(hours=5), state=EventState.APPLIED),
        ]
    )  # fmt: skip
    db.commit()
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready" and body["database"] == "up"
    assert body["redis"] == "not configured" and body["degraded"] is False
    assert body["mail_queue"]["unsent"] == 2
    assert 600 <= body["mail_queue"]["oldest_seconds"] < 3600  # the queued one, not the sent
    assert body["stripe_events"]["pending"] == 1
    assert 1200 <= body["stripe_events"]["oldest_seconds"] < 5 * 3600
    assert "worker" in body and body["worker"] is None  # no heartbeat yet
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_tells_the_last_worker_heartbeat(client, db):
    from patrons.worker import leases

    now = clock.now()
    leases.beat(db, "host:1", started_at=now - timedelta(hours=1), now=now - timedelta(seconds=90))
    body = client.get("/readyz").get_json()
    assert 89 <= body["worker"]["heartbeat_age_seconds"] <= 100


def test_empty_queues_have_no_age(client):
    body = client.get("/readyz").get_json()
    assert body["mail_queue"] == {"unsent": 0, "oldest_seconds": None}
    assert body["stripe_events"] == {"pending": 0, "oldest_seconds": None}


def test_database_unreachable_is_a_503_page_with_retry_after(tmp_path):
    settings = make_settings("postgresql+psycopg://postgres@127.0.0.1:1/x", tmp_path / "i")
    with extra_app(settings, empty=False) as app:
        client = app.test_client()
        page = client.get("/")
        as_json = client.get("/", headers={"Accept": "application/json"})
        ready, live = client.get("/readyz"), client.get("/healthz")
    assert page.status_code == 503 and page.headers["Retry-After"] == "30"
    assert "briefly unavailable" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"].startswith(("no-store", "private"))
    assert as_json.status_code == 503 and as_json.get_json()["ok"] is False
    assert ready.status_code == 503 and ready.get_json()["database"] == "down"
    assert ready.get_json()["mail_queue"] is None
    assert live.status_code == 200


@pytest.mark.skipif(not ON_POSTGRES, reason="pg_terminate_backend: PostgreSQL only")
def test_connections_killed_by_postgresql_are_replaced_without_a_restart(app, client, db):
    article = make_article(db)
    for _ in range(3):  # a few pooled connections, each used
        assert client.get(f"/articles/{article.slug}?n=1").status_code == 200
        assert client.get("/readyz").status_code == 200
    db.close()  # back to the pool with the others: all of them are killed
    admin = create_engine(app.config["SETTINGS"].database_url, poolclass=NullPool)
    with admin.begin() as conn:  # another connection, as an operator's or a restart
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    admin.dispose()
    assert killed >= 1  # the app's pooled connections
    for path in (f"/articles/{article.slug}?n=2", "/readyz", "/support", "/"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:300])
