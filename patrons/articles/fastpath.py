"""Anonymous article pages (and the front page) straight from the page cache, before Flask
sees the request.

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

# v4: the cached object is a fastpath.Kept RenderedPage (v3: the RenderedPage itself)
CACHE_PREFIX = "article:v4:"
ROUTE = "/articles/<slug>"  # the Flask view's rule (articles/views.py), which a miss reaches
# the front page, a RenderedPage per page number (only `/` itself, page 1, is answered here;
# `/?page=2` goes to the Flask view, which reads the same cache)
FRONT_PAGE_PREFIX = "front:v1:"
FRONT_PAGE_ROUTE = "/"
_SLUG = re.compile(r"/articles/([a-z0-9][a-z0-9-]*)\Z")
# requests the Flask view answers differently: conditional or partial GETs (304, 412, 206)
_CONDITIONAL = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH", "HTTP_RANGE")
LOCAL_SECONDS = 5.0  # in front of Redis only: how long a process may keep its own copy
# how long past its time a cached page is still kept, for the Flask view to answer with while
# one request renders its successor (views._cached): no stampede of renders at expiry
STALE_SECONDS = 60

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class RenderedPage:
    """An anonymous article page as cached: the encoded body and every header of its 200."""

    body: bytes
    wsgi_headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Kept:
    """A value in the page cache (a RenderedPage, an article's shared parts) and the time
    (time.time()) it goes stale; the cache keeps it STALE_SECONDS longer than that."""

    value: Any
    fresh_until: float

    def is_fresh(self) -> bool:
        return self.fresh_until > time.time()


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
        # ARTICLE_CACHE_SECONDS=0: no page is cached, so none is looked for
        self.enabled = app.config["SETTINGS"].article_cache_seconds > 0

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        page = self._cached_page(environ)
        if page is None:
            return self.wsgi_app(environ, start_response)
        # the route, for the access line and the metrics (core/logs.py)
        environ[ROUTE_KEY] = FRONT_PAGE_ROUTE if environ.get("PATH_INFO") == "/" else ROUTE
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
            kept = cast(Kept | None, self.backend.get(key))
        except Exception:  # noqa: BLE001  (the cache being down must not break pages)
            return None
        if kept is None or not kept.is_fresh():
            return None  # stale: the Flask view answers (with it, while one request renders)
        page = cast(RenderedPage, kept.value)
        self._keep(key, page, kept.fresh_until)
        return page

    def _cache_key(self, environ: Environ) -> str | None:
        """The page's cache key if the cached bytes are this request's answer."""
        if not self.enabled or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        path = environ.get("PATH_INFO", "")
        match = _SLUG.match(path)
        if (match is None and path != "/") or environ.get("QUERY_STRING"):
            return None
        if any(name in environ for name in _CONDITIONAL):
            return None
        if self.cookie_name in environ.get("HTTP_COOKIE", ""):
            return None  # maybe signed in: Flask decides (a false alarm only costs speed)
        return CACHE_PREFIX + match.group(1) if match is not None else FRONT_PAGE_PREFIX + "1"

    def _local_copy(self, key: str) -> RenderedPage | None:
        if self.local is None:
            return None
        hit = self.local.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def _keep(self, key: str, page: RenderedPage, fresh_until: float) -> None:
        if self.local is None:
            return
        if len(self.local) > 1000:
            self.local.clear()
        seconds = min(LOCAL_SECONDS, fresh_until - time.time())
        self.local[key] = (time.monotonic() + seconds, page)
