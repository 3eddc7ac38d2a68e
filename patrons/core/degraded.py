"""Whether this process is running without Redis, and one warning a minute while it is.

Redis is optional: rate limits, the sign-in throttle's counts for unknown addresses and the
caches live there when `REDIS_URL` is set. When it cannot be reached, each of them carries on
without it (rate limits and counts in this process's memory, caches bypassed) and tells this
module, by component:

- `failed(component, exc)` after a Redis call failed: the site is degraded from now on, and a
  warning is logged unless one was logged in the last WARN_EVERY seconds;
- `recovered(component)` after a Redis call of that component worked again.

`redis_worth_trying()` lets a caller skip Redis for RETRY_SECONDS after a failure, so that an
unreachable server (a timeout, not a refusal) does not cost every request the connect timeout.

The state is this process's: each worker finds out for itself, as each has its own
connections. Flask-Limiter's own fallback (RATELIMIT_IN_MEMORY_FALLBACK_ENABLED) reports
through `LimiterLogFilter`, installed on its logger.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

log = logging.getLogger(__name__)

WARN_EVERY = 60.0  # seconds between two "still degraded" warnings
RETRY_SECONDS = 5.0  # after a failure, Redis is tried again this long after
RATE_LIMITS = "rate limits"  # Flask-Limiter's component name here

_lock = threading.Lock()
_failing: dict[str, float] = {}  # component -> monotonic time of its first failure
_since: float | None = None  # wall-clock time the current degraded spell began
_last_failure = 0.0  # monotonic
_last_warning: float | None = None  # monotonic


def failed(component: str, exc: BaseException | None = None) -> None:
    """A Redis call of `component` failed: degraded, with a warning at most once a minute."""
    global _since, _last_failure, _last_warning
    now = time.monotonic()
    with _lock:
        _failing.setdefault(component, now)
        _last_failure = now
        if _since is None:
            _since = time.time()
        warn = _last_warning is None or now - _last_warning >= WARN_EVERY
        if warn:
            _last_warning = now
        since, components = _since, sorted(_failing)
    if warn:
        reason = f" ({exc.__class__.__name__}: {str(exc)[:200]})" if exc is not None else ""
        log.warning(
            "Redis unreachable since %s%s; degraded: %s. Rate limits are counted in this "
            "process's memory and caches are bypassed until it answers again.",
            datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds"),
            reason,
            ", ".join(components),
        )


def skipped(component: str) -> None:
    """`component` went straight to its fallback (redis_worth_trying said no): it is degraded
    too, and Redis will be tried again when the wait is over."""
    if component in _failing:
        return
    with _lock:
        if _failing:  # a spell is on (it may have ended since the caller asked)
            _failing.setdefault(component, time.monotonic())


def recovered(component: str) -> None:
    """A Redis call of `component` worked: no longer degraded once every component works."""
    global _since, _last_warning
    if component not in _failing:  # the common case, read without the lock
        return
    with _lock:
        if _failing.pop(component, None) is None:
            return
        if _failing:
            return
        since, _since, _last_warning = _since, None, None
    log.warning(
        "Redis answers again; no longer degraded (since %s).",
        datetime.fromtimestamp(since or time.time(), UTC).isoformat(timespec="seconds"),
    )


def is_degraded() -> bool:
    return bool(_failing)


def degraded_since() -> datetime | None:
    since = _since
    return datetime.fromtimestamp(since, UTC) if since is not None and _failing else None


def failing_components() -> list[str]:
    with _lock:
        return sorted(_failing)


def redis_worth_trying() -> bool:
    """False for RETRY_SECONDS after a failure: go straight to the fallback meanwhile."""
    return not _failing or time.monotonic() - _last_failure >= RETRY_SECONDS


_other_warnings: dict[str, float] = {}  # key -> monotonic time of its last warning


def warn_once_a_minute(key: str, message: str, *args: object) -> None:
    """log.warning(message, *args) unless a warning under `key` was logged in the last minute
    (e.g. every request failing while the database restarts)."""
    now = time.monotonic()
    with _lock:
        last = _other_warnings.get(key)
        if last is not None and now - last < WARN_EVERY:
            return
        _other_warnings[key] = now
    log.warning(message, *args)


def reset() -> None:
    """Forget everything (tests: each app starts with Redis presumed up)."""
    global _since, _last_failure, _last_warning
    with _lock:
        _failing.clear()
        _other_warnings.clear()
        _since, _last_failure, _last_warning = None, 0.0, None


class LimiterLogFilter(logging.Filter):
    """Flask-Limiter says when it falls back to memory (a warning), when a request's Redis call
    failed after the fall-back (swallowed, an ERROR) and when its storage recovered (at INFO),
    in its log: recorded here instead, so the one warning a minute is ours. Its logger is set
    to INFO for the last; its other INFO lines ("ratelimit ... exceeded", which can name the
    email a limit is keyed on) are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Rate limit storage unreachable"):
            failed(RATE_LIMITS)
            return False
        if message.startswith("Rate limit storage recovered"):
            recovered(RATE_LIMITS)
            return False
        if message.startswith("Failed to rate limit. Swallowing error") and _is_redis_down(record):
            # a request whose Redis call failed just after another thread's had switched the
            # limiter to memory (RATELIMIT_SWALLOW_ERRORS): let through once, not an error
            failed(RATE_LIMITS)
            return False
        return record.levelno >= logging.WARNING


def _is_redis_down(record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return isinstance(error, (ConnectionError, TimeoutError)) or type(error).__module__.startswith(
        "redis"
    )


def install_limiter_filter() -> None:
    logger = logging.getLogger("flask-limiter")
    if not any(isinstance(f, LimiterLogFilter) for f in logger.filters):
        logger.addFilter(LimiterLogFilter())
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
