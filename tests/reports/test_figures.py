"""Every dashboard figure against tests/reports/scenario.py, worked out by hand (the
arithmetic is in the comments). Runs on SQLite, and on PostgreSQL with TEST_DATABASE_URL."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from patrons.reports import rates, service
from patrons.reports.dates import ReportRange
from tests.reports import scenario

CURRENCIES = ("EUR", "USD", "GBP", "UAH")


@pytest.fixture
def dash(app: Flask, db: Session) -> service.Dashboard:
    scenario.build(db)
    with app.app_context():
        return service.dashboard(
            db, ReportRange(scenario.FIRST, scenario.LAST), rates.load(db, "EUR"),
            scenario.NOW, scenario.GRACE_DAYS, CURRENCIES,
        )  # fmt: skip


def rows(dash: service.Dashboard, name: str) -> list[list[Any]]:
    return dash.tables[name].rows


def test_mrr_month_by_month(dash: service.Dashboard) -> None:
    # Spans counted (a past_due span lasts at most 7 days):
    #   A EUR 5 01-10..02-10, past_due 02-10..02-17, active 02-20..03-20, EUR 10 from 03-20
    #   B USD 10 01-20.., past_due 02-20..02-23 (recovered), active from 02-23
    #   C GBP 3 02-05..03-05, past_due 03-05..03-12     D EUR 3 02-15..04-02
    #   E EUR 25 2025-12-01..04-01, past_due 04-01..04-08
    # Jan end: A 5 + E 25 = EUR 30; B USD 10           → 30 + 10 × 0.90 = 39.00 EUR
    # Feb end: A 5 + D 3 + E 25 = EUR 33; USD 10; GBP 3 → 33 + 9 + 3 × 1.20 = 45.60
    # Mar end: A 10 + D 3 + E 25 = EUR 38; USD 10       → 38 + 9 = 47.00 (C ended 03-12)
    # Apr (now, 04-15): today's active patrons (entitlement.py): A 10 only: B's latest
    #   payment (03-20) was refunded in full          → 10.00 (D 04-02, E 04-08)
    # columns: month, EUR (converted), then USD, GBP, UAH not converted
    assert rows(dash, "mrr") == [
        ["2026-01", "39.00", "10.00", "0.00", "0.00"],
        ["2026-02", "45.60", "10.00", "3.00", "0.00"],
        ["2026-03", "47.00", "10.00", "0.00", "0.00"],
        ["2026-04", "10.00", "0.00", "0.00", "0.00"],
    ]


def test_patrons_new_cancelled_recovered_churn(dash: service.Dashboard) -> None:
    # patrons at month end: Dec E = 1; Jan A B E = 3; Feb A B C D E = 5; Mar A B D E = 4;
    #   Apr (now) A = 1 (today's active patrons: B's latest payment was refunded)
    # new (first invoice paid): Jan A, B = 2; Feb C, D = 2
    # cancelled (counted → ended): Mar C (past_due → canceled) = 1; Apr D = 1
    #   (E is past due beyond grace: no longer counted, but not cancelled yet)
    # recovered (past_due → active): Feb A (after grace) and B (within) = 2
    # churn: Jan 0/1 = 0.0; Feb 0/3 = 0.0; Mar 1/5 = 20.0; Apr 1/4 = 25.0 (%)
    assert rows(dash, "patrons") == [
        ["2026-01", 3, 2, 0, 0, "0.0"],
        ["2026-02", 5, 2, 0, 2, "0.0"],
        ["2026-03", 4, 0, 1, 0, "20.0"],
        ["2026-04", 1, 0, 1, 0, "25.0"],
    ]
    # the range: (0 + 0 + 1 + 1) / (1 + 3 + 5 + 4) = 2 / 13 = 15.38 %
    assert dash.headline["churn"] == 15.4


def test_today_average_distribution_lifetime_value(dash: service.Dashboard) -> None:
    # today by the entitlement rule: A (active, EUR 10); B is active at Stripe but its
    # latest payment (03-20) was refunded in full; E past due since 04-01 + 7 days = 04-08
    # < now; C, D ended. MRR 10.00 EUR; 1 patron; average 1000 = 10.00 EUR
    assert dash.headline["patrons"] == 1
    assert dash.headline["mrr"] == 1000
    assert dash.headline["average"] == 1000
    assert rows(dash, "now") == [
        ["EUR", 1, "10.00", "10.00"],
        ["All, in EUR", 1, "10.00", "10.00"],
    ]
    assert rows(dash, "distribution") == [["EUR", "10.00", 1]]
    # lifetime value: average ÷ churn = 1000 × 13 / 2 = 6500 = 65.00 EUR
    assert dash.headline["lifetime_value"] == 6500
    assert dash.missing_rates == set()


def test_payment_health(dash: service.Dashboard) -> None:
    # invoices dated 01-01..04-15:
    # EUR: A 01-10, 02-10 (failed, paid 02-20: 10 days, after grace), 03-10, 04-10 (EUR 10);
    #      D 02-15, 03-15 (disputed, EUR 3: open, so still in revenue); E 01-01, 02-01,
    #      03-01, 04-01 (failed, unpaid) = 10 invoices, 2 failed, 0 within grace, 1 later
    #      (0.0 %), 1 open dispute; gross 5 + 5 + 5 + 10 + 3 + 3 + 25 × 3 = 106.00 = net
    # GBP: C 02-05, 03-05 (failed, unpaid) = 2 invoices, 1 failed, gross = net 3.00
    # USD: B 01-20, 02-20 (failed, paid 02-23: within grace), 03-20 (refunded in full,
    #      10.00) = 3 invoices, 1 failed, 1 within grace (100.0 %), gross 30.00, net 20.00
    # columns: currency, invoices, failed, in grace, later, in grace %, partly refunded,
    #   refunded in full, refunded, disputes open, won, lost, lost to disputes, gross, net
    assert rows(dash, "payments") == [
        ["EUR", 10, 2, 0, 1, "0.0", 0, 0, "0.00", 1, 0, 0, "0.00", "106.00", "106.00"],
        ["GBP", 2, 1, 0, 0, "0.0", 0, 0, "0.00", 0, 0, 0, "0.00", "3.00", "3.00"],
        ["USD", 3, 1, 1, 0, "100.0", 0, 1, "10.00", 0, 0, 0, "0.00", "30.00", "20.00"],
    ]
    # in EUR: 106 + 3 × 1.20 + 20 × 0.90 = 127.60 net; gross 106 + 3.60 + 27 = 136.60
    assert (dash.headline["revenue"], dash.headline["revenue_gross"]) == (12760, 13660)


def test_funnel_and_attribution(dash: service.Dashboard) -> None:
    # counters 01-01..04-15 (X's 12-31 row left out): views 1000 + 400 = 1400; banner shown
    # 800 + 300 = 1100, clicked 20 + 4 = 24; notice shown 200 + 100 = 300, clicked 5 + 10 = 15
    # sign-ups in range: A, B, C, D, F, G = 6 (E joined in 2025); banner A, F; notice B
    # first payments in range: A, B, C, D = 4 (E's was in 2025); banner A; notice B
    assert rows(dash, "funnel") == [
        ["Article views", "", "", 1400],
        ["Prompt shown", 1100, 300, 1400],
        ["Prompt clicked", 24, 15, 39],
        ["Sign-ups", 2, 1, 6],
        ["First payments", 1, 1, 4],
    ]
    # per article: Y 1 first payment / 400 views = 2.50 per 1,000; X 1 / 1000 = 1.00
    # (X: sign-ups A and F; its banner clicks 20, notice clicks 5)
    assert rows(dash, "articles") == [
        ["Library generator", 400, 4, 10, 1, 1, "2.50"],
        ["Ferry timetable", 1000, 20, 5, 2, 1, "1.00"],
    ]


def test_ad_blocker_notice(dash: service.Dashboard) -> None:
    # shown 300 of 1400 views = 21.43 %; dismissed 50 + 30 = 80 of 300 shown = 26.67 %
    assert rows(dash, "notice") == [
        ["Article views", 1400],
        ["Views with the notice shown (an ad blocker was found)", 300],
        ["Share of views with an ad blocker (%)", "21.4"],
        ["Notices dismissed", 80],
        ["Share of shown notices dismissed (%)", "26.7"],
        ["Notice's “Become a Patron” clicked", 15],
        ["Sign-ups that followed the notice", 1],
        ["First payments that followed the notice", 1],
    ]


def test_voting_turnout_and_results(dash: service.Dashboard) -> None:
    # voters ÷ today's active patrons (A only), for open and closed rounds alike; the
    # scenario's votes predate payment_id (NULL), so they count
    # spring (open, closes 04-30): A voted; 1 of 1 = 100.0 %
    # winter (closed 02-28): A and B voted (3 votes); 2 of 1 = 200.0 % (B has left since)
    assert rows(dash, "voting") == [
        ["Spring round", "2026-04-10", "2026-04-30", 1, 1, "100.0", 1],
        ["Winter round", "2026-02-01", "2026-02-28", 2, 1, "200.0", 3],
    ]
    # spring: live count; winter: frozen counts (rounds newest first, topics by votes)
    assert rows(dash, "results") == [
        ["Spring round", "River ferry", "in_round", 1],
        ["Winter round", "Bus routes", "chosen", 2],
        ["Winter round", "Old wells", "in_round", 1],
    ]


def test_corrections(dash: service.Dashboard) -> None:
    # in range: X open 2 (01-15, 02-01; the 2025 one left out), resolved 1; general form
    # open 1; Y declined 1. Totals: open 3, resolved 1, declined 1
    assert rows(dash, "corrections") == [
        ["Ferry timetable", 2, 1, 0],
        ["(general corrections form)", 1, 0, 0],
        ["Library generator", 0, 0, 1],
    ]
    assert dash.headline["corrections"] == {"open": 3, "resolved": 1, "declined": 1}
