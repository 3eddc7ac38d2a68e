"""Readers taking part: the voting rounds open at some time in the range, with their voters,
active patrons, turnout and votes, and their results; and the correction suggestions per
article and status.

Every voting figure is patrons/voting/participation.py's, the definitions the results pages,
the staff round page and its CSV use: counted votes only, a closed round's frozen results,
turnout = voters ÷ active patrons now. The reports only read: a closed round not read since
its close shows the counts its first read will freeze.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from patrons.models import Round
from patrons.reports import queries
from patrons.reports.tables import TOP_ARTICLES, Dashboard, Table, pct, percent
from patrons.voting.participation import round_figures
from patrons.voting.results import listed_topics

ROUNDS = 12


def rounds_in_range(db: Session, start: datetime, end: datetime, limit: int) -> list[Round]:
    """Rounds open at some time in [start, end), newest first."""
    return list(
        db.scalars(
            select(Round)
            .where(Round.opens_at < end, Round.closes_at >= start)
            .order_by(Round.closes_at.desc(), Round.id.desc())
            .limit(limit)
            .options(selectinload(Round.topics))
        )
    )


def add_voting(db: Session, dash: Dashboard, grace_days: int) -> None:
    """The rounds and results tables."""
    rounds = rounds_in_range(db, dash.range.start, dash.range.end, ROUNDS)
    figures = round_figures(db, rounds, dash.now, grace_days)
    rows: list[list[Any]] = []
    results: list[list[Any]] = []
    for f in figures:
        voters, eligible = f.turnout.voters, f.turnout.eligible
        rows.append([f.round.title, _day(f.round.opens_at), _day(f.round.closes_at),
                     voters, eligible, pct(percent(voters, eligible)), f.votes])  # fmt: skip
        results += [[f.round.title, t.title, t.status, f.results.get(t.id, 0)]
                    for t in listed_topics(f.round, f.results)]  # fmt: skip
    dash.tables["voting"] = Table(
        "voting",
        [_("Round"), _("Opens"), _("Closes"), _("Voters"), _("Active patrons now"),
         _("Turnout (%)"), _("Votes")],
        rows,
    )  # fmt: skip
    dash.tables["results"] = Table(
        "results", [_("Round"), _("Topic"), _("Status"), _("Votes")], results
    )


def _day(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value)[:10]


def corrections_table(rows: Sequence[Any]) -> Table:
    general = _("(general corrections form)")
    return Table(
        "corrections",
        [_("Article"), _("Open"), _("Resolved"), _("Declined")],
        [
            [
                r.title if r.article_id is not None else general,
                int(r.open),
                int(r.resolved),
                int(r.declined),
            ]
            for r in rows
        ],
    )


def add_corrections(db: Session, dash: Dashboard) -> None:
    """The corrections table, the most open first, and the totals per status."""
    rng = dash.range
    rows = queries.corrections_by_article(db, rng.start, rng.end, TOP_ARTICLES)
    dash.tables["corrections"] = corrections_table(rows)
    found = queries.corrections_totals(db, rng.start, rng.end)
    totals = {r.status: int(r.suggestions) for r in found}
    dash.headline["corrections"] = totals
