"""Readers taking part: voting rounds in the range with their turnout (voters ÷ the active
patrons when the round closed, or today for an open one) and results, and the correction
suggestions per article and status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from patrons.reports import queries
from patrons.reports.revenue import MonthEnd, month_ends
from patrons.reports.tables import TOP_ARTICLES, Dashboard, Table, pct, percent

ROUNDS = 12


def add_voting(db: Session, dash: Dashboard) -> None:
    """The rounds and results tables (after add_revenue and add_today: turnout needs their
    patron counts)."""
    rounds = queries.rounds_in_range(db, dash.range.start, dash.range.end, ROUNDS)
    ends: dict[str, MonthEnd] = dash.headline["month_ends"]
    deltas: Sequence[Any] | None = None
    rows: list[list[Any]] = []
    for r in rounds:
        closes = r.closes_at
        if closes > dash.now:
            eligible = dash.headline["patrons"]
        else:
            month = closes.strftime("%Y-%m")
            if month not in ends:  # a round outside the months computed so far
                deltas = deltas if deltas is not None else dash.headline["deltas"]
                ends.update(month_ends(deltas, [month]))
            eligible = ends[month].patrons
        rows.append(
            [
                r.title,
                _day(r.opens_at),
                _day(r.closes_at),
                int(r.voters),
                eligible,
                pct(percent(int(r.voters), eligible)),
                int(r.votes),
            ]
        )
    dash.tables["voting"] = Table(
        "voting",
        [
            _("Round"),
            _("Opens"),
            _("Closes"),
            _("Voters"),
            _("Active patrons"),
            _("Turnout (%)"),
            _("Votes"),
        ],
        rows,
    )
    titles = {r.id: r.title for r in rounds}
    order = {round_id: i for i, round_id in enumerate(titles)}  # as the rounds table: newest first
    results = sorted(queries.round_results(db, list(titles)), key=lambda r: order[r.round_id])
    dash.tables["results"] = Table(
        "results",
        [_("Round"), _("Topic"), _("Status"), _("Votes")],
        [[titles[r.round_id], r.title, r.status, int(r.votes)] for r in results],
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
