"""The app's Stripe gateway, built once per app from its settings; None when Stripe is not
configured (the support page then says pledges are not open yet)."""

from __future__ import annotations

from typing import cast

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
        timeout=settings.stripe_timeout,
        network_retries=settings.stripe_network_retries,
    )


def gateway(app: Flask | None = None) -> Gateway | None:
    """The app's gateway (by default the current app's), made on first use."""
    target = current_app if app is None else app
    if _KEY not in target.extensions:
        target.extensions[_KEY] = make_gateway(target.config["SETTINGS"])
    return cast("Gateway | None", target.extensions[_KEY])
