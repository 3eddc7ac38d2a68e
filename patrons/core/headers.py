"""The security headers every response carries, the Content-Security-Policy, which responses
are private, and redirects that never name the request's host.

The threats they answer are in docs/security.md (clickjacking, script injection, sniffing,
caching of private pages, Host-header abuse).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from patrons.core.config import Settings


def security_headers(settings: Settings) -> tuple[tuple[str, str], ...]:
    """The headers every response carries besides the CSP (which varies with ad tags)."""
    headers = [
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ]
    if settings.is_production:
        headers.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
    return tuple(headers)


def stripe_origins(settings: Settings) -> tuple[str, str, str]:
    """(script-src, connect-src, frame-src) additions for Stripe.js: Stripe's own hosts, or
    localstripe's origin offline (its fake Stripe.js is served and talks from there)."""
    if settings.stripe_api_base:
        parts = urlsplit(settings.stripe_api_base)
        origin = f"{parts.scheme}://{parts.netloc}"
        return origin, origin, origin
    return ("https://js.stripe.com", "https://api.stripe.com",
            "https://js.stripe.com https://hooks.stripe.com")  # fmt: skip


@lru_cache(maxsize=64)
def content_security_policy(
    settings: Settings, script_hashes: tuple[str, ...] = (), *, stripe: bool = False
) -> str:
    """No inline scripts: the site's own JS is in files; ad tags' inline scripts go in by hash.
    `stripe`: also allow Stripe.js (only on the pages with a card form)."""
    ad_hosts = " ".join(settings.ad_hosts)
    hashes = " ".join(f"'{h}'" for h in script_hashes)
    js, api, frames = stripe_origins(settings) if stripe else ("", "", "")
    script_src = " ".join(x for x in ("'self'", ad_hosts, js, hashes) if x)
    frame_src = " ".join(x for x in (ad_hosts, frames) if x)
    directives = [
        "default-src 'self'",
        f"script-src {script_src}",
        "style-src 'self'",
        "img-src 'self' https:",
        "font-src 'self'",
        " ".join(x for x in ("connect-src 'self'", ad_hosts, api) if x),
        f"frame-src {frame_src}" if frame_src else "frame-src 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


# Responses no cache may keep (docs/security.md, caching of private pages): every response
# for a signed-in session, and every page of these blueprints whether or not signed in.
NO_STORE = "private, no-store"
PRIVATE_BLUEPRINTS = frozenset({"accounts", "pledges", "staff", "stripe"})


def is_private(blueprints: list[str], signed_in: bool) -> bool:
    """Whether a response is `NO_STORE`: `blueprints` are the request's, innermost first
    (Flask's `request.blueprints`: a child blueprint's parents are in it too)."""
    return signed_in or not PRIVATE_BLUEPRINTS.isdisjoint(blueprints)


def location_without_host(location: str, request_host: str) -> str:
    """A redirect's Location with the request's own host taken out: the path alone.

    Werkzeug builds some redirects from the Host header (the trailing-slash redirect of
    `/staff` to `/staff/`, for one), which a forged header would point elsewhere, and a cache
    would keep. A browser resolves a path against the address it asked for, which is the
    right host whatever the header said. Locations elsewhere (Stripe's) are left alone."""
    parts = urlsplit(location)
    if not parts.netloc or parts.netloc.lower() != request_host.lower():
        return location
    path = "/" + parts.path.lstrip("/\\")  # never "//elsewhere": a host again, to a browser
    return urlunsplit(("", "", path, parts.query, parts.fragment))
