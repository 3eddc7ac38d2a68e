"""`flask --app patrons ...` commands of the app as a whole: the demo data and the mail worker.
Each feature registers its own (accounts/cli.py, articles/cli.py, pledges/cli.py)."""

from __future__ import annotations

import logging
import time

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from patrons.core.db import session as db

log = logging.getLogger(__name__)
MAIL_BATCH = 100  # messages per send-mail round


def register(app: Flask) -> None:
    for command in (seed_demo, send_mail, db_upgrade):
        app.cli.add_command(command)


@click.command("db-upgrade")
@with_appcontext
@click.option("--revision", default="head", show_default=True, help="Alembic revision to reach.")
def db_upgrade(revision: str) -> None:
    """Migrate the database (DATABASE_URL) to the newest schema, from the migrations that
    came with the code: the checkout's alembic/, or the installed package's copy."""
    from alembic import command

    from patrons.core.resources import alembic_config

    url = current_app.config["SETTINGS"].database_url
    command.upgrade(alembic_config(url), revision)
    click.echo(f"Database at {revision}.")


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
    from patrons.core.config import ConfigError

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
