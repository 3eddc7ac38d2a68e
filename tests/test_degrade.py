"""Redis stopped and started again under a running app: readers never notice.

Each test starts its own redis-server on a free port (never the machine's own), points an app
at it with REDIS_URL, and stops and restarts it. Skipped when `redis-server` is not installed
(Debian: `apt-get install redis-server`); REQUIRE_REDIS=1 makes that a failure instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from patrons.core import degraded
from patrons.core.config import Settings
from tests.conftest import csrf_token, make_settings
from tests.factories import PASSWORD, make_article, make_user
from tests.helpers import extra_app

REDIS_SERVER = shutil.which("redis-server")
DEADLINE = 90.0  # seconds to wait for a server to start, or for the app to use Redis again


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server of this test's own, without persistence, on one port for its life."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary, self.workdir, self.port = binary, workdir, _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def keys(self, pattern: str) -> list[str]:
        return [k.decode() for k in self.client().keys(pattern)]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail("REQUIRE_REDIS=1 but redis-server is not installed")
        pytest.skip(
            "redis-server is not installed (Debian: apt-get install redis-server); "
            "REQUIRE_REDIS=1 makes this a failure"
        )
    server = RedisServer(REDIS_SERVER, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_settings(database_url: str, tmp_path: Path, redis_server: RedisServer) -> Settings:
    return make_settings(database_url, tmp_path / "instance", redis_url=redis_server.url)


@pytest.fixture
def redis_app(redis_settings: Settings) -> Iterator[Flask]:
    degraded.reset()
    with extra_app(redis_settings) as app:
        yield app
    degraded.reset()


@pytest.fixture
def rdb(redis_app: Flask) -> Iterator[Session]:
    """The `db` fixture's session, from this app (the `db` fixture would make another app,
    and Flask-Limiter, one object for the process, would count in that app's storage)."""
    session = redis_app.extensions["db.sessionmaker"]()
    yield session
    session.close()


def _sign_in(client: FlaskClient, email: str, password: str) -> int:
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    return client.post("/login", data=data).status_code


def _ask_reset(client: FlaskClient, n: int) -> int:
    data = {"email": f"nobody{n}@example.org", "csrf_token": csrf_token(client)}
    return client.post("/reset", data=data).status_code


def _wrong_passwords_until_refused(client: FlaskClient, tag: str) -> list[int]:
    """Wrong passwords from one address, each for a different unknown email (so only the
    per-address limit, 5 a minute, counts): the statuses until the first refusal."""
    statuses = []
    for n in range(8):
        statuses.append(_sign_in(client, f"{tag}{n}@example.org", "wrong password"))
        if statuses[-1] == 429:
            break
    return statuses


def _readers_pages_work(app: Flask, slug: str, email: str) -> None:
    anonymous = app.test_client()
    for path in (f"/articles/{slug}", "/support", "/", "/login"):
        response = anonymous.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:300])
    reader = app.test_client()
    assert _sign_in(reader, email, PASSWORD) == 302
    assert reader.get(f"/articles/{slug}").status_code == 200
    assert reader.get("/account").status_code == 200


def test_with_redis_up_limits_and_caches_live_in_redis(redis_app, redis_server, rdb):
    article, user = make_article(rdb), make_user(rdb)
    _readers_pages_work(redis_app, article.slug, user.email)
    client = redis_app.test_client()
    assert _wrong_passwords_until_refused(client, "up") == [400] * 5 + [429]
    assert [_ask_reset(client, n) for n in range(6)] == [200] * 5 + [429]
    assert redis_server.keys("*patrons-guessing*"), "the sign-in limits are counted in Redis"
    assert redis_server.keys("*patrons-limits*"), "Flask-Limiter's limits are kept in Redis"
    assert redis_server.keys("patrons:*"), "the caches are in Redis"
    body = redis_app.test_client().get("/readyz").get_json()
    assert body["redis"] == "up" and body["degraded"] is False


