"""`flask --app patrons worker [--once] [--interval SECONDS] [--only JOB]…`."""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import with_appcontext

from patrons.core.config import ConfigError
from patrons.worker.jobs import JOB_NAMES
from patrons.worker.loop import Worker, echo_report, log


@click.command("worker")
@click.option("--once", is_flag=True, help="One pass of everything due, then stop (tests, cron).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between passes.")  # fmt: skip
@click.option("--only", "only", multiple=True, type=click.Choice(JOB_NAMES),
              help="Run only this job (repeatable).")  # fmt: skip
@click.option("--worker-id", default=None, help="This worker's name in the heartbeats "
              "(default: host:pid).")  # fmt: skip
@with_appcontext
def worker(once: bool, interval: float, only: tuple[str, ...], worker_id: str | None) -> None:
    """Send mail, apply Stripe events, close voting rounds, reconcile with Stripe nightly,
    update the reports and purge old data. Safe to run as several processes."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # the real app, for threads and contexts
    w = Worker(app, only=only) if worker_id is None else Worker(app, worker_id, only)
    w.handle_signals()
    log.info("worker %s started (%s)", w.worker_id, ", ".join(j.name for j in w.jobs()))
    try:
        if once:
            echo_report(w.run_pass())
            return
        w.run(once=False, interval=interval)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("Stopped.")
