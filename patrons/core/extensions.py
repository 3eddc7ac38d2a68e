"""Extension objects, created unbound and initialised by the app factory."""

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
