"""Backups as README "Backups" says to take them: a PostgreSQL database with the demo's data,
dumped with `pg_dump -Fc`, restored with `pg_restore` into an empty database, answers the
same pages: an article and the staff report. PostgreSQL only (TEST_DATABASE_URL)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import make_url, text

from patrons import create_app
from patrons.core.db import make_engine
from patrons.demo import DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD
from tests.conftest import login, make_settings
from tests.deploy.servers import app_env, migrate_and_seed

URL = os.environ.get("TEST_DATABASE_URL", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not URL.startswith("postgresql"), reason="needs TEST_DATABASE_URL"),
]
ARTICLE = "/articles/bilyi-brid-ferry-returns"
# what differs between two answers of the same data: per-session tokens and per-page nonces
VOLATILE = re.compile(rb'(name="csrf_token" value|nonce|content)="[^"]*"')


def scratch_database(suffix: str) -> str:
    """An empty database beside TEST_DATABASE_URL's (one per pytest-xdist worker)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = make_url(URL).set(database=f"{make_url(URL).database}_backup_{suffix}_{worker}")
    admin = make_engine(URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    finally:
        admin.dispose()
    return url.render_as_string(hide_password=False)


def libpq(url: str) -> str:
    """The URL as pg_dump and pg_restore take it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[tuple[str, str]]:
    source, restored = scratch_database("source"), scratch_database("restored")
    yield source, restored
    admin = make_engine(URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for url in (source, restored):
                conn.execute(
                    text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
                )
    finally:
        admin.dispose()


def answers(url: str, instance: Path) -> dict[str, bytes]:
    app = create_app(make_settings(url, instance))
    try:
        client: FlaskClient = app.test_client()
        pages = {"article": client.get(ARTICLE)}
        login(client, DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD)
        pages["report"] = client.get("/staff/reports")
        for name, response in pages.items():
            assert response.status_code == 200, (name, response.status_code)
        return {name: VOLATILE.sub(rb"\1=''", r.get_data()) for name, r in pages.items()}
    finally:
        app.extensions["db.engine"].dispose()


def test_a_dump_restored_into_an_empty_database_serves_the_same_pages(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    source, restored = databases
    migrate_and_seed(app_env(source, tmp_path / "seed"))
    dump = tmp_path / "patrons.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", "--file", str(dump), libpq(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", libpq(restored), str(dump)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    before, after = answers(source, tmp_path / "a"), answers(restored, tmp_path / "b")
    assert b"Bilyi Brid" in after["article"]
    assert b"Sign out" in after["report"]
    assert after == before
