"""Staff pages: articles, corrections, site texts and members (views), voting rounds and
proposals (voting), reports (reports), the Stripe events that failed to apply
(stripe_events), the offline Stripe's simulations (simulate) and the audit log of staff
actions (audit_log).

Every route is staff-only: the check sits on the parent blueprint (views.bp), whose
before_request and after_request run for its children too.
"""

from flask import Flask

from patrons.accounts import audit_retention
from patrons.staff import audit_log, reports, simulate, stripe_events, views, voting

for child in (voting.bp, reports.bp, stripe_events.bp, simulate.bp, audit_log.bp):
    views.bp.register_blueprint(child)


def register(app: Flask) -> None:
    app.register_blueprint(views.bp)
    app.cli.add_command(audit_retention.prune_audit)  # the audit log's retention
