"""Reading Stripe's plain dicts field by field (each reader answers None or 0 for anything
that is not what it expects), and our plan ids. Re-exported by stripe_objects.py; nothing here
calls Stripe or imports `stripe`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

PLAN_PATTERN = re.compile(r"^patron-(?P<currency>[a-z]{3})-(?P<amount>[1-9][0-9]{0,8})$")


# -- our plan ids ------------------------------------------------------------------------------


def plan_id(currency: str, amount: int) -> str:
    return f"patron-{currency.lower()}-{amount}"


def parse_plan_id(value: str | None) -> tuple[str, int] | None:
    """(CURRENCY, amount) for one of our plan ids, None for anything else."""
    match = PLAN_PATTERN.match(value or "")
    if match is None:
        return None
    return match["currency"].upper(), int(match["amount"])


# -- reading Stripe's dicts --------------------------------------------------------------------


def timestamp(value: Any) -> datetime | None:
    """Stripe's Unix seconds as an aware datetime; None for anything that is not one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def object_id(value: Any) -> str | None:
    """An id whether the field holds the id or the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def currency(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) else None
