"""Voting on coverage: patrons back the topics the newsroom covers next (service.py gathers
the rules, kept by job in rules, rounds, votes, proposals, results and outcomes; views.py
has the public pages; the staff pages are patrons/staff/voting.py)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """/topics. (A refund or a dispute needs no receiver here: the votes cast with that
    payment stop counting by themselves, participation.py.)"""
    from patrons.voting import views

    app.register_blueprint(views.bp)
