"""Voting on coverage: patrons back the topics the newsroom covers next (service.py gathers
the rules, kept by job in rules, rounds, votes, proposals, results and outcomes; views.py
has the public pages; the staff pages are patrons/staff/voting.py)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """/topics…; a refund or dispute recorded by pledges withdraws the patron's votes."""
    from patrons.core import signals
    from patrons.voting import views, votes

    app.register_blueprint(views.bp)
    signals.payment_taken_back.connect(votes.withdraw_votes_on_refund)