def test_redis_stopped_then_started_again(redis_app, redis_server, rdb, caplog, monkeypatch):
    # not a timing test: however slow this machine, one warning for the whole outage
    monkeypatch.setattr(degraded, "WARN_EVERY", 3600.0)
    article, user = make_article(rdb), make_user(rdb)
    _readers_pages_work(redis_app, article.slug, user.email)  # fills the caches in Redis

    redis_server.stop()
    with caplog.at_level(logging.INFO):
        for _ in range(3):  # many requests, one warning
            _readers_pages_work(redis_app, article.slug, user.email)
        client = redis_app.test_client()
        # the limits still hold, in this process's memory
        assert _wrong_passwords_until_refused(client, "down") == [400] * 5 + [429]
        assert [_ask_reset(client, n) for n in range(6)] == [200] * 5 + [429]
        ready = client.get("/readyz")
        live = client.get("/healthz")
    assert ready.status_code == 200, ready.get_data(as_text=True)
    body = ready.get_json()
    assert body["database"] == "up" and body["redis"] == "down" and body["degraded"] is True
    assert set(body["degraded_parts"]) >= {"cache", "rate limits", "sign-in limits"}
    assert body["degraded_since"]
    assert ready.headers["Cache-Control"] == "no-store"
    assert live.status_code == 200
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    redis_warnings = [r for r in warnings if "Redis unreachable" in r.getMessage()]
    assert len(redis_warnings) == 1, [r.getMessage() for r in warnings]
    assert not [r for r in warnings if r.name == "flask-limiter"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    redis_server.start()  # the same port, empty: nothing kept from before
    caplog.clear()
    client = redis_app.test_client()
    deadline, n = time.monotonic() + DEADLINE, 0
    while True:
        n += 1
        client.get("/support")
        _ask_reset(client, 100 + n)  # Flask-Limiter retries Redis, backing off
        _sign_in(client, f"back{n}@example.org", "wrong password")
        body = client.get("/readyz").get_json()
        stored = redis_server.keys("*patrons-limits*") and redis_server.keys("*patrons-guessing*")
        if stored and redis_server.keys("patrons:*") and not body["degraded"]:
            break
        assert time.monotonic() < deadline, (body, redis_server.keys("*"))
        time.sleep(0.5)
    assert body["redis"] == "up" and body["degraded_parts"] == [] and body["degraded_since"] is None
    assert any("Redis answers again" in r.getMessage() for r in caplog.records)
    _readers_pages_work(redis_app, article.slug, user.email)


def test_a_request_whose_redis_call_fails_after_another_thread_switched_to_memory(
    redis_app, redis_server, rdb, monkeypatch, caplog
):
    """The race bench/soak.py found: thread A's Redis call fails and Flask-Limiter switches to
    memory; thread B's call, sent to Redis before the switch, fails after it. Flask-Limiter
    then re-raised B's error (a 500). Replayed here in one thread: the failing call flips
    the switch itself, as A would have, just before it raises."""
    from patrons.core.extensions import limiter

    client = redis_app.test_client()
    assert _ask_reset(client, 0) == 200  # counted in Redis
    strategy = limiter._limiter  # the Redis-backed one, chosen before the switch

    def fails_after_the_switch(*args: object, **kwargs: object) -> bool:
        limiter._storage_dead = True  # thread A, meanwhile
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(strategy, "hit", fails_after_the_switch)
    with caplog.at_level(logging.INFO):
        assert _ask_reset(client, 1) == 200  # not a 500: let through once
        assert _ask_reset(client, 2) == 200  # and the next one is counted in memory
    assert degraded.is_degraded()  # told to /readyz and the one warning a minute
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_warning_comes_again_after_a_minute(monkeypatch, caplog):
    degraded.reset()
    now = [1000.0]
    monkeypatch.setattr(degraded.time, "monotonic", lambda: now[0])
    try:
        with caplog.at_level(logging.WARNING, logger="patrons.core.degraded"):
            for _ in range(100):
                degraded.failed("cache", ConnectionError("refused"))
                now[0] += 0.5  # 100 failures in 50 seconds: one warning
            assert len(caplog.records) == 1
            now[0] += 10.0
            degraded.failed("cache")
            assert len(caplog.records) == 2
            assert degraded.is_degraded()
            degraded.recovered("cache")
            assert not degraded.is_degraded()
            assert "answers again" in caplog.records[-1].getMessage()
    finally:
        degraded.reset()


def test_redis_never_reachable_from_the_start(database_url, tmp_path):
    """REDIS_URL names a port nobody listens on: the site works, /readyz says so."""
    degraded.reset()
    settings = make_settings(
        database_url, tmp_path / "instance", redis_url=f"redis://127.0.0.1:{_free_port()}/0"
    )
    with extra_app(settings) as app, app.extensions["db.sessionmaker"]() as db:
        article, user = make_article(db), make_user(db)
        _readers_pages_work(app, article.slug, user.email)
        assert _wrong_passwords_until_refused(app.test_client(), "never") == [400] * 5 + [429]
        response = app.test_client().get("/readyz")
    degraded.reset()
    assert response.status_code == 200
    assert response.get_json()["redis"] == "down"
    assert response.get_json()["degraded"] is True
