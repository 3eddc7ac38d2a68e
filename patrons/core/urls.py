"""Helpers for URLs that come from users: `next` redirects stay on this site."""

from __future__ import annotations

from urllib.parse import urlsplit

from werkzeug.routing import IntegerConverter, Map


def safe_next(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default`."""
    if not target or len(target) > 2000:
        return default
    if any(c in target for c in "\\\r\n\t\x00") or not target.startswith("/"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return default
    return target


MAX_DB_ID = 2**31 - 1  # PostgreSQL INTEGER


def ascii_int(value: str) -> int:
    """`int(value)` for ASCII digits (and a leading minus) only: Python's int() also reads
    "٥" and "５" as 5, and "1_0" as 10, which no form or address of this site means.
    ValueError otherwise."""
    digits = value.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(value)
    return int(value)


def db_id(value: str) -> int:
    """A row id from a query string; out of range raises ValueError, so `.get` ignores it."""
    number = ascii_int(value)
    if not 1 <= number <= MAX_DB_ID:
        raise ValueError(value)
    return number


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in routes, bounded to INTEGER: a huge id is a 404, never a database error.
    ASCII digits only: werkzeug's `\\d+` also matches "١" (Arabic-Indic one), which int()
    reads as 1, so /e/١/view would count article 1."""

    regex = r"[0-9]+"

    def __init__(self, url_map: Map, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max", MAX_DB_ID)
        super().__init__(url_map, *args, **kwargs)  # type: ignore[arg-type]  # werkzeug types url_map loosely


def is_http_url(value: str) -> bool:
    parts = urlsplit(value.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)
