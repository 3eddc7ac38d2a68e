"""Display formats used by every template: dates now; money joins when pledges do."""

from __future__ import annotations

from datetime import datetime


def format_date(value: datetime | None) -> str:
    if value is None:
        return ""
    return f"{value.day} {value:%B %Y}"


def format_datetime_iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""
