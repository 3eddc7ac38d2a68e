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
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
login_manager = LoginManager()
cache = Cache()
# English only for now: no per-request locale selector.
babel = Babel()
# Keyed by the client address as ProxyFix leaves it: only PROXY_HOPS proxies are trusted.
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


View = TypeVar("View", bound=Callable[..., ResponseReturnValue])


def login_required(view: View) -> View:
    """Flask-Login's `login_required`, typed (Flask-Login ships no type information)."""
    return cast(View, flask_login.login_required(view))
