"""Leases, so that one request calls Stripe while the others answer "in progress" at once, and
`store`, which writes an answer again if it lost a race with the webhook.

A double click, two tabs or a retried request never make a second Stripe customer or
subscription (docs/security.md, threat 12): the customer row and the pledge row are written
before Stripe is called and their ids are the idempotency keys; and because localstripe
ignores idempotency keys, the request that creates a customer or a subscription first takes a
lease: a row of `stripe_call_leases` named after what it creates ("customer:12",
"subscription:34"). Taking it is an INSERT, so the primary key decides who got it; a lease
past its `expires_at` (its request died) is taken over by a conditional UPDATE. It is
committed at once, before the call to Stripe, so no write lock is held across the call; it
is deleted in the transaction that stores Stripe's answer. A request that finds the lease
held does not wait: the page is told the pledge is being set up (202) and asks again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import StripeCallLease

LEASE_SECONDS = 60  # longer than any Stripe call may take (STRIPE_TIMEOUT and its retries)
STORE_ATTEMPTS = 3  # storing Stripe's answer races the webhook on unique keys: run it again

_T = TypeVar("_T")


def customer_lease(row_id: int) -> str:
    return f"customer:{row_id}"


def subscription_lease(pledge_id: int) -> str:
    return f"subscription:{pledge_id}"


def take_lease(db: Session, name: str) -> str | None:
    """The lease's token if this request got it, else None (another request holds it).
    Committed at once; the session's transaction must hold nothing else."""
    db.commit()
    token = secrets.token_hex(16)
    now = clock.now()
    expires = now + timedelta(seconds=LEASE_SECONDS)
    db.add(StripeCallLease(name=name, token=token, expires_at=expires))
    try:
        db.commit()
        return token
    except IntegrityError:
        db.rollback()
    result = db.execute(  # the holder died: take it over, unless another request just did
        update(StripeCallLease)
        .where(StripeCallLease.name == name, StripeCallLease.expires_at < now)
        .values(token=token, expires_at=expires)
    )
    db.commit()
    return token if cast("CursorResult[Any]", result).rowcount == 1 else None


def release_lease(db: Session, name: str, token: str) -> None:
    """Give the lease back (not committed: with the answer it was taken for)."""
    db.execute(
        delete(StripeCallLease).where(StripeCallLease.name == name, StripeCallLease.token == token)
    )


def lease_held(db: Session, name: str) -> bool:
    """Whether a live request holds the lease now (a read; the caller ends the transaction)."""
    expires = db.scalar(select(StripeCallLease.expires_at).where(StripeCallLease.name == name))
    return expires is not None and expires >= clock.now()


@contextmanager
def released_on_failure(db: Session, name: str, token: str) -> Iterator[None]:
    """If the block fails (Stripe refused, or did not answer), give the lease back at once,
    so that a second try may start; then let the failure go on."""
    try:
        yield
    except BaseException:
        db.rollback()
        release_lease(db, name, token)
        db.commit()
        raise


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
