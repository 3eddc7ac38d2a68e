"""Engine, one session per request (or CLI command), and the declarative Base."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any, cast

from flask import Flask, g
from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator
from werkzeug.local import LocalProxy

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which forgets the zone) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use patrons.core.clock.now()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # pysqlite's own transaction handling is kept on purpose: reads run outside a transaction
    # and a write transaction starts at the first write, so concurrent requests wait on the
    # busy timeout instead of failing on a read-to-write upgrade. Its known cost: SAVEPOINTs
    # (begin_nested) release by committing. Code that must serialise (votes) issues
    # BEGIN IMMEDIATE itself.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]  # a DB-API connection, untyped
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def upsert(db: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT, on PostgreSQL and SQLite alike (both spell
    `on_conflict_do_nothing` / `on_conflict_do_update` the same way)."""
    if db.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_or_ignore(
    db: Session, table: Any, values: Any, conflict_on: list[Any] | None = None
) -> postgresql.Insert | sqlite.Insert:
    """INSERT these values unless a row with the same key (`conflict_on`, or any unique key)
    exists: the statement, to execute (and add RETURNING to) as the caller needs."""
    return upsert(db, table).values(values).on_conflict_do_nothing(index_elements=conflict_on)


def lock_for_write_on_sqlite(db: Session) -> None:
    """On SQLite, take the database's write lock now (BEGIN IMMEDIATE) unless this session's
    transaction holds it already, so that what is read next cannot change before it is
    written (PostgreSQL: use row locks instead; this does nothing there). pysqlite opens a
    transaction at the first write only, so none open means nothing written yet."""
    if db.get_bind().dialect.name != "sqlite":
        return
    conn = db.connection()
    if not cast(sqlite3.Connection, conn.connection.dbapi_connection).in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def init_app(app: Flask, url: str) -> None:
    engine = make_engine(url)
    app.extensions["db.engine"] = engine
    app.extensions["db.sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    """The session of the current request or CLI command, opened on first use."""
    if "db_session" not in g:
        from flask import current_app

        g.db_session = current_app.extensions["db.sessionmaker"]()
    return cast(Session, g.db_session)


def _close_session(_exc: BaseException | None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()


session: Session = LocalProxy(get_session)  # type: ignore[assignment]  # the proxy stands for the request's Session
