"""What keeps the staff dashboard fast at full size (bench/reports.py): PostgreSQL's JIT off
for its reads, and the indexes its slowest queries read from alone."""

from __future__ import annotations

from datetime import date

import pytest
from flask import Flask
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.reports import rates, service
from patrons.reports.dates import parse_range
from patrons.reports.queries.sql import without_jit


def _postgresql(db: Session) -> bool:
    return db.get_bind().dialect.name == "postgresql"


def test_the_dashboard_reads_without_jit_for_its_transaction_only(app: Flask, db: Session) -> None:
    if not _postgresql(db):
        without_jit(db)  # a no-op elsewhere
        pytest.skip("JIT is PostgreSQL's")
    db.rollback()
    default = db.scalar(text("SHOW jit"))
    now = clock.now()
    service.dashboard(db, parse_range({}, date(now.year, now.month, now.day)), rates.Rates("EUR"),
                      now, 7, ["EUR"])  # fmt: skip
    assert db.scalar(text("SHOW jit")) == "off"
    db.rollback()
    assert db.scalar(text("SHOW jit")) == default


def test_the_indexes_the_dashboard_reads_from_alone(app: Flask, db: Session) -> None:
    indexes = {i["name"]: i for i in inspect(db.get_bind()).get_indexes("payments")}
    # a pledge's latest settled payment (entitlement.py), newest first with its status
    latest = indexes["ix_payments_pledge_id_paid_at_id_status"]
    assert latest["column_names"] == ["pledge_id", "paid_at", "id", "status"]
    # payment health reads every column it sums, amount_disputed included
    assert "amount_disputed" in indexes["ix_payments_created_at_noteworthy"]["column_names"]
