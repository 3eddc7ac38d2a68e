"""The growth funnel and attribution: article views, prompts (the banner and the ad-blocker
notice) shown and clicked, the sign-ups and first payments that followed each, the articles
that convert best, and the ad-blocker notice's own figures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from patrons.reports import queries
from patrons.reports.charts import bar_chart
from patrons.reports.tables import TOP_ARTICLES, Dashboard, Table, pct, percent

MIN_VIEWS = 100  # below this, a conversion rate is noise: such articles are not ranked


def add_funnel(db: Session, dash: Dashboard) -> None:
    """The funnel, articles and notice tables, and the funnel's chart."""
    rng = dash.range
    counts = {r.kind: int(r.total) for r in queries.counter_totals(db, rng.first, rng.last)}
    by_prompt = {r.prompt: r for r in queries.conversions_by_prompt(db, rng.start, rng.end)}
    _funnel_table(dash, counts, by_prompt)
    articles = queries.article_funnel(
        db, rng.first, rng.last, rng.start, rng.end, MIN_VIEWS, TOP_ARTICLES
    )
    dash.tables["articles"] = article_table(articles)
    _notice_table(dash, counts, by_prompt)


def _conversions(by_prompt: dict[str | None, Any], prompt: str, name: str) -> int:
    """Sign-ups or first payments (`name`) that followed a prompt; 0 when none did."""
    row = by_prompt.get(prompt)
    return int(getattr(row, name)) if row else 0


def _funnel_table(
    dash: Dashboard, counts: dict[str, int], by_prompt: dict[str | None, Any]
) -> None:
    def conv(prompt: str, name: str) -> int:
        return _conversions(by_prompt, prompt, name)

    all_signups = sum(int(r.signups) for r in by_prompt.values())
    all_firsts = sum(int(r.first_payments) for r in by_prompt.values())
    views = counts.get("view", 0)
    steps: list[tuple[str, Any, Any, int | None]] = [
        (_("Article views"), "", "", views),
        (
            _("Prompt shown"),
            counts.get("banner_impression", 0),
            counts.get("notice_impression", 0),
            None,
        ),
        (_("Prompt clicked"), counts.get("banner_click", 0), counts.get("notice_click", 0), None),
        (_("Sign-ups"), conv("banner", "signups"), conv("notice", "signups"), all_signups),
        (
            _("First payments"),
            conv("banner", "first_payments"),
            conv("notice", "first_payments"),
            all_firsts,
        ),
    ]
    rows: list[list[Any]] = []
    for label, banner, notice, total in steps:
        rows.append([label, banner, notice, total if total is not None else banner + notice])
    dash.tables["funnel"] = Table(
        "funnel", [_("Step"), _("Banner"), _("Ad-blocker notice"), _("All")], rows
    )
    dash.charts["funnel"] = bar_chart(
        _("Prompts shown to first payments, logarithmic (each line ten times the last)"),
        [r[0] for r in rows[1:]],
        [
            (_("Banner"), "bar--mrr", [r[1] for r in rows[1:]]),
            (_("Ad-blocker notice"), "bar--cancelled", [r[2] for r in rows[1:]]),
        ],
        log=True,
    )
    dash.headline.update(signups=all_signups, first_payments=all_firsts, views=views)


def _notice_table(
    dash: Dashboard, counts: dict[str, int], by_prompt: dict[str | None, Any]
) -> None:
    views = counts.get("view", 0)
    shown = counts.get("notice_impression", 0)
    dismissed = counts.get("notice_dismiss", 0)
    dash.tables["notice"] = Table(
        "notice",
        [_("Figure"), _("Value")],
        [
            [_("Article views"), views],
            [_("Views with the notice shown (an ad blocker was found)"), shown],
            [_("Share of views with an ad blocker (%)"), pct(percent(shown, views))],
            [_("Notices dismissed"), dismissed],
            [_("Share of shown notices dismissed (%)"), pct(percent(dismissed, shown))],
            [_("Notice's “Become a Patron” clicked"), counts.get("notice_click", 0)],
            [_("Sign-ups that followed the notice"), _conversions(by_prompt, "notice", "signups")],
            [
                _("First payments that followed the notice"),
                _conversions(by_prompt, "notice", "first_payments"),
            ],
        ],
    )


def article_table(rows: Sequence[Any]) -> Table:
    return Table(
        "articles",
        [
            _("Article"),
            _("Views"),
            _("Banner clicks"),
            _("Notice clicks"),
            _("Sign-ups"),
            _("First payments"),
            _("First payments per 1,000 views"),
        ],
        [
            [
                r.title,
                int(r.views),
                int(r.banner_clicks),
                int(r.notice_clicks),
                int(r.signups),
                int(r.first_payments),
                f"{1000 * int(r.first_payments) / int(r.views):.2f}" if int(r.views) else "",
            ]
            for r in rows
        ],
    )
