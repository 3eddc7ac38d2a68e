"""`flask --app patrons ...` commands."""

from __future__ import annotations

import secrets
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from patrons.db import session as db


def register(app: Flask) -> None:
    for command in (create_staff, seed_demo, import_feed):
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
