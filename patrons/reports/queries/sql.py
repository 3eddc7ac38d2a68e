"""What every report query shares: running SQL text with datetimes bound as the models bind
them, and the two expressions that differ between PostgreSQL and SQLite (`Dialect`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import BindParameter, Date, Integer, TextClause, bindparam, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import TextualSelect

from patrons.core.db import UTCDateTime

# For the month-by-month history only (queries/revenue.py, the rollup): a pledge's statuses
# in which its reader counted as a patron then (past_due: only within the grace period), and
# those that end it. Today's active patrons are never computed from these: they are
# patrons/pledges/entitlement.py's (queries.active_pledges_now).
COUNTED_SQL = "('active', 'trialing', 'past_due')"
ENDED_SQL = "('canceled', 'unpaid', 'incomplete_expired')"


@dataclass(frozen=True)
class Dialect:
    name: str

    def month(self, column: str) -> str:
        """'YYYY-MM' of a UTC timestamp column."""
        if self.name == "postgresql":
            return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"
        return f"substr({column}, 1, 7)"  # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff', in UTC

    def day(self, column: str) -> str:
        """'YYYY-MM-DD' of a UTC timestamp column."""
        if self.name == "postgresql":
            return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        return f"substr({column}, 1, 10)"

    def period(self, column: str, by_day: bool) -> str:
        return self.day(column) if by_day else self.month(column)

    def plus_days(self, column: str, days_param: str) -> str:
        if self.name == "postgresql":
            return f"({column} + make_interval(days => :{days_param}))"
        return f"strftime('%Y-%m-%d %H:%M:%f', {column}, '+' || :{days_param} || ' days')"


def dialect(db: Session) -> Dialect:
    return Dialect(db.get_bind().dialect.name)


def without_jit(db: Session) -> None:
    """Turn PostgreSQL's JIT compilation off for the rest of this transaction (SET LOCAL:
    the request's session ends it). PostgreSQL compiles a query whose estimated cost passes
    `jit_above_cost` before running it; the report queries' estimates pass it (their
    correlated subqueries are costed as if each ran in full) while they run in milliseconds
    from the indexes, so the compiling was most of their time: 200-300 ms each, 5.7 s of
    the dashboard at full size in bench/reports.py. A no-op on SQLite."""
    if dialect(db).name == "postgresql":
        db.execute(text("SET LOCAL jit = off"))


def run(db: Session, sql: str, *, timestamps: Sequence[str] = (), **params: Any) -> Sequence[Any]:
    """Execute with datetimes bound as the models bind them (UTC, SQLite's text format);
    the `timestamps` columns are read back as aware datetimes, as the models read them."""
    binds: list[BindParameter[Any]] = []
    for name, value in params.items():
        if isinstance(value, datetime):
            binds.append(bindparam(name, type_=UTCDateTime()))
        elif isinstance(value, date):
            binds.append(bindparam(name, type_=Date()))
        elif isinstance(value, int):
            binds.append(bindparam(name, type_=Integer()))
    clause = text(sql).bindparams(*binds)
    statement: TextClause | TextualSelect = clause
    if timestamps:
        statement = clause.columns(**dict.fromkeys(timestamps, UTCDateTime()))
    return db.execute(statement, params).all()
