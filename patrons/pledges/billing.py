"""The app's Stripe gateway, built once per app from its settings; None when Stripe is not
configured (the support page then says pledges are not open yet)."""

from __future__ import annotations

from flask import Flask, current_app

from patrons.core.config import Settings
from patrons.pledges.gateway import Gateway

_KEY = "patrons.gateway"


def make_gateway(settings: Settings) -> Gateway | None:
    if not settings.stripe_secret_key:
        return None
    return Gateway(
        settings.stripe_secret_key,
        webhook_secret=settings.stripe_webhook_secret,
        api_base=settings.stripe_api_base,
        livemode=settings.stripe_secret_key.startswith(("sk_live_", "rk_live_")),
    )


def gateway(app: Flask | None = None) -> Gateway | None:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    if _KEY not in app.extensions:
        app.extensions[_KEY] = make_gateway(app.config["SETTINGS"])
    return app.extensions[_KEY]
