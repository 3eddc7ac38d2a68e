"""`flask --app patrons worker`: one long-running process for everything scheduled.

Every pass it sends the mail that is due, applies the stored Stripe events and closes the
voting rounds that have ended (mailing their results); on their own schedules it reconciles
with Stripe (daily), brings the reports' rollup up to date (hourly) and purges what has served
its time (hourly). jobs.py lists the jobs, leases.py says how several workers share them,
purges.py what is deleted or blanked and what is kept, loop.py runs the passes.
"""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from patrons.worker.cli import worker

    app.cli.add_command(worker)
