"""Staff pages: articles, corrections, site texts and members (views), voting rounds and
proposals (voting), reports (reports), the Stripe events that failed to apply
(stripe_events) and the offline Stripe's simulations (simulate).

Every route is staff-only: the check sits on the parent blueprint (views.bp), whose
before_request and after_request run for its children too.
"""

from flask import Flask

from patrons.staff import reports, simulate, stripe_events, views, voting

for child in (voting.bp, reports.bp, stripe_events.bp, simulate.bp):
    views.bp.register_blueprint(child)


def register(app: Flask) -> None:
    app.register_blueprint(views.bp)
