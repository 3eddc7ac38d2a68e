"""`flask --app patrons update-reports`: bring the reports' daily rollup up to date.

Run it daily (cron, or beside the mail worker): the dashboard reads the rollup and never
writes it (rollup.py), so its figures are the same without it, only slower to compute.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from patrons.core import clock
from patrons.core.config import Settings
from patrons.core.db import session as db
from patrons.reports import rollup


@click.command("update-reports")
@with_appcontext
def update_reports() -> None:
    """Add the days that can no longer change to the reports' daily rollup."""
    settings: Settings = current_app.config["SETTINGS"]
    done = rollup.update(db, clock.now(), settings.pledge_grace_days)
    db.commit()
    click.echo(
        f"Reports rollup: {done.rows} rows added; it holds every day before "
        f"{done.settled_until.date().isoformat()}."
    )
