"""`flask --app patrons ...` commands."""

from __future__ import annotations

import logging
import secrets
import sys
import time

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from patrons.db import session as db

log = logging.getLogger(__name__)
MAIL_BATCH = 100  # messages per send-mail round


def register(app: Flask) -> None:
    for command in (create_staff, seed_demo, import_feed, send_mail, sync_stripe):
        app.cli.add_command(command)


@click.command("create-staff")
@with_appcontext
@click.argument("email")
@click.option("--password", envvar="STAFF_PASSWORD", help="Default: asked for, or generated.")
def create_staff(email: str, password: str | None) -> None:
    """Create a staff account for EMAIL, or make that account staff."""
    from patrons.accounts import auth

    try:
        email = auth.valid_email(email)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from None
    existing = auth.find_user_by_email(db, email)
    generated = False
    if existing is None and not password:
        if sys.stdin.isatty():
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        else:
            password, generated = secrets.token_urlsafe(12), True
    if password is not None and len(password) < 10:
        raise click.BadParameter("use at least 10 characters", param_hint="--password")
    user, created = auth.create_or_promote_staff(db, email, password)
    db.commit()
    click.echo(f"{'Created' if created else 'Promoted'} staff account {user.email}.")
    if generated:
        click.echo(f"Generated password: {password}")


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Load demo articles, topics and staff (idempotent; refused in production)."""
    from patrons import demo

    if current_app.config["SETTINGS"].is_production:
        raise click.ClickException("seed-demo is for development; it refuses to run in production")
    report = demo.seed(db)
    db.commit()
    click.echo(report)


@click.command("import-feed")
@with_appcontext
@click.argument("source")
@click.option("--publish/--draft", default=True, help="Publish imported articles (default).")
def import_feed(source: str, publish: bool) -> None:
    """Import an RSS/Atom feed or a WordPress REST API export (JSON) from a path or URL."""
    from patrons.articles import feeds
    from patrons.site import forget_cached

    try:
        result = feeds.import_feed(db, source, publish=publish)
    except feeds.FeedError as exc:
        db.rollback()
        raise click.ClickException(str(exc)) from exc
    db.commit()
    forget_cached()
    click.echo(result.summary())


@click.command("send-mail")
@with_appcontext
@click.option(
    "--loop",
    "interval",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Keep running as a worker: send what is due every SECONDS.",
)
def send_mail(interval: float | None) -> None:
    """Send the queued email that is due and print the counts (once, or every SECONDS)."""
    from patrons import mail
    from patrons.config import ConfigError

    settings = current_app.config["SETTINGS"]
    try:
        while True:
            try:
                report = mail.send_pending(db, settings, limit=MAIL_BATCH)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from exc
            except Exception:
                if interval is None:
                    raise
                log.exception("send-mail: this round failed; trying again in %s s", interval)
                report = mail.SendReport()
            finally:
                db.close()  # a worker keeps no objects (or connection) between rounds
            if interval is None or report.total:
                click.echo(report.summary())
            if interval is None:
                return
            if report.total < MAIL_BATCH:  # a full batch means more may be due: go on at once
                time.sleep(interval)
    except KeyboardInterrupt:
        click.echo("Stopped.")


@click.command("sync-stripe")
@with_appcontext
def sync_stripe() -> None:
    """Bring pledges and payments in line with Stripe (after missed webhooks); print the changes."""
    from patrons import clock
    from patrons.pledges import sync
    from patrons.pledges.billing import gateway
    from patrons.pledges.gateway import GatewayError

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
