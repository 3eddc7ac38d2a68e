"""`GET /metrics`: Prometheus's text format (prometheus-client), for the operator's scraper.

Who may read it: a request with `Authorization: Bearer <METRICS_TOKEN>`, or one made from
loopback (127.0.0.1, ::1) straight to the app server. A request that came through a proxy
(it carries X-Forwarded-For, Forwarded or X-Real-IP) never counts as loopback, whatever
PROXY_HOPS says, so nginx on the same machine does not open it to the world. Anyone else gets
the site's ordinary 404 page: the route is not advertised.

What it holds:
- counted by each process (`patrons_http_requests_total`, `patrons_http_request_duration_seconds`
  by method, route (the URL rule, "unmatched" for a 404) and status; `patrons_webhook_events_total`
  by type and outcome). With several gunicorn workers set PROMETHEUS_MULTIPROC_DIR to an empty
  folder (prometheus-client's multiprocess mode): each worker writes its counts there and a
  scrape of any worker adds them all up.
- read from the database at each scrape (a custom collector, so never multiplied by the
  number of workers): the mail queue and the Stripe event queue (depth and oldest age), the
  stored Stripe events by type and state, pledges by status and currency, active patrons
  (pledges/entitlement.py), MRR by currency (the reports' definition:
  reports/queries.active_pledges_now) and votes cast.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.core import clock, signals
from patrons.core.config import Settings
from patrons.core.db import session as request_session
from patrons.core.extensions import limiter
from patrons.core.logs import OBSERVERS_KEY, Finished
from patrons.models import OutboundEmail, Pledge, StripeEvent, Vote
from patrons.models.pledges import EventState
from patrons.pledges.entitlement import active_patron_ids
from patrons.reports.queries import active_pledges_now

bp = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


class _Counters:
    """The per-process metrics, made once per process (prometheus-client keys them by name)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "patrons_http_requests",
            "HTTP requests answered, by method, route (URL rule) and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "patrons_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route (URL rule) and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "patrons_webhook_events",
            "Stripe webhook deliveries answered, by event type and outcome.",
            ["type", "outcome"],
            registry=self.registry,
        )


_counters: _Counters | None = None


def counters() -> _Counters:
    global _counters  # noqa: PLW0603  (one set per process, made on first use)
    if _counters is None:
        _counters = _Counters()
    return _counters


def _observe_request(done: Finished) -> None:
    labels = (done.method, done.route or "unmatched", str(done.status))
    c = counters()
    c.requests.labels(*labels).inc()
    c.latency.labels(*labels).observe(done.duration)


def _count_webhook(sender: object, **info: Any) -> None:
    counters().webhooks.labels(str(info.get("type")), str(info.get("outcome"))).inc()


# -- what the database says, at scrape time --------------------------------------------------


class DatabaseCollector(Collector):
    """Gauges computed from the database when scraped."""

    def __init__(self, db: Session, settings: Settings, now: datetime) -> None:
        self.db, self.settings, self.now = db, settings, now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        db, now = self.db, self.now
        yield from self._queue(
            "patrons_mail_queue",
            "outgoing messages waiting to be sent",
            select(func.count(), func.min(OutboundEmail.created_at)).where(
                OutboundEmail.status == "queued"
            ),
        )
        yield from self._queue(
            "patrons_stripe_event_queue",
            "stored Stripe events waiting to be applied",
            select(func.count(), func.min(StripeEvent.received_at)).where(
                StripeEvent.state == EventState.PENDING
            ),
        )
        events = GaugeMetricFamily(
            "patrons_stripe_events",
            "Stored Stripe events by type and state (pending, applied, ignored, failed).",
            labels=["type", "state"],
        )
        for type_, state, count in db.execute(
            select(StripeEvent.type, StripeEvent.state, func.count()).group_by(
                StripeEvent.type, StripeEvent.state
            )
        ):
            events.add_metric([type_, state], count)
        yield events
        pledges = GaugeMetricFamily(
            "patrons_pledges", "Pledges by status and currency.", labels=["status", "currency"]
        )
        for status, currency, count in db.execute(
            select(Pledge.status, Pledge.currency, func.count()).group_by(
                Pledge.status, Pledge.currency
            )
        ):
            pledges.add_metric([status, currency], count)
        yield pledges
        grace = self.settings.pledge_grace_days
        active = db.scalar(
            select(func.count()).select_from(active_patron_ids(now, grace).subquery())
        )
        yield GaugeMetricFamily(
            "patrons_active_patrons", "Readers with a patron's rights now.", value=active or 0
        )
        mrr: dict[str, int] = {}
        for row in active_pledges_now(db, now, grace):
            mrr[row.currency] = mrr.get(row.currency, 0) + int(row.amount) * int(row.patrons)
        family = GaugeMetricFamily(
            "patrons_mrr",
            "Monthly recurring revenue of the active patrons, in major units, by currency.",
            labels=["currency"],
        )
        for currency, minor in sorted(mrr.items()):
            family.add_metric([currency], minor / 100)
        yield family
        votes = db.scalar(select(func.count()).select_from(Vote))
        yield GaugeMetricFamily("patrons_votes_cast", "Votes cast (all rounds).", value=votes or 0)

    def _queue(self, name: str, what: str, query: Any) -> Iterator[GaugeMetricFamily]:
        depth, oldest = self.db.execute(query).one()
        age = 0.0 if oldest is None else max(0.0, (self.now - oldest).total_seconds())
        yield GaugeMetricFamily(f"{name}_depth", f"How many {what}.", value=depth)
        yield GaugeMetricFamily(
            f"{name}_oldest_seconds", f"Age of the oldest of the {what} (0: none).", value=age
        )


# -- the route -------------------------------------------------------------------------------


def _from_loopback() -> bool:
    """A request made on this machine straight to the app server, not through a proxy."""
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        addr = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool(addr.is_loopback or (mapped is not None and mapped.is_loopback))


def _bearer_ok(token: str | None) -> bool:
    if not token:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("latin-1", "replace"), token.encode())


@bp.get("/metrics")
@limiter.exempt
def metrics() -> Response:
    settings: Settings = current_app.config["SETTINGS"]
    if not (_bearer_ok(settings.metrics_token) or _from_loopback()):
        abort(404)
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]  # prometheus-client leaves __init__ unannotated
    else:
        registry = counters().registry
    gauges = CollectorRegistry(auto_describe=False)
    gauges.register(DatabaseCollector(request_session, settings, clock.now()))
    body = generate_latest(registry) + generate_latest(gauges)
    request_session.rollback()  # read only: end the transaction the gauges opened
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})  # fmt: skip


def register(app: Flask) -> None:
    """/metrics, and the counting: each finished request (core/logs.py's access log tells
    it) and each webhook delivery (core/signals.py)."""
    counters()
    app.extensions.setdefault(OBSERVERS_KEY, []).append(_observe_request)
    signals.webhook_handled.connect(_count_webhook)
    app.register_blueprint(bp)
