"""Fixtures: a migrated database (SQLite by default, PostgreSQL with TEST_DATABASE_URL),
an app per test with CSRF and rate limits left on, and emptied tables after each test.

PostgreSQL elsewhere: TEST_DATABASE_URL=postgresql+psycopg://USER@HOST:5432/DBNAME make test
(the database is wiped: use one that holds nothing else). Under pytest-xdist each worker has
a database of its own: SQLite a file in the worker's temporary folder, PostgreSQL DBNAME_gw0,
DBNAME_gw1... on the same server, created if missing (and wiped likewise).

Passwords are hashed at Argon2id's cheapest valid cost (TEST_HASHING) unless a test asks for
the production cost (`@pytest.mark.production_hashing`, or PRODUCTION_HASHING passed to
make_settings): the tests of hashing itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import make_url, text
from sqlalchemy.orm import Session

from patrons import create_app
from patrons.core.config import Settings
from patrons.core.db import Base, make_engine

ROOT = Path(__file__).resolve().parent.parent

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (`dev` unless set; .ci/run exports `ci`):
# the examples of every test without a max_examples of its own, tests/fuzzing.py's count per
# route among them. No deadline and no too_slow check: a busy machine is not a failure.
for _name, _examples in (("dev", 100), ("ci", 1000)):
    hypothesis_settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "dev")

TEST_SECRET = "test-secret-key-that-is-long-enough-for-production-checks"
# Argon2id at t=1, m=8 KiB, one lane: a sign-in costs microseconds instead of ~140 ms
TEST_HASHING: dict[str, int] = {
    "password_hash_time_cost": 1,
    "password_hash_memory_cost": 8,
    "password_hash_parallelism": 1,
}
# Settings' own defaults, the cost production runs at (config.py refuses less there)
PRODUCTION_HASHING: dict[str, int] = {name: getattr(Settings, name) for name in TEST_HASHING}


def alembic_config(url: str) -> Config:
    cfg = Config(toml_file=str(ROOT / "pyproject.toml"))
    cfg.attributes["database_url"] = url
    return cfg


def reset_database(url: str) -> None:
    """An empty database: PostgreSQL's public schema dropped, SQLite's file removed."""
    if url.startswith("postgresql"):
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    elif url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def worker_database(url: str, worker: str) -> str:
    """The database of one pytest-xdist worker ("gw0"...) on TEST_DATABASE_URL's server:
    DBNAME_gw0, created (through a connection to DBNAME) if it does not exist yet."""
    worker_url = make_url(url).set(database=f"{make_url(url).database}_{worker}")
    admin = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": worker_url.database},
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{worker_url.database}"'))
    finally:
        admin.dispose()
    return worker_url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or (
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"  # a worker has its own basetemp
    )
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0"...; unset in a run without workers
    if url.startswith("postgresql") and worker:
        url = worker_database(url, worker)
    reset_database(url)
    command.upgrade(alembic_config(url), "head")
    return url


def make_settings(database_url: str, instance: Path, **overrides: object) -> Settings:
    env = {
        "PATRONS_ENV": "testing",
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": database_url,
        "PATRONS_INSTANCE": str(instance),
        "SITE_URL": "http://patrons.test",
    }
    # production settings keep the production cost: config.py refuses less there
    hashing = {} if overrides.get("env") == "production" else TEST_HASHING
    return Settings.from_env(env, **{**hashing, **overrides})


def empty_tables(app: Flask) -> None:
    engine = app.extensions["db.engine"]
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608  (table names from metadata)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """`@pytest.mark.production_hashing`: Argon2id at the production cost (Settings' defaults)."""
    hashing = PRODUCTION_HASHING if request.node.get_closest_marker("production_hashing") else {}
    return make_settings(database_url, tmp_path / "instance", **hashing)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    application = create_app(settings)
    yield application
    empty_tables(application)
    application.extensions["db.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """A session of its own (not the request's), for arranging and checking data.

    No app context is pushed: requests made by the test client must get their own context
    (and `g`, and CSRF token), as they would in production.
    """
    session = app.extensions["db.sessionmaker"]()
    yield session
    session.close()


def csrf_token(client: FlaskClient) -> str:
    """A valid token for this client's session, as the article page's script gets one."""
    return client.get("/csrf-token").get_json()["token"]


def login(client: FlaskClient, email: str, password: str) -> None:
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
