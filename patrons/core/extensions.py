"""Extension objects, created unbound and initialised by the app factory, and the typed
`login_required` every feature's views use."""

from collections.abc import Callable
from typing import TypeVar, cast

import flask_login
from flask.typing import ResponseReturnValue
from flask_babel import Babel
from flask_caching import Cache
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager

from patrons.core.signing import RotatingCSRFProtect

csrf = RotatingCSRFProtect()  # Flask-WTF's, also taking tokens of SECRET_KEY_FALLBACKS
login_manager = LoginManager()
cache = Cache()
# English only for now: no per-request locale selector.
babel = Babel()
# Keyed by the client address as ProxyFix leaves it: only PROXY_HOPS proxies are trusted.
# No rate-limit headers on every answer: Flask-Limiter's Retry-After would name the end of the
# route's window even on a 503 that asks to try again in a minute; a 429 says a minute
# itself (patrons/web.py, _error_page).
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)


View = TypeVar("View", bound=Callable[..., ResponseReturnValue])


def login_required(view: View) -> View:
    """Flask-Login's `login_required`, typed (Flask-Login ships no type information)."""
    return cast(View, flask_login.login_required(view))
