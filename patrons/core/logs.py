"""Logs an operator can read: standard `logging`, configured once at start, and one access line
per request.

- `configure(settings)`: the root logger's level (`LOG_LEVEL`) and one handler on standard
  error, as text (`LOG_FORMAT=text`, the default outside production) or one JSON object per
  line (`LOG_FORMAT=json`, the default in production), or none of ours (`LOG_FORMAT=none`, the
  tests' default: pytest captures the records). Every line carries a UTC timestamp,
  the level, the logger's name and, when logged during a request, its request id. Other
  handlers (pytest's caplog, gunicorn's) are left alone; calling it again replaces only ours.
- `AccessLog`: the outermost WSGI middleware (outside the article fast path and ProxyFix).
  It takes the proxy's `X-Request-ID` when it looks sane (letters, digits, `.`, `_`, `-`,
  at most 64) or makes one, returns it on every response, and logs one line per request on
  `patrons.access`: method, route (the URL rule), path (never the query string), status,
  duration in ms, request id, signed in or not. Never an email, a token or card data: the
  query string and the body are never read, and a path whose rule names a secret-looking
  variable is logged as its rule.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from flask import Flask, Response, request, session
from werkzeug.wsgi import ClosingIterator

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")

ACCESS_LOGGER = "patrons.access"
# what the Flask side (or the article fast path) tells the access line, in the WSGI environ
REQUEST_ID_KEY = "patrons.request_id"
ROUTE_KEY = "patrons.route"  # the URL rule that answered, e.g. "/articles/<slug>"
SIGNED_IN_KEY = "patrons.signed_in"
PATH_KEY = "patrons.logged_path"  # set only when the raw path must not be logged
OBSERVERS_KEY = "patrons.request_observers"  # app.extensions: callables(Finished)

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
MAX_PATH = 200

_request_id: ContextVar[str | None] = ContextVar("patrons_request_id", default=None)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def current_request_id() -> str | None:
    """The id of the request this thread is answering, if any."""
    return _request_id.get()


def sane_request_id(value: str | None) -> str | None:
    return value if value is not None and _SANE_REQUEST_ID.match(value) else None


# -- configuration ---------------------------------------------------------------------------


class _Stderr(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time (pytest and gunicorn replace it)."""

    _patrons = True  # ours: replaced, never duplicated, by configure()

    def __init__(self) -> None:
        super().__init__()

    @property  # a read-only stream, looked up at each write
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or None) on every record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class TextFormatter(logging.Formatter):
    """`2026-12-06T14:03:12.345Z INFO patrons.access [req 3f2a…] message`"""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None) or _request_id.get() or "-"
        line = (
            f"{_timestamp(record)} {record.levelname} {record.name} [{rid}] {record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request_id, message, the access fields
    (for `patrons.access`) and the traceback as `exc_info`."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
            "message": record.getMessage(),
        }
        fields = getattr(record, "access", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure(level: str, fmt: str) -> logging.Handler | None:
    """Set the root level and install (or replace) our one handler; the handler, or None with
    `none` (no handler of ours: pytest's, or an embedding process's, take the records)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_patrons", False)]:
        root.removeHandler(old)
    root.setLevel(level)
    # Werkzeug's development server logs its own access line, query string and all: ours
    # replaces it (its warnings and errors still show)
    logging.getLogger("werkzeug").setLevel(max(logging.WARNING, root.level))
    if fmt == "none":
        return None
    handler = _Stderr()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    return handler


# -- the access line -------------------------------------------------------------------------

_SECRET_NAME = re.compile(r"token|secret|code|key|signature|password|email", re.IGNORECASE)


def mark_request(environ: Environ, rule: str | None, view_args: dict[str, Any] | None,
                 signed_in: bool) -> None:  # fmt: skip
    """Called by the Flask side once the request is answered: what the access line says."""
    environ[ROUTE_KEY] = rule
    environ[SIGNED_IN_KEY] = signed_in
    if rule is not None and view_args and any(_SECRET_NAME.search(k) for k in view_args):
        environ[PATH_KEY] = rule


def _loggable_path(environ: Environ) -> str:
    hidden = environ.get(PATH_KEY)
    if hidden is not None:
        return str(hidden)
    raw = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    # WSGI paths are latin-1 strings of bytes: show them as the UTF-8 they usually are, with
    # anything unprintable (a log line forged with CR/LF) escaped
    try:
        text = raw.encode("latin-1").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        text = raw
    if not text.isprintable():  # the usual path is printable: checked in C, at once
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text[:MAX_PATH] + ("…" if len(text) > MAX_PATH else "")


class Finished:
    """A request answered, as the access line and the metrics see it."""

    __slots__ = ("duration", "method", "path", "request_id", "route", "signed_in", "status")

    def __init__(self, method: str, route: str | None, path: str, status: int, duration: float,
                 request_id: str, signed_in: bool) -> None:  # fmt: skip
        self.method, self.route, self.path, self.status = method, route, path, status
        self.duration, self.request_id, self.signed_in = duration, request_id, signed_in


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class AccessLog:
    """The outermost WSGI layer: request id in and out, one access line, the observers
    (metrics) told of each finished request."""

    def __init__(self, wsgi_app: WSGIApp, observers: list[Callable[[Finished], None]]) -> None:
        self.wsgi_app = wsgi_app
        self.observers = observers
        self.log = logging.getLogger(ACCESS_LOGGER)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        rid = sane_request_id(environ.get("HTTP_X_REQUEST_ID")) or uuid.uuid4().hex
        environ[REQUEST_ID_KEY] = rid
        _request_id.set(rid)
        started = time.perf_counter()
        status = [500]

        def start(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            try:
                status[0] = int(status_line.split(" ", 1)[0])
            except ValueError:
                status[0] = 500
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append(("X-Request-ID", rid))
            return start_response(status_line, headers, exc_info)

        try:
            body = self.wsgi_app(environ, start)
        except BaseException:
            self._finished(environ, 500, started, rid)
            raise
        return ClosingIterator(body, lambda: self._finished(environ, status[0], started, rid))

    def _finished(self, environ: Environ, status: int, started: float, rid: str) -> None:
        try:
            duration = time.perf_counter() - started
            method = str(environ.get("REQUEST_METHOD", "GET"))
            method = method if method in _METHODS else "OTHER"
            done = Finished(method, environ.get(ROUTE_KEY), _loggable_path(environ), status,
                            duration, rid, bool(environ.get(SIGNED_IN_KEY)))  # fmt: skip
            self._log(done)
            for observer in self.observers:
                observer(done)
        except Exception:  # noqa: BLE001  (the access line must never break a response)
            logging.getLogger(__name__).exception("the access line failed")
        finally:
            _request_id.set(None)

    def _log(self, done: Finished) -> None:
        ms = round(done.duration * 1000, 1)
        signed = "yes" if done.signed_in else "no"
        self.log.info(
            "%s %s route=%s status=%d duration_ms=%.1f signed_in=%s",
            done.method, done.path, done.route or "-", done.status, ms, signed,
            extra={"request_id": done.request_id, "access": {
                "method": done.method, "path": done.path, "route": done.route,
                "status": done.status, "duration_ms": ms, "signed_in": done.signed_in,
            }},
        )  # fmt: skip


def install_access_log(app: Flask) -> None:
    """Wrap the app (call last: outside the fast path and ProxyFix) and note, after each Flask
    response, the route that answered and whether the session is signed in."""
    observers: list[Callable[[Finished], None]] = app.extensions.setdefault(OBSERVERS_KEY, [])

    @app.after_request
    def note_route(response: Response) -> Response:
        rule = request.url_rule
        # Flask-Login keeps the signed-in user's id under this key; `in` reads the session
        # without marking it accessed (no Vary: Cookie is added by asking)
        mark_request(request.environ, rule.rule if rule is not None else None,
                     request.view_args, "_user_id" in session)  # fmt: skip
        return response

    app.wsgi_app = AccessLog(app.wsgi_app, observers)  # type: ignore[method-assign]  # Flask's documented way to wrap
