"""The one clock: timezone-aware UTC. Tests may replace `now` with a fixed function."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
