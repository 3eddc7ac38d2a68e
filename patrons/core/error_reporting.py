"""Optional error reporting to Sentry: `SENTRY_DSN` turns it on; without it sentry_sdk is never
imported and nothing is sent anywhere.

With it, sentry-sdk's Flask integration reports unhandled errors with personal data scrubbed:
`send_default_pii=False` (no user, no IP address, no cookies from the SDK itself), and
`scrub_event` removes what could still name a reader or open their session: the request's
cookies, its query string and body (form data), and the Authorization, Cookie, Set-Cookie,
Stripe-Signature and X-Forwarded-For headers. Performance tracing stays off.
"""

from __future__ import annotations

import logging
import re
from typing import Any, cast

from patrons.core.config import Settings

log = logging.getLogger(__name__)

KEPT_HEADERS = frozenset(
    {"accept", "accept-language", "content-type", "content-length", "host", "user-agent",
     "x-request-id", "x-forwarded-proto", "referer"}
)  # fmt: skip
FILTERED = "[Filtered]"


def init(settings: Settings) -> bool:
    """Start the SDK if SENTRY_DSN is set; whether it was started."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.env,
        integrations=[FlaskIntegration()],
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,  # a frame's locals may hold an address or a token
        traces_sample_rate=0.0,
        before_send=cast(Any, scrub_event),  # typed for sentry's Event TypedDict; a dict here
    )
    log.info("error reporting to Sentry is on")
    return True


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The event without cookies, query string, body or any header not known to be harmless,
    and with email addresses blanked out of its messages and breadcrumbs."""
    request = event.get("request")
    if isinstance(request, dict):
        _scrub_request(request)
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {k: v for k, v in user.items() if k == "id"}
    breadcrumbs = event.get("breadcrumbs")
    crumbs = breadcrumbs.get("values", []) if isinstance(breadcrumbs, dict) else breadcrumbs
    for crumb in crumbs if isinstance(crumbs, list) else []:
        if isinstance(crumb, dict):
            _scrub_breadcrumb(crumb)
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        _scrub_texts(logentry, ("message", "formatted"))
        if isinstance(logentry.get("params"), list | tuple):
            logentry["params"] = [_no_addresses(str(p)) for p in logentry["params"]]
    exceptions = event.get("exception")
    for exc in exceptions.get("values") or [] if isinstance(exceptions, dict) else []:
        if isinstance(exc, dict):
            _scrub_texts(exc, ("value",))
    return event


def _scrub_request(request: dict[str, Any]) -> None:
    for name in ("cookies", "data", "query_string"):
        request.pop(name, None)
    if isinstance(request.get("url"), str):
        request["url"] = request["url"].split("?", 1)[0]
    headers = request.get("headers")
    if isinstance(headers, dict):
        request["headers"] = {
            name: (value if str(name).lower() in KEPT_HEADERS else FILTERED)
            for name, value in headers.items()
        }
    env = request.get("env")
    if isinstance(env, dict):
        env.pop("REMOTE_ADDR", None)


def _scrub_breadcrumb(crumb: dict[str, Any]) -> None:
    _scrub_texts(crumb, ("message",))
    data = crumb.get("data")
    if isinstance(data, dict):
        data.pop("http.query", None)
        data.pop("http.fragment", None)
        if isinstance(data.get("url"), str):
            data["url"] = data["url"].split("?", 1)[0]


def _scrub_texts(holder: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if isinstance(holder.get(name), str):
            holder[name] = _no_addresses(holder[name])


_ADDRESS = re.compile(r"[^\s<>\"'@]+@[^\s<>\"'@]+\.[^\s<>\"'@]+")


def _no_addresses(text: str) -> str:
    """Email addresses (a log line about a message names its recipient) blanked out."""
    return _ADDRESS.sub("[email]", text)
