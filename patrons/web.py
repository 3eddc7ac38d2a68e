"""What `create_app` wires together: configuration, extensions, blueprints, errors, headers."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from functools import cache as memoize
from pathlib import Path
from typing import cast

from babel.support import NullTranslations
from flask import (
    Flask,
    Response,
    abort,
    g,
    has_app_context,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask.typing import ResponseReturnValue
from flask_babel import get_translations
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import RequestRedirect

from patrons.core import db, degraded, error_reporting, extensions, logs
from patrons.core.config import Settings
from patrons.core.formatting import format_date, format_datetime_iso
from patrons.core.headers import (
    NO_STORE,
    content_security_policy,
    is_private,
    location_without_host,
    security_headers,
)
from patrons.core.urls import DatabaseIdConverter

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # forms are small; the webhook reads the raw body under this cap


def configure(app: Flask, settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format)  # LOG_LEVEL, LOG_FORMAT
    error_reporting.init(settings)  # only with SENTRY_DSN
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        # older keys still accepted: sessions (Flask), CSRF and keyed hashes (core/signing.py)
        SECRET_KEY_FALLBACKS=list(settings.secret_key_fallbacks),
        TESTING=settings.is_testing,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SESSION_COOKIE_NAME="__Host-session" if settings.is_production else "session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        PERMANENT_SESSION_LIFETIME=timedelta(days=30),  # "keep me signed in" (sessions.py)
        # The cookie is written when the session changes, not again on every request: a
        # sign-in's end is its server-side row's expires_at, set once at sign-in (sessions.py
        # REMEMBER_FOR, also 30 days) and checked on every request, so re-sending the cookie
        # with a later expiry only cost a Set-Cookie header per page (and kept no one signed
        # in longer)
        SESSION_REFRESH_EACH_REQUEST=False,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.is_production,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
        RATELIMIT_KEY_PREFIX="patrons-limits",
        # Redis unreachable: limits counted in this process's memory until it answers again
        # (Flask-Limiter retries it), and caches bypassed (core/rediscache.py, degraded.py)
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        # ...and a request whose Redis call was under way when another thread made that switch
        # is let through, not a 500 (Flask-Limiter re-raises its error otherwise: the switch is
        # not thread-safe; tests/test_degrade.py replays the race)
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 1, "socket_timeout": 1},
        CACHE_TYPE=(
            "patrons.core.rediscache.ForgivingRedisCache" if settings.redis_url else "SimpleCache"
        ),
        CACHE_REDIS_URL=settings.redis_url,
        CACHE_KEY_PREFIX="patrons:",
        CACHE_DEFAULT_TIMEOUT=60,
        CACHE_THRESHOLD=2000,
    )
    if settings.proxy_hops:
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]  # Flask's documented way to wrap
    app.url_map.converters["int"] = DatabaseIdConverter
    app.session_interface = SessionInterface()
    app.before_request(reject_nul_bytes)
    app.before_request(redirect_by_path)
    db.init_app(app, settings.database_url)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, never written into a page every reader shares."""

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if g.get("public_page"):
            return  # e.g. Flask-Login marking a session "not fresh" on a cacheable article
        super().save_session(app, session, response)


def reject_nul_bytes() -> None:
    """NUL is never text: PostgreSQL refuses it, so refuse it before any view sees it."""
    if "\x00" in request.path:
        abort(404)
    values = request.args.values() if request.method == "GET" else request.values.values()
    if any("\x00" in value for value in values):
        abort(400, _("Text may not contain NUL characters."))


def redirect_by_path() -> ResponseReturnValue | None:
    """Werkzeug's own redirects (`/staff` to `/staff/`) name the host the request claimed, in
    the Location and the page: answered here with the path alone (headers.py)."""
    exc = request.routing_exception
    if isinstance(exc, RequestRedirect):
        return redirect(location_without_host(exc.new_url, request.host), code=exc.code)
    return None


def register_extensions(app: Flask, settings: Settings) -> None:
    extensions.csrf.init_app(app)
    extensions.limiter.init_app(app)
    degraded.install_limiter_filter()
    extensions.cache.init_app(app)
    extensions.babel.init_app(
        app,
        default_locale="en",
        default_translation_directories=str(Path(__file__).parent / "translations"),
    )
    install_template_gettext(app)


def _translations() -> NullTranslations:
    """Flask-Babel's translations for this context, looked up once per context, not per string.

    Flask-Babel finds them anew for every string (three context lookups, some 20 µs, a
    noticeable share of an article page's render). The copy is kept where Flask-Babel's own
    force_locale() and refresh() reset it, so switching the locale still works.
    """
    if not has_app_context():
        return cast(NullTranslations, get_translations())  # Flask-Babel's null translations
    state = g.get("_flask_babel")
    cached = getattr(state, "babel_translations", None)
    if cached is None:
        cached = get_translations()
        g._flask_babel.babel_translations = cached  # get_translations() created the namespace
    return cast(NullTranslations, cached)


def install_template_gettext(app: Flask) -> None:
    """Templates' _(), gettext() and {% trans %}: Flask-Babel's, with the lookup above."""
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # added by Jinja's i18n extension
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
        newstyle=True,
    )


