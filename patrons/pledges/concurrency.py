"""Leases, so that one request calls Stripe while the others wait for its answer, and `store`,
which writes an answer again if it lost a race with the webhook.

A double click, two tabs or a retried request never make a second Stripe customer or
subscription (docs/security.md, threat 12): the customer row and the pledge row are written
before Stripe is called and their ids are the idempotency keys; and because localstripe
ignores idempotency keys, the request that creates a customer or a subscription first takes a
short lease on the row (a compare-and-set of one column, committed at once), so the others
wait for its result instead of calling Stripe again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from patrons.core import clock
from patrons.pledges.errors import PledgeError
from patrons.pledges.stripe_objects import GatewayError

LEASE_SECONDS = 60  # a lease older than this was left by a request that died: take it over
WAIT_SECONDS = 8.0  # how long a request waits for another one's Stripe call to finish
WAIT_STEP = 0.1
STORE_ATTEMPTS = 3  # storing Stripe's answer races the webhook on unique keys: run it again

_T = TypeVar("_T")
Column = InstrumentedAttribute[Any]  # a string column of a model with an integer `id`


def is_lease(value: str | None) -> bool:
    return bool(value) and str(value).startswith("lease:")


def held(value: str | None) -> bool:
    """A lease some request holds right now (not one left by a request that died)."""
    return is_lease(value) and not lease_expired(str(value), clock.now())


def lease_expired(value: str, now: datetime) -> bool:
    try:
        taken = int(value.split(":")[1])
    except (IndexError, ValueError):
        return True
    return now.timestamp() - taken > LEASE_SECONDS


def take_lease(db: Session, column: Column, row_id: int, current: str | None) -> str | None:
    """Set the column to a new lease token if it still holds `current`; the token, or None
    if another request got there first. Committed at once."""
    model = column.class_
    token = f"lease:{int(clock.now().timestamp())}:{secrets.token_hex(6)}"
    condition = column.is_(None) if current is None else column == current
    result = db.execute(update(model).where(model.id == row_id, condition).values({column: token}))
    db.commit()
    return token if cast("CursorResult[Any]", result).rowcount == 1 else None


def end_lease(db: Session, column: Column, row_id: int, token: str, value: str | None) -> None:
    """Replace the lease with `value` (not committed), if this request still holds it."""
    model = column.class_
    db.execute(update(model).where(model.id == row_id, column == token).values({column: value}))


@contextmanager
def lease_returned_on_refusal(
    db: Session, column: Column, row_id: int, token: str, value: str | None
) -> Iterator[None]:
    """If the block is refused (GatewayError, PledgeError), put `value` back in place of the
    lease and commit, so that a second try may start at once; then let the refusal go on."""
    try:
        yield
    except (GatewayError, PledgeError):
        end_lease(db, column, row_id, token, value)
        db.commit()
        raise


def read_committed(db: Session, column: Column, row_id: int) -> str | None:
    """The column's value now; the read transaction is ended before anything else happens."""
    value = db.scalar(select(column).where(column.class_.id == row_id))
    db.commit()
    return cast("str | None", value)


def store(db: Session, write: Callable[[Session], _T]) -> _T:
    """Run `write(db)` and commit, again if it lost a race on a unique key (e.g. with the
    webhook recording the same invoice at the same moment)."""
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            result = write(db)
            db.commit()
            return result
        except (IntegrityError, DBAPIError):
            db.rollback()
            if attempt == STORE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
