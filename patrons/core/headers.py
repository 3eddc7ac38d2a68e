"""The security headers every response carries, and the Content-Security-Policy.

The threats they answer are in docs/security.md (clickjacking, script injection, sniffing).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

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
