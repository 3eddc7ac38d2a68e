"""Monthly pledges through Stripe: the support page and card form (views.py), the rules
(service.py), Stripe's state written to our rows (records.py), the webhook (webhooks.py),
the catch-up (sync.py) and the only code that talks to Stripe (gateway.py)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """/support, /pledge…, POST /stripe/webhook; `flask sync-stripe`."""
    from patrons.pledges import cli, views, webhooks

    app.register_blueprint(views.bp)
    app.register_blueprint(webhooks.bp)
    app.cli.add_command(cli.sync_stripe)
