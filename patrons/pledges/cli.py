"""The pledges' commands: `sync-stripe` (catch up with Stripe after missed webhooks) and
`stripe-worker` (apply the webhook's stored events; run beside the server)."""

from __future__ import annotations

import logging
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from patrons.core import clock
from patrons.core.config import Settings
from patrons.core.db import session as db
from patrons.pledges import inbox, sync
from patrons.pledges.billing import gateway
from patrons.pledges.gateway import Gateway
from patrons.pledges.stripe_objects import GatewayError

log = logging.getLogger(__name__)


def _gateway() -> Gateway:
    gw = gateway()
    if gw is None:
        raise click.ClickException("Stripe is not configured: set STRIPE_SECRET_KEY.")
    return gw


def _settings() -> Settings:
    settings: Settings = current_app.config["SETTINGS"]
    return settings


def sync_once(gw: Gateway) -> list[str]:
    """One reconciliation with Stripe, committed (sync-stripe, stripe-worker and the worker)."""
    try:
        changes = sync.sync_stripe(db, gw, now=clock.now(),
                                   grace_days=_settings().pledge_grace_days)  # fmt: skip
    except GatewayError as exc:
        db.rollback()
        raise click.ClickException(f"Stripe did not answer: {exc.message}") from exc
    db.commit()
    return changes


@click.command("sync-stripe")
@with_appcontext
def sync_stripe() -> None:
    """Bring pledges and payments in line with Stripe (after missed webhooks); print the changes."""
    changes = sync_once(_gateway())
    for line in changes:
        click.echo(line)
    if not changes:
        click.echo("Nothing to change.")


@click.command("stripe-worker")
@click.option("--once", is_flag=True, help="Apply what is due now, then stop.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between looks.")
@click.option("--sync-every", default=0.0, show_default=True,
              help="Hours between full reconciliations with Stripe (0: never).")  # fmt: skip
@with_appcontext
def stripe_worker(once: bool, interval: float, sync_every: float) -> None:
    """Apply the Stripe events the webhook stored: those whose background thread did not,
    those waiting for a retry, and those staff retried. Safe to run as several processes."""
    gw = _gateway()
    grace = _settings().pledge_grace_days
    next_sync = time.monotonic() if sync_every > 0 else float("inf")
    while True:
        counts = inbox.apply_due(db, gw, grace_days=grace)
        if counts:
            click.echo(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
        if time.monotonic() >= next_sync:
            _run_sync(gw)
            next_sync = time.monotonic() + sync_every * 3600
        if once:
            return
        if not counts:
            time.sleep(interval)


def _run_sync(gw: Gateway) -> None:
    try:
        for line in sync_once(gw):
            click.echo(f"sync: {line}")
    except click.ClickException as exc:
        log.warning("stripe-worker: the reconciliation failed (%s); next time", exc.message)
