"""Monthly pledges through Stripe: the support page and card form (views.py, templating.py),
the services they call (choice.py, starting.py, managing.py, queries.py; offline,
simulations.py), Stripe's state written to our rows (records.py), the webhook (webhooks.py),
the catch-up (sync.py), who counts as a patron (entitlement.py), and the only code that talks
to Stripe (gateway.py, whose answers are the values of stripe_objects.py)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """/support, /pledge…, POST /stripe/webhook; `flask sync-stripe`; the template globals
    `money`, `amount_label`, `major_units` and `pledge_summary`."""
    from patrons.pledges import cli, templating, views, webhooks

    app.context_processor(templating.pledge_helpers)
    app.register_blueprint(views.bp)
    app.register_blueprint(webhooks.bp)
    app.cli.add_command(cli.sync_stripe)
    app.cli.add_command(cli.stripe_worker)