def register_error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> ResponseReturnValue:
        message = _(
            "This form has expired or was sent from elsewhere. Reload the page and try again."
        )
        if request.accept_mimetypes.best == "application/json":
            return jsonify(ok=False, message=message), 400
        return _error_page(400, _("The form could not be accepted"), message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        body, code, headers = _error_page(exc.code or 500, exc.name, exc.description or "")
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        return body, code, headers

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(SQLAlchemyTimeoutError)
    def database_unavailable(exc: Exception) -> ResponseReturnValue:
        return _database_unavailable(exc)

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError) -> ResponseReturnValue:
        if exc.connection_invalidated:  # the connection was lost mid-request
            return _database_unavailable(exc)
        return unhandled(exc)

    @app.errorhandler(Exception)
    def unhandled(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error on %s %s", request.method, request.path)
        sess = g.pop("db_session", None)
        if sess is not None:
            sess.close()
        return _error_page(500, InternalServerError().name, "")


DATABASE_RETRY_SECONDS = 30


def _database_unavailable(exc: Exception) -> ResponseReturnValue:
    """The database could not be reached (restarting, or a connection lost): a 503 that asks
    to come back shortly, logged at most once a minute, never a 500. The pool's pre-ping
    (core/db.py) replaces dead connections, so the next request needs no restart."""
    degraded.warn_once_a_minute(
        "database",
        "database unavailable on %s %s: %s",
        request.method,
        request.path,
        exc.__class__.__name__,
    )
    sess = g.pop("db_session", None)
    if sess is not None:
        try:
            sess.close()
        except Exception:  # noqa: BLE001  (closing a session on a dead connection)
            log.debug("closing the session failed", exc_info=True)
    message = _("The site is briefly unavailable. Please try again in a moment.")
    retry = {"Retry-After": str(DATABASE_RETRY_SECONDS)}
    if request.accept_mimetypes.best == "application/json":
        return jsonify(ok=False, message=message), 503, {"Cache-Control": "no-store", **retry}
    body, code, headers = _error_page(503, HTTP_STATUS_CODES[503], message)
    return body, code, {**headers, **retry}


ERROR_TEXT = {
    404: _l("We could not find that page. It may have moved, or the address may be mistyped."),
    500: _l("Something went wrong on our side. It has been logged; please try again in a moment."),
    429: _l("Too many attempts in a short time. Please wait a minute and try again."),
    413: _l("What you sent is too large."),
}
# Werkzeug's names of the errors this app raises, for the error page's heading
ERROR_TITLES = {
    400: _l("Bad Request"),
    403: _l("Forbidden"),
    404: _l("Not Found"),
    405: _l("Method Not Allowed"),
    413: _l("Request Entity Too Large"),
    429: _l("Too Many Requests"),
    500: _l("Internal Server Error"),
    503: _l("Service Unavailable"),
}


def _error_page(code: int, title: str, message: str) -> tuple[str, int, dict[str, str]]:
    text = str(ERROR_TEXT[code]) if code in (404, 500, 429, 413) else message
    if code in ERROR_TITLES and title == HTTP_STATUS_CODES.get(code):
        title = str(ERROR_TITLES[code])
    headers = {"Cache-Control": "no-store"}
    if code == 429:
        headers["Retry-After"] = "60"  # as the message says: a minute
    try:
        body = render_template("errors/error.html", code=code, title=title, message=text)
    except Exception:  # the error page must never fail (e.g. the database is down)
        log.exception("error page failed to render")
        body = (
            "<!doctype html><meta charset=utf-8><title>Error</title>"
            f"<h1>{int(code)}</h1><p>{Markup.escape(text or title)}</p>"
        )
    return body, code, headers


def register_security_headers(app: Flask) -> None:
    settings: Settings = app.config["SETTINGS"]

    fixed = security_headers(settings)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        if "Content-Security-Policy" not in headers:
            hashes = tuple(g.get("csp_script_hashes", ()))
            stripe = bool(g.get("csp_stripe"))  # a page with the card form (pledges/start_views.py)
            headers["Content-Security-Policy"] = content_security_policy(
                settings, hashes, stripe=stripe
            )
        for name, value in fixed:
            headers[name] = value
        if "Location" in headers:
            headers["Location"] = location_without_host(headers["Location"], request.host)
        if _private_response():
            headers["Cache-Control"] = NO_STORE
        return response


def _private_response() -> bool:
    """`Cache-Control: private, no-store` for this response (headers.is_private): anything
    for a signed-in session, and account, pledge and staff pages for anyone. Not the cached
    public article (articles/views.py decided it is the same for everyone: no session in or
    out) nor static files, which hold nothing of the reader's."""
    if g.get("public_page") or request.endpoint == "static":
        return False
    # Flask-Login keeps the signed-in user's id under this key (a session cookie is signed):
    # read without loading the user, so no query is added and an error page cannot fail here
    return is_private(request.blueprints, signed_in="_user_id" in session)


def register_article_fast_path(app: Flask) -> None:
    """Serve cached anonymous article pages before Flask's request handling (fastpath.py)."""
    from patrons.articles.fastpath import CachedArticleMiddleware

    middleware = CachedArticleMiddleware(app, app.wsgi_app)
    app.extensions["article_fast_path"] = middleware
    app.wsgi_app = middleware  # type: ignore[method-assign]  # Flask's documented way to wrap


def register_template_helpers(app: Flask) -> None:
    static_folder = Path(app.root_path) / "static"

    @memoize
    def _fingerprint(filename: str) -> str:
        path = static_folder / filename
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "0"

    def asset_url(filename: str) -> str:
        from flask import url_for

        return url_for("static", filename=filename, v=_fingerprint(filename))

    @app.context_processor
    def inject() -> dict[str, object]:
        from patrons import site

        settings = app.config["SETTINGS"]
        return {
            "settings": settings,
            "site_name": settings.site_name,  # also what mail templates say (mail/queue.py)
            "site_url": settings.site_url,
            "site": site.texts(),
            "asset_url": asset_url,
        }

    app.jinja_env.filters["date"] = format_date
    app.jinja_env.filters["isodate"] = format_datetime_iso
