"""`flask --app patrons sync-stripe`: catch up with Stripe after missed webhooks."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from patrons.core.db import session as db


@click.command("sync-stripe")
@with_appcontext
def sync_stripe() -> None:
    """Bring pledges and payments in line with Stripe (after missed webhooks); print the changes."""
    from patrons.core import clock
    from patrons.pledges import sync
    from patrons.pledges.billing import gateway
    from patrons.pledges.stripe_objects import GatewayError

    gw = gateway()
    if gw is None:
        raise click.ClickException("Stripe is not configured: set STRIPE_SECRET_KEY.")
    try:
        changes = sync.sync_stripe(db, gw, now=clock.now())
    except GatewayError as exc:
        db.rollback()
        raise click.ClickException(f"Stripe did not answer: {exc.message}") from exc
    db.commit()
    for line in changes:
        click.echo(line)
    if not changes:
        click.echo("Nothing to change.")
