"""Guessing passwords is slow for everyone but the owner (docs/security.md).

The sign-in view (login_views.py) asks `check` before it checks a password, and tells
`failed` after a wrong one. The rules:

1. Per network address (IP): after GUESSES_PER_IP failed password sign-ins (5 a minute,
   30 an hour) that address's password sign-ins are refused, right or wrong (were the right
   one let through, the refusals would tell which guess was right), until the window ends.
2. Per account, in the database (users.failed_sign_ins, users.sign_in_blocked_until), so it
   holds across workers and machines without Redis: FREE_ATTEMPTS password attempts, then
   each further one blocks the account's password sign-in for BLOCKS[n] (1 minute,
   doubling, at most 15 minutes): about 100 guesses a day instead of 300 an hour. Each
   attempt is counted *before* its hash is checked, by one UPDATE that also checks the
   block, so attempts arriving at once on many workers are each counted and each see the
   block the one before set. A completed sign-in starts the count again
   (signing_in.complete); so does a right password waiting for the second factor.
3. The owner is not locked out. Their known device (devices.py) passes rule 2 and is
   counted in buckets of its own instead of rule 1's (KNOWN_DEVICE_GUESSES per address and
   per device), so someone guessing from the same network does not refuse them; from
   anywhere else the emailed sign-in link (or a reset) still works.
4. An address without an account is counted the same way, in the limiter's storage (Redis
   with REDIS_URL, else this process's memory, forgotten after UNKNOWN_KEPT): the same
   answers, the same messages and the same work (no hash while blocked), so the backoff
   tells nobody whether an account exists.

Rules 1, 3 and 4 count in Redis when REDIS_URL is set; while it cannot be reached they
count in this process's memory instead (`_counting`, core/degraded.py), so a sign-in never
fails for want of Redis, and they go back to Redis when it answers.

Blocked refusals count towards rule 1 too, so a blocked account cannot be hammered for free.
Flask-Limiter's switch (RATELIMIT_ENABLED) turns all of this off; only tests use it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from flask import Flask, current_app
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage
from limits.strategies import FixedWindowRateLimiter, RateLimiter
from sqlalchemy import case, literal, null, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from patrons.accounts import audit, auth, devices
from patrons.core import clock, degraded
from patrons.core.db import UTCDateTime
from patrons.core.extensions import limiter
from patrons.models import KnownDevice, User

log = logging.getLogger(__name__)

GUESSES_PER_IP = parse_many("5 per minute;30 per hour")
KNOWN_DEVICE_GUESSES = parse_many("5 per minute;30 per hour")
FREE_ATTEMPTS = 5
FIRST_BLOCK = timedelta(minutes=1)
LONGEST_BLOCK = timedelta(minutes=15)
UNKNOWN_KEPT = timedelta(days=1)
PREFIX = "patrons-guessing"
COMPONENT = "sign-in limits"  # in degraded.py's warnings and /readyz

T = TypeVar("T")


def block_after(attempt: int) -> timedelta | None:
    """How long the `attempt`-th attempt since the last sign-in blocks the next one."""
    if attempt < FREE_ATTEMPTS:
        return None
    doublings = min(attempt - FREE_ATTEMPTS, 10)  # 2**10 minutes is past the cap already
    return min(FIRST_BLOCK * (1 << doublings), LONGEST_BLOCK)


# the attempts whose block is not yet the longest: FREE_ATTEMPTS .. the first capped one
_GROWING = range(FREE_ATTEMPTS, FREE_ATTEMPTS + 5)


@dataclass(frozen=True)
class Verdict:
    """What `check` decided. `wait` set: refused (by the address's limit when `by_ip`, else
    by the account's backoff) until `wait` has passed. Otherwise the password may be checked."""

    user: User | None
    device: KnownDevice | None
    wait: timedelta | None = None
    by_ip: bool = False


def _enabled() -> bool:
    return bool(limiter.enabled)


def _ip() -> str:
    return get_remote_address() or "unknown"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _buckets(device: KnownDevice | None) -> list[tuple[RateLimitItem, str, str]]:
    """Rule 1's buckets, or a known device's own (per address and per device): (limit,
    kind, who)."""
    if device is None:
        return [(item, "ip", _ip()) for item in GUESSES_PER_IP]
    return [(item, "device-ip", _ip()) for item in KNOWN_DEVICE_GUESSES] + [
        (item, "device", str(device.id)) for item in KNOWN_DEVICE_GUESSES
    ]


def _counting(action: Callable[[RateLimiter, Storage], T]) -> T:
    """`action` on the limiter's storage (Redis with REDIS_URL), or, while that cannot be
    reached, on this process's memory (init_app): never an error for want of Redis."""
    if degraded.redis_worth_trying():
        storage = limiter.storage
        try:
            result = action(FixedWindowRateLimiter(storage), storage)
        except Exception as exc:  # noqa: BLE001  (Redis unreachable: count in memory)
            degraded.failed(COMPONENT, exc)
        else:
            degraded.recovered(COMPONENT)
            return result
    else:
        degraded.skipped(COMPONENT)
    memory: MemoryStorage = current_app.extensions["throttle.memory"]
    return action(FixedWindowRateLimiter(memory), memory)


def _ip_wait(device: KnownDevice | None) -> timedelta | None:
    """Until when the address is refused: the end of the last full window, in whole minutes
    (a minute's limit says "a minute", as the page and Retry-After do)."""
    buckets = _buckets(device)
    ends = _counting(
        lambda limits, _storage: [
            limits.get_window_stats(item, PREFIX, kind, who).reset_time
            for item, kind, who in buckets
            if not limits.test(item, PREFIX, kind, who)
        ]
    )
    if not ends:
        return None
    return timedelta(minutes=max(1, math.ceil((max(ends) - time.time()) / 60)))


def _count_against_ip(device: KnownDevice | None) -> None:
    buckets = _buckets(device)

    def hit(limits: RateLimiter, _storage: Storage) -> None:
        for item, kind, who in buckets:
            limits.hit(item, PREFIX, kind, who)

    _counting(hit)


def check(db: Session, email: str) -> Verdict:
    """Whether a password sign-in as `email` may be checked now; counts the attempt against
    the account (rule 2, committed at once) or the unknown address (rule 4)."""
    user = auth.find_user_by_email(db, email)
    device = devices.current(db, user) if user is not None else None
    if not _enabled():
        return Verdict(user, device)
    wait = _ip_wait(device)
    if wait is not None:
        return Verdict(user, device, wait=wait, by_ip=True)
    if device is not None:
        return Verdict(user, device)  # rule 3: the owner's device passes the backoff
    blocked_until = _reserve(db, user) if user is not None else _reserve_unknown(email)
    if blocked_until is None:
        return Verdict(user, None)
    _count_against_ip(None)
    if user is not None:
        audit.record(db, audit.SIGN_IN_BLOCKED, user=user, detail={"until": blocked_until})
        db.commit()
    return Verdict(user, None, wait=max(blocked_until - clock.now(), timedelta(seconds=1)))


def _reserve(db: Session, user: User) -> datetime | None:
    """Count an attempt unless the account is blocked: None when counted, else the block's end."""
    now = clock.now()

    def at(delay: timedelta) -> object:
        return literal(now + delay, UTCDateTime())

    attempt = User.failed_sign_ins + 1
    blocks = case(
        (attempt < FREE_ATTEMPTS, null()),
        *((attempt == n, at(block_after(n) or LONGEST_BLOCK)) for n in _GROWING),
        else_=at(LONGEST_BLOCK),
    )
    counted = db.execute(
        update(User)
        .where(User.id == user.id)
        .where(or_(User.sign_in_blocked_until.is_(None), User.sign_in_blocked_until <= now))
        .values(failed_sign_ins=attempt, sign_in_blocked_until=blocks)
        .returning(User.failed_sign_ins, User.sign_in_blocked_until),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if counted is not None:
        db.commit()  # now, not after the hash: other workers see this attempt and its block
        set_committed_value(user, "failed_sign_ins", counted[0])
        set_committed_value(user, "sign_in_blocked_until", counted[1])
        return None
    until = db.scalar(select(User.sign_in_blocked_until).where(User.id == user.id))
    return until or now  # unblocked between the two statements: a second's wait


def _reserve_unknown(email: str) -> datetime | None:
    """Rule 2 for an address without an account, kept in the limiter's storage."""
    key = _digest(auth.normalise_email(email))
    blocked, count = f"{PREFIX}/unknown-block/{key}", f"{PREFIX}/unknown-count/{key}"

    def reserve(_limits: RateLimiter, storage: Storage) -> datetime | None:
        if storage.get(blocked):
            return datetime.fromtimestamp(storage.get_expiry(blocked), UTC)
        attempt = storage.incr(count, int(UNKNOWN_KEPT.total_seconds()))
        delay = block_after(attempt)
        if delay is not None:
            storage.incr(blocked, int(delay.total_seconds()))
        return None

    return _counting(reserve)


def failed(db: Session, verdict: Verdict) -> None:
    """A wrong password: counted against the address (or the known device's own buckets) and,
    for an account, written to its audit log. Commits."""
    if _enabled():
        _count_against_ip(verdict.device)
    user = verdict.user
    if user is not None:
        detail = {"failures": user.failed_sign_ins, "known_device": verdict.device is not None}
        audit.record(db, audit.SIGN_IN_FAILED, user=user, detail=detail)
        db.commit()


def succeeded(user: User) -> None:
    """The right password: the count starts again (also before a second factor)."""
    user.failed_sign_ins, user.sign_in_blocked_until = 0, None


def warn_if_per_process(app: Flask) -> None:
    """In production, say once at start when the limits live in each process's memory."""
    settings = app.config["SETTINGS"]
    uri = str(app.config.get("RATELIMIT_STORAGE_URI", "memory://"))
    if settings.is_production and uri.startswith("memory://"):
        log.warning(
            "Rate limits are kept in each process's memory (REDIS_URL is not set): every "
            "worker counts on its own, so with N workers an address gets N times the "
            "sign-in, sign-up and reset attempts. The per-account sign-in backoff is in the "
            "database and holds anyway. Set REDIS_URL to share the limits."
        )


def init_app(app: Flask) -> None:
    warn_if_per_process(app)
    # where rules 1, 3 and 4 count while Redis cannot be reached (`_counting`)
    app.extensions["throttle.memory"] = MemoryStorage()
