"""Anonymous article pages straight from the page cache, before Flask sees the request.

A cached anonymous page is the same bytes, with the same headers, for every reader without a
session, so a hit needs none of Flask's per-request work (routing, session, Flask-Login,
CSRF, hooks): measured by `make bench`, that work is most of the cost of a hit. Everything
else, and every miss, goes to the Flask app unchanged; the Flask view renders the page and
stores it with the exact headers sent here (tests compare the two paths).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from flask import Flask

from patrons.core.logs import ROUTE_KEY

# v3: the cached object is fastpath.RenderedPage (it was views.RenderedPage under v2)
CACHE_PREFIX = "article:v3:"
ROUTE = "/articles/<slug>"  # the Flask view's rule (articles/views.py), which a miss reaches
_SLUG = re.compile(r"/articles/([a-z0-9][a-z0-9-]*)\Z")
# requests the Flask view answers differently: conditional or partial GETs (304, 412, 206)
_CONDITIONAL = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH", "HTTP_RANGE")
LOCAL_SECONDS = 5.0  # in front of Redis only: how long a process may keep its own copy

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class RenderedPage:
    """An anonymous article page as cached: the encoded body and every header of its 200."""

    body: bytes
    wsgi_headers: tuple[tuple[str, str], ...]


class CachedArticleMiddleware:
    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        from patrons.core.extensions import cache

        self.wsgi_app = wsgi_app
        self.backend = app.extensions["cache"][cache]  # Flask-Caching's backend, prefix and all
        # With a shared cache (Redis) every hit would be a network round trip: keep a few
        # seconds of pages in this process too. The in-process SimpleCache needs no copy.
        self.local: dict[str, tuple[float, RenderedPage]] | None = (
            {} if app.config["CACHE_TYPE"] != "SimpleCache" else None
        )
        self.cookie_name = app.config["SESSION_COOKIE_NAME"] + "="

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        page = self._cached_page(environ)
        if page is None:
            return self.wsgi_app(environ, start_response)
        environ[ROUTE_KEY] = ROUTE  # for the access line and the metrics (core/logs.py)
        start_response("200 OK", list(page.wsgi_headers))
        return [b""] if environ["REQUEST_METHOD"] == "HEAD" else [page.body]

    def forget(self) -> None:
        if self.local is not None:
            self.local.clear()

    def _cached_page(self, environ: Environ) -> RenderedPage | None:
        """The cached page for this request, or None: Flask answers it."""
        key = self._cache_key(environ)
        if key is None:
            return None
        hit = self._local_copy(key)
        if hit is not None:
            return hit
        try:
            page = cast(RenderedPage | None, self.backend.get(key))
        except Exception:  # noqa: BLE001  (the cache being down must not break pages)
            return None
        if page is not None:
            self._keep(key, page)
        return page

    def _cache_key(self, environ: Environ) -> str | None:
        """The page's cache key if the cached bytes are this request's answer."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        match = _SLUG.match(environ.get("PATH_INFO", ""))
        if match is None or environ.get("QUERY_STRING"):
            return None
        if any(name in environ for name in _CONDITIONAL):
            return None
        if self.cookie_name in environ.get("HTTP_COOKIE", ""):
            return None  # maybe signed in: Flask decides (a false alarm only costs speed)
        return CACHE_PREFIX + match.group(1)

    def _local_copy(self, key: str) -> RenderedPage | None:
        if self.local is None:
            return None
        hit = self.local.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def _keep(self, key: str, page: RenderedPage) -> None:
        if self.local is None:
            return
        if len(self.local) > 1000:
            self.local.clear()
        self.local[key] = (time.monotonic() + LOCAL_SECONDS, page)
