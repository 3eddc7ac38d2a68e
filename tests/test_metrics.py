"""GET /metrics (patrons/metrics.py): who may read it, what it counts, what it reads from the
database, and several processes added up in prometheus-client's multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from patrons import create_app
from tests.conftest import make_settings
from tests.factories import make_patron

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "metrics-token-0123456789abcdef"
OUTSIDE = {"REMOTE_ADDR": "203.0.113.7"}


@pytest.fixture
def token_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(database_url, tmp_path / "instance", metrics_token=TOKEN))
    yield app
    app.extensions["db.engine"].dispose()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(text: str, name: str, **labels: str) -> float:
    return _samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


# -- who may read it -------------------------------------------------------------------------


def test_loopback_without_a_token_may_read_it(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert response.headers["Cache-Control"] == "no-store"
    assert "patrons_http_requests_total" in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
def test_from_outside_without_the_token_it_is_not_found(token_app, headers):
    response = token_app.test_client().get("/metrics", headers=headers, environ_base=OUTSIDE)
    assert response.status_code == 404
    assert "patrons_" not in response.text


def test_from_outside_with_the_token_it_is_served(token_app):
    response = token_app.test_client().get(
        "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, environ_base=OUTSIDE
    )
    assert response.status_code == 200 and "patrons_active_patrons" in response.text


def test_without_a_token_configured_outside_is_never_served(app):
    response = app.test_client().get(
        "/metrics", headers={"Authorization": "Bearer "}, environ_base=OUTSIDE
    )
    assert response.status_code == 404


@pytest.mark.parametrize("hops", [0, 1])
def test_a_request_through_the_proxy_is_not_loopback(database_url, tmp_path, hops):
    """nginx on this machine connects from 127.0.0.1: with PROXY_HOPS=0 the app sees that
    address, with PROXY_HOPS=1 the client's (or, forged, 127.0.0.1). Either way the proxy's
    X-Forwarded-For header means "from outside"."""
    app = create_app(make_settings(database_url, tmp_path / "instance", proxy_hops=hops))
    client = app.test_client()
    for forwarded in ("203.0.113.7", "127.0.0.1", "127.0.0.1, 203.0.113.7"):
        response = client.get("/metrics", headers={"X-Forwarded-For": forwarded})
        assert response.status_code == 404, forwarded
    assert client.get("/metrics", headers={"X-Real-IP": "127.0.0.1"}).status_code == 404
    assert client.get("/metrics").status_code == 200  # straight from loopback
    ipv6 = client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"})
    assert ipv6.status_code == 200
    app.extensions["db.engine"].dispose()


# -- what it says ----------------------------------------------------------------------------


def test_requests_are_counted_by_route_and_status(client):
    before = client.get("/metrics").text
    for _ in range(3):
        client.get("/healthz", buffered=True)
    client.get("/no/such/thing", buffered=True)
    after = client.get("/metrics").text
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    assert (
        _value(after, "patrons_http_requests_total", **labels)
        - _value(before, "patrons_http_requests_total", **labels)
        == 3
    )
    counted = _value(after, "patrons_http_request_duration_seconds_count", **labels)
    assert counted - _value(before, "patrons_http_request_duration_seconds_count", **labels) == 3
    missing = {"method": "GET", "route": "unmatched", "status": "404"}
    assert (
        _value(after, "patrons_http_requests_total", **missing)
        - _value(before, "patrons_http_requests_total", **missing)
        == 1
    )
    assert "/no/such/thing" not in after  # the raw path never becomes a label


def test_webhook_deliveries_are_counted_by_outcome(client):
    labels = {"type": "unknown", "outcome": "not_configured"}
    before = _value(client.get("/metrics").text, "patrons_webhook_events_total", **labels)
    client.post("/stripe/webhook", data=b"{}", headers={"Stripe-Signature": "t=1"})
    after = _value(client.get("/metrics").text, "patrons_webhook_events_total", **labels)
    assert after - before == 1


def test_the_database_figures(client, db):
    make_patron(db)  # an active pledge of 5.00 EUR a month, paid
    make_patron(db, status="canceled")
    text = client.get("/metrics").text
    assert _value(text, "patrons_active_patrons") == 1
    assert _value(text, "patrons_mrr", currency="EUR") == 5.0
    assert _value(text, "patrons_pledges", status="active", currency="EUR") == 1
    assert _value(text, "patrons_pledges", status="canceled", currency="EUR") == 1
    assert _value(text, "patrons_votes_cast") == 0
    assert _value(text, "patrons_mail_queue_depth") >= 0
    assert ("patrons_stripe_event_queue_oldest_seconds", ()) in _samples(text)


# -- several processes -----------------------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from patrons import create_app
    from tests.conftest import make_settings
    app = create_app(make_settings(sys.argv[1], Path(sys.argv[2])))
    client = app.test_client()
    for _ in range(int(sys.argv[3])):
        client.get("/healthz", buffered=True)
    if len(sys.argv) > 4:
        sys.stdout.write(client.get("/metrics").text)
    """
)


def test_multiprocess_mode_adds_up_the_workers(database_url, tmp_path):
    """Two "gunicorn workers" (processes) count into one PROMETHEUS_MULTIPROC_DIR; a scrape of
    a third adds them up, and the database figures are not multiplied."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "PYTHONPATH": str(ROOT)}

    def run(count: int, scrape: bool = False) -> str:
        args = [sys.executable, "-c", _WORKER, database_url, str(tmp_path / "instance"),
                str(count)] + (["scrape"] if scrape else [])  # fmt: skip
        done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=120, check=True)  # fmt: skip
        return done.stdout

    run(2)
    run(3)
    text = run(0, scrape=True)
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    assert _value(text, "patrons_http_requests_total", **labels) == 5
    assert _value(text, "patrons_http_request_duration_seconds_count", **labels) == 5
    assert len(list(folder.glob("*.db"))) >= 3  # each process wrote its own files
    assert [n for (n, _) in _samples(text) if n == "patrons_active_patrons"] == [
        "patrons_active_patrons"
    ]
