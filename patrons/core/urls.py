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


def db_id(value: str) -> int:
    """A row id from a query string; out of range raises ValueError, so `.get` ignores it."""
    number = int(value)
    if not 1 <= number <= MAX_DB_ID:
        raise ValueError(value)
    return number


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in routes, bounded to INTEGER: a huge id is a 404, never a database error."""

    def __init__(self, url_map: Map, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max", MAX_DB_ID)
        super().__init__(url_map, *args, **kwargs)  # type: ignore[arg-type]  # werkzeug types url_map loosely


def is_http_url(value: str) -> bool:
    parts = urlsplit(value.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)
