"""The dashboard's figures, put together from the queries: each section a table (shown on
the page and downloadable as CSV) and, where a picture helps, a chart of the same numbers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from patrons.core.money import major_decimal
from patrons.reports import queries, rollup
from patrons.reports.charts import Chart, bar_chart
from patrons.reports.dates import ReportRange
from patrons.reports.rates import Converted, Rates

TOP_ARTICLES = 20
MIN_VIEWS = 100  # below this, a conversion rate is noise: such articles are not ranked
ROUNDS = 12

# the tables of the dashboard, in page order: name → title (the name is the CSV's)
TABLES = {
    "mrr": _l("Monthly recurring revenue by month"),
    "patrons": _l("Patrons by month"),
    "now": _l("Today, per currency"),
    "distribution": _l("Pledge amounts"),
    "payments": _l("Payment health"),
    "funnel": _l("Growth funnel"),
    "articles": _l("Articles that convert best"),
    "notice": _l("The ad-blocker notice"),
    "voting": _l("Voting rounds"),
    "results": _l("Voting results"),
    "corrections": _l("Corrections per article"),
}


@dataclass
class Table:
    name: str
    headers: list[str]
    rows: list[list[Any]]

    @property
    def title(self) -> str:
        return str(TABLES[self.name])


@dataclass
class Dashboard:
    range: ReportRange
    rates: Rates
    now: datetime
    headline: dict[str, Any]
    tables: dict[str, Table] = field(default_factory=dict)
    charts: dict[str, Chart] = field(default_factory=dict)
    missing_rates: set[str] = field(default_factory=set)


def percent(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


# -- patrons and revenue ----------------------------------------------------------------------


@dataclass
class MonthEnd:
    mrr: dict[str, int]
    patrons: int


def month_ends(deltas: Sequence[Any], months: Sequence[str]) -> dict[str, MonthEnd]:
    """Running totals of the monthly changes: MRR per currency and patrons at each month's end
    (the month before the first one included, for its churn)."""
    wanted = sorted(set(months))
    totals: dict[str, int] = defaultdict(int)
    patrons = 0
    ends: dict[str, MonthEnd] = {}
    rows = sorted(deltas, key=lambda r: r.month)
    i = 0
    for month in wanted:
        while i < len(rows) and rows[i].month <= month:
            totals[rows[i].currency] += int(rows[i].amount)
            patrons += int(rows[i].patrons)
            i += 1
        ends[month] = MonthEnd({c: a for c, a in totals.items() if a}, patrons)
    return ends


def previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year - 1:04d}-12" if number == 1 else f"{year:04d}-{number - 1:02d}"


def _revenue(db: Session, dash: Dashboard, grace_days: int, currencies: list[str]) -> None:
    now, reporting = dash.now, dash.rates.reporting
    currencies = [c for c in currencies if c != reporting]
    current = f"{now.year:04d}-{now.month:02d}"
    months = [m for m in dash.range.months() if m <= current]
    found = rollup.history(db, now, grace_days)
    ends = month_ends(found.deltas, [*months, *(previous_month(m) for m in months)])
    mrr_rows, patron_rows = [], []
    for month in months:
        end, before = ends[month], ends[previous_month(month)]
        converted = _convert(dash, end.mrr).amount
        mrr_rows.append(
            [
                month,
                major_decimal(converted),
                *(major_decimal(end.mrr.get(c, 0)) for c in currencies),
            ]
        )
        flow = found.flows.get(month) or rollup.Flow(month, 0, 0, 0)
        churn = _pct(percent(flow.cancelled, before.patrons))
        patron_rows.append([month, end.patrons, flow.new, flow.cancelled, flow.recovered, churn])
    cancelled = sum(r[3] for r in patron_rows)
    exposure = sum(ends[previous_month(m)].patrons for m in months)
    dash.headline.update(churn=percent(cancelled, exposure), churn_parts=(cancelled, exposure),
                         month_ends=ends, deltas=found.deltas, history=found)  # fmt: skip
    _month_tables(dash, months, currencies, mrr_rows, patron_rows)


def _month_tables(dash: Dashboard, months: list[str], currencies: list[str],
                  mrr_rows: list[list[Any]], patron_rows: list[list[Any]]) -> None:  # fmt: skip
    reporting = dash.rates.reporting
    dash.tables["mrr"] = Table(
        "mrr",
        [_("Month"), _("MRR in %(currency)s", currency=reporting),
         *(_("MRR in %(currency)s (not converted)", currency=c) for c in currencies)],
        mrr_rows,
    )  # fmt: skip
    dash.tables["patrons"] = Table(
        "patrons",
        [_("Month"), _("Active patrons at month end"), _("New"), _("Cancelled"),
         _("Recovered"), _("Churn rate (%)")],
        patron_rows,
    )  # fmt: skip
    dash.charts["mrr"] = bar_chart(
        _("MRR at each month's end, in %(currency)s", currency=reporting),
        months,
        [(_("MRR"), "bar--mrr", [float(r[1]) for r in mrr_rows])],
        lambda v: f"{v:,.2f}",
    )
    dash.charts["patrons"] = bar_chart(
        _("New and cancelled patrons per month"),
        months,
        [(_("New"), "bar--new", [r[2] for r in patron_rows]),
         (_("Cancelled"), "bar--cancelled", [r[3] for r in patron_rows]),
         (_("Recovered"), "bar--recovered", [r[4] for r in patron_rows])],
    )  # fmt: skip


def _convert(dash: Dashboard, amounts: dict[str, int]) -> Converted:
    value = dash.rates.convert(amounts)
    dash.missing_rates.update(value.missing)
    return value


def _today(db: Session, dash: Dashboard, grace_days: int) -> None:
    rows = queries.active_pledges_now(db, dash.now, grace_days)
    mrr: dict[str, int] = defaultdict(int)
    patrons: dict[str, int] = defaultdict(int)
    for row in rows:
        mrr[row.currency] += int(row.amount) * int(row.patrons)
        patrons[row.currency] += int(row.patrons)
    total_patrons = sum(patrons.values())
    total = _convert(dash, dict(mrr))
    reporting = dash.rates.reporting
    average = total.amount // total_patrons if total_patrons else None
    cancelled, exposure = dash.headline["churn_parts"]
    # average ÷ (cancelled ÷ exposure), without rounding the churn rate first
    lifetime = round(average * exposure / cancelled) if average is not None and cancelled else None
    dash.headline.update(
        patrons=total_patrons,
        mrr=total.amount,
        average=average,
        lifetime_value=lifetime,
        mrr_by_currency=dict(mrr),
        patrons_by_currency=dict(patrons),
    )
    now_rows = [
        [c, patrons[c], major_decimal(mrr[c]), major_decimal(mrr[c] // patrons[c])]
        for c in sorted(mrr)
    ]
    now_rows.append(
        [
            _("All, in %(currency)s", currency=reporting),
            total_patrons,
            major_decimal(total.amount),
            major_decimal(average),
        ]
    )
    dash.tables["now"] = Table(
        "now", [_("Currency"), _("Active patrons"), _("MRR"), _("Average pledge")], now_rows
    )
    dash.tables["distribution"] = Table(
        "distribution",
        [_("Currency"), _("Monthly pledge"), _("Patrons")],
        [[r.currency, major_decimal(int(r.amount)), int(r.patrons)] for r in rows],
    )
    dash.charts["distribution"] = bar_chart(
        _("Active patrons by monthly pledge"),
        [f"{major_decimal(int(r.amount))} {r.currency}" for r in rows],
        [(_("Patrons"), "bar--patrons", [int(r.patrons) for r in rows])],
    )


# -- payments -------------------------------------------------------------------------------


def _payments(db: Session, dash: Dashboard, grace_days: int) -> None:
    found: rollup.History = dash.headline["history"]
    invoices = rollup.invoices(db, dash.range.start, dash.range.end, found.settled_until)
    noteworthy = {
        r.currency: r
        for r in queries.noteworthy_payments(db, dash.range.start, dash.range.end, grace_days)
    }
    table = []
    for currency in sorted(c for c, (count, _a) in invoices.items() if count):
        count, invoiced = invoices[currency]
        r = noteworthy.get(currency)

        def n(name: str, row: Any = r) -> int:
            return int(getattr(row, name)) if row is not None else 0

        in_grace = _pct(percent(n("recovered_in_grace"), n("failed")))
        table.append(
            [
                currency,
                count,
                n("failed"),
                n("recovered_in_grace"),
                n("recovered_later"),
                in_grace,
                n("refunds"),
                major_decimal(n("refunded")),
                n("disputes"),
                major_decimal(n("disputed")),
                major_decimal(invoiced - n("unpaid")),
            ]
        )
    dash.tables["payments"] = Table(
        "payments",
        [
            _("Currency"),
            _("Invoices"),
            _("Failed at least once"),
            _("Recovered within the grace period"),
            _("Recovered later"),
            _("Recovered within grace (%)"),
            _("Refunds"),
            _("Refunded"),
            _("Disputes"),
            _("Disputed"),
            _("Received"),
        ],
        table,
    )
    dash.charts["payments"] = bar_chart(
        _("Failed payments and their recovery, per currency"),
        [r[0] for r in table],
        [
            (_("Failed"), "bar--cancelled", [r[2] for r in table]),
            (_("Recovered within grace"), "bar--recovered", [r[3] for r in table]),
            (_("Recovered later"), "bar--new", [r[4] for r in table]),
        ],
    )


# -- funnel, notice -------------------------------------------------------------------------


def _funnel(db: Session, dash: Dashboard) -> None:
    rng = dash.range
    counts = {r.kind: int(r.total) for r in queries.counter_totals(db, rng.first, rng.last)}
    by_prompt = {r.prompt: r for r in queries.conversions_by_prompt(db, rng.start, rng.end)}

    def conv(prompt: str | None, name: str) -> int:
        row = by_prompt.get(prompt)
        return int(getattr(row, name)) if row else 0

    all_signups = sum(int(r.signups) for r in by_prompt.values())
    all_firsts = sum(int(r.first_payments) for r in by_prompt.values())
    views = counts.get("view", 0)
    steps = [
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
    rows = []
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
    articles = queries.article_funnel(
        db, rng.first, rng.last, rng.start, rng.end, MIN_VIEWS, TOP_ARTICLES
    )
    dash.tables["articles"] = article_table(articles)
    shown = counts.get("notice_impression", 0)
    dismissed = counts.get("notice_dismiss", 0)
    dash.tables["notice"] = Table(
        "notice",
        [_("Figure"), _("Value")],
        [
            [_("Article views"), views],
            [_("Views with the notice shown (an ad blocker was found)"), shown],
            [_("Share of views with an ad blocker (%)"), _pct(percent(shown, views))],
            [_("Notices dismissed"), dismissed],
            [_("Share of shown notices dismissed (%)"), _pct(percent(dismissed, shown))],
            [_("Notice's “Become a Patron” clicked"), counts.get("notice_click", 0)],
            [_("Sign-ups that followed the notice"), conv("notice", "signups")],
            [_("First payments that followed the notice"), conv("notice", "first_payments")],
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


# -- voting, corrections --------------------------------------------------------------------


def _voting(db: Session, dash: Dashboard) -> None:
    rounds = queries.rounds_in_range(db, dash.range.start, dash.range.end, ROUNDS)
    ends: dict[str, MonthEnd] = dash.headline["month_ends"]
    deltas: Sequence[Any] | None = None
    rows = []
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
                _pct(percent(int(r.voters), eligible)),
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


def _corrections(db: Session, dash: Dashboard) -> None:
    rng = dash.range
    rows = queries.corrections_by_article(db, rng.start, rng.end, TOP_ARTICLES)
    dash.tables["corrections"] = corrections_table(rows)
    found = queries.corrections_totals(db, rng.start, rng.end)
    totals = {r.status: int(r.suggestions) for r in found}
    dash.headline["corrections"] = totals


# -- the whole dashboard, and the full tables for CSV -----------------------------------------


def dashboard(
    db: Session,
    rng: ReportRange,
    rates: Rates,
    now: datetime,
    grace_days: int,
    currencies: Sequence[str],
) -> Dashboard:
    """Every figure of /staff/reports for the range."""
    dash = Dashboard(rng, rates, now, {})
    _revenue(db, dash, grace_days, list(currencies))
    _today(db, dash, grace_days)
    _payments(db, dash, grace_days)
    _funnel(db, dash)
    _voting(db, dash)
    _corrections(db, dash)
    return dash


def full_table(
    db: Session,
    name: str,
    rng: ReportRange,
    rates: Rates,
    now: datetime,
    grace_days: int,
    currencies: Sequence[str],
) -> Table:
    """One table for download: as on the page, but every article rather than the top ones."""
    if name == "articles":
        rows = queries.article_funnel(db, rng.first, rng.last, rng.start, rng.end)
        return article_table(rows)
    if name == "corrections":
        return corrections_table(queries.corrections_by_article(db, rng.start, rng.end))
    return dashboard(db, rng, rates, now, grace_days, currencies).tables[name]
