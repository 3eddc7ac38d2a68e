"""Alembic: models and migrations agree; up, down and up again from empty; the keys that matter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, make_url, text

import patrons.models  # noqa: F401  (every table on Base.metadata)
from patrons.core.db import Base, make_engine
from tests.conftest import alembic_config

SCRATCH_DATABASE = "patrons_migr_test"
REQUIRED_UNIQUE = {
    ("articles", "slug"),
    ("articles", "source_key"),
    ("tags", "slug"),
    ("users", "email"),
    ("pledges", "stripe_subscription_id"),
    ("payments", "stripe_invoice_id"),
    ("billing_customers", "stripe_customer_id"),
    ("billing_customers", "user_id"),
    ("stripe_events", "id"),
    ("votes", "user_id,topic_id"),  # one vote per patron and topic
}


def head_revision(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def schema_diff(url: str) -> list:  # type: ignore[type-arg]
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "target_metadata": Base.metadata}
            )
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def unique_columns(url: str) -> set[tuple[str, str]]:
    """(table, "column[,column…]") for every primary key, UNIQUE constraint and unique
    index."""
    found = set()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            for table in insp.get_table_names():
                keys = [insp.get_pk_constraint(table)["constrained_columns"]]
                keys += [uq["column_names"] for uq in insp.get_unique_constraints(table)]
                keys += [ix["column_names"] for ix in insp.get_indexes(table) if ix["unique"]]
                for columns in keys:
                    if columns and None not in columns:  # None: an expression index
                        found.add((table, ",".join(columns)))
    finally:
        engine.dispose()
    return found


@pytest.fixture
def empty_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, on the same engine as the test database."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    # named after the test database: a pytest-xdist worker's (test_gw0...) gets its own
    scratch = f"{SCRATCH_DATABASE}_{make_url(database_url).database}"
    admin = make_engine(database_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {scratch}"))
    try:
        url = make_url(database_url).set(database=scratch)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
        admin.dispose()


def test_models_and_migrations_agree(database_url):
    assert current_revision(database_url) == head_revision(database_url)
    assert schema_diff(database_url) == []


def test_check_constraints_match_the_models(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            for table in Base.metadata.sorted_tables:
                expected = {
                    c.name for c in table.constraints if c.__class__.__name__ == "CheckConstraint"
                }
                found = {c["name"] for c in insp.get_check_constraints(table.name)}
                assert found == expected, table.name
    finally:
        engine.dispose()


def test_downgrade_one_step_and_upgrade_again(database_url):
    cfg = alembic_config(database_url)
    head = head_revision(database_url)
    previous = ScriptDirectory.from_config(cfg).get_revision(head).down_revision
    try:
        command.downgrade(cfg, "-1")
        assert current_revision(database_url) == previous
        if previous is None:
            assert table_names(database_url) == set()
    finally:
        command.upgrade(cfg, "head")  # the shared test database must end at head
    assert current_revision(database_url) == head
    assert schema_diff(database_url) == []


def test_upgrade_from_empty_then_downgrade_to_base_then_upgrade_again(empty_database_url):
    url = empty_database_url
    cfg = alembic_config(url)
    assert table_names(url) == set()
    command.upgrade(cfg, "head")
    assert current_revision(url) == head_revision(url)
    assert table_names(url) == set(Base.metadata.tables)
    assert schema_diff(url) == []
    command.downgrade(cfg, "base")
    assert current_revision(url) is None
    assert table_names(url) == set()
    command.upgrade(cfg, "head")
    assert table_names(url) == set(Base.metadata.tables)
    assert schema_diff(url) == []


def test_offline_sql_can_be_generated(database_url, capsys):
    command.upgrade(alembic_config(database_url), "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE articles" in sql and "CREATE TABLE payments" in sql


def test_the_unique_keys_that_matter_exist(database_url):
    missing = REQUIRED_UNIQUE - unique_columns(database_url)
    assert missing == set()


def test_unique_keys_are_enforced(database_url, db):
    from datetime import UTC, datetime

    from sqlalchemy.exc import IntegrityError

    from patrons.models import Tag, User

    db.add_all([Tag(slug="same", name="A"), Tag(slug="same", name="B")])
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()
    now = datetime.now(UTC)
    db.add_all(
        [
            User(email="twice@example.org", password_hash="x", created_at=now),
            User(email="twice@example.org", password_hash="y", created_at=now),
        ]
    )
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()
