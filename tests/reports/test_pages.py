"""The report pages through HTTP as staff: the date range and its errors, the CSV downloads
cell by cell (formulas neutralised), the exchange-rate form, a member's history, and who
may see them."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import DailyCount, ExchangeRate, OutboundEmail, ReportDay, Round, User
from patrons.reports import rates, rollup, service
from patrons.reports.dates import ReportRange
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_article, make_patron, make_staff
from tests.reports import scenario

RANGE = "from=2026-01-01&to=2026-04-15"
ROUTES = ("/staff/reports", "/staff/reports/rates", "/staff/reports/mrr.csv")


@pytest.fixture
def staff(app: Flask, db: Session, client: FlaskClient, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(clock, "now", lambda: scenario.NOW)
    make_staff(db)
    login(client, "editor@example.org", PASSWORD)
    return client


def read_csv(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "“From” must be a date written like 2026-01-31."),
        ("to=yesterday", "“To” must be a date written like 2026-01-31."),
        ("from=2026-1-1", "“From” must be a date written like 2026-01-31."),
        ("from=2026-04-02&to=2026-04-01", "The range must start on or before the day it ends."),
        ("from=1999-12-31", "Choose days between 2000-01-01 and a year from now."),
        ("from=2000-01-01&to=2026-04-15", "Choose a range of ten years or less."),
    ],
)
def test_a_bad_range_is_a_400_with_a_message(staff: FlaskClient, query: str, message: str) -> None:
    for path in ("/staff/reports", "/staff/reports/patrons.csv"):
        response = staff.get(f"{path}?{query}")
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)


def test_the_dashboard_shows_the_figures_and_their_definitions(
    staff: FlaskClient, db: Session
) -> None:
    scenario.build(db)
    html = staff.get(f"/staff/reports?{RANGE}").get_data(as_text=True)
    assert '<dd id="figure-mrr">€10</dd>' in html
    assert '<dd id="figure-patrons">1</dd>' in html
    assert '<dd id="figure-ltv">€65</dd>' in html
    assert '<dd id="figure-revenue">€127.60</dd>' in html
    assert '<dd id="figure-revenue-gross">€136.60</dd>' in html
    assert "1 GBP = 1.2 EUR; 1 USD = 0.9 EUR" in html
    definitions = ("Monthly recurring revenue (MRR)", "Churn rate", "Lifetime value",
                   "Recovered within the grace period", "is attributed to an article")  # fmt: skip
    for definition in definitions:
        assert definition in html
    assert html.count("Download CSV") == 11
    assert 'value="2026-01-01"' in html and 'value="2026-04-15"' in html


def test_the_pages_write_nothing_and_show_the_same_figures_with_the_rollup(
    staff: FlaskClient, db: Session
) -> None:
    def page() -> str:  # the sign-out form's CSRF token is signed with the time: left out
        html = staff.get(f"/staff/reports?{RANGE}").get_data(as_text=True)
        return re.sub(r'name="csrf_token" value="[^"]*"', "", html)

    scenario.build(db)
    before = page()
    table = read_csv(staff.get(f"/staff/reports/patrons.csv?{RANGE}"))
    db.expire_all()
    assert db.scalars(select(ReportDay)).all() == []  # a GET commits nothing (rollup.py)
    rollup.update(db, scenario.NOW, scenario.GRACE_DAYS)  # what `flask update-reports` does
    db.commit()
    assert db.scalars(select(ReportDay)).all()
    assert page() == before
    assert read_csv(staff.get(f"/staff/reports/patrons.csv?{RANGE}")) == table


def test_the_default_range_is_the_last_twelve_months(staff: FlaskClient) -> None:
    html = staff.get("/staff/reports").get_data(as_text=True)
    assert 'value="2025-05-01"' in html and 'value="2026-04-15"' in html


def test_csv_patrons_cell_by_cell(staff: FlaskClient, db: Session) -> None:
    scenario.build(db)
    response = staff.get(f"/staff/reports/patrons.csv?{RANGE}")
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="patrons-2026-01-01-2026-04-15.csv"'
    )
    # the hand-worked figures of test_figures.py, as text
    assert read_csv(response) == [
        ["Month", "Active patrons at month end", "New", "Cancelled", "Recovered",
         "Churn rate (%)"],
        ["2026-01", "3", "2", "0", "0", "0.0"],
        ["2026-02", "5", "2", "0", "2", "0.0"],
        ["2026-03", "4", "0", "1", "0", "20.0"],
        ["2026-04", "1", "0", "1", "0", "25.0"],
    ]  # fmt: skip


def test_csv_payments_and_mrr_cell_by_cell(staff: FlaskClient, db: Session) -> None:
    scenario.build(db)
    assert read_csv(staff.get(f"/staff/reports/mrr.csv?{RANGE}")) == [
        ["Month", "MRR in EUR", "MRR in USD (not converted)", "MRR in GBP (not converted)",
         "MRR in UAH (not converted)"],
        ["2026-01", "39.00", "10.00", "0.00", "0.00"],
        ["2026-02", "45.60", "10.00", "3.00", "0.00"],
        ["2026-03", "47.00", "10.00", "0.00", "0.00"],
        ["2026-04", "10.00", "0.00", "0.00", "0.00"],
    ]  # fmt: skip
    rows = read_csv(staff.get(f"/staff/reports/payments.csv?{RANGE}"))
    assert rows[0][-2:] == ["Received (gross)", "Revenue (net)"]
    assert rows[1:] == [
        ["EUR", "10", "2", "0", "1", "0.0", "0", "0", "0.00", "1", "0", "0", "0.00", "106.00",
         "106.00"],
        ["GBP", "2", "1", "0", "0", "0.0", "0", "0", "0.00", "0", "0", "0", "0.00", "3.00", "3.00"],
        ["USD", "3", "1", "1", "0", "100.0", "0", "1", "10.00", "0", "0", "0", "0.00", "30.00",
         "20.00"],
    ]  # fmt: skip


def test_csv_articles_lists_every_article_with_formulas_neutralised(
    staff: FlaskClient, db: Session
) -> None:
    titles = ['=HYPERLINK("http://evil.test","x")', "+1+2", "-3", "@SUM(A1)", "Plain"]
    for number, title in enumerate(titles, start=1):
        article = make_article(db, title=title)
        # fewer views than the page's ranking needs: the CSV still lists them all
        db.add(DailyCount(article_id=article.id, day=scenario.FIRST, kind="view", count=number))
    db.commit()
    rows = read_csv(staff.get(f"/staff/reports/articles.csv?{RANGE}"))
    assert rows[0][0] == "Article"
    assert sorted(r[0] for r in rows[1:]) == sorted(
        ['\'=HYPERLINK("http://evil.test","x")', "'+1+2", "'-3", "'@SUM(A1)", "Plain"]
    )
    assert {r[0]: r[1] for r in rows[1:]}["'-3"] == "3"  # views stay numbers


def test_csv_neutralises_tab_and_carriage_return_too(staff: FlaskClient, db: Session) -> None:
    for title in ("\tTabbed", "\rReturned"):
        db.add(Round(title=title, opens_at=datetime(2026, 2, 1, tzinfo=UTC),
                     closes_at=datetime(2026, 2, 10, tzinfo=UTC)))  # fmt: skip
    db.commit()
    rows = read_csv(staff.get(f"/staff/reports/voting.csv?{RANGE}"))
    assert sorted(r[0] for r in rows[1:]) == ["'\tTabbed", "'\rReturned"]


def test_an_unknown_table_is_a_404(staff: FlaskClient) -> None:
    assert staff.get("/staff/reports/secrets.csv").status_code == 404


def test_rates_form_saves_and_the_totals_convert(staff: FlaskClient, db: Session) -> None:
    assert staff.get("/staff/reports/rates").status_code == 200
    data = {"reporting_currency": "USD", "rate_EUR": "1.25", "rate_GBP": "1,5", "rate_UAH": "",
            "csrf_token": csrf_token(staff)}  # fmt: skip
    response = staff.post("/staff/reports/rates", data=data)
    assert response.status_code == 303
    db.expire_all()
    saved = {
        r.currency: (r.reporting_currency, r.rate_micros) for r in db.scalars(select(ExchangeRate))
    }
    assert saved == {
        "EUR": ("USD", 1_250_000),
        "GBP": ("USD", 1_500_000),
        "USD": ("USD", 1_000_000),
    }
    make_patron(db)  # EUR 5: 5 × 1.25 = $6.25
    html = staff.get("/staff/reports").get_data(as_text=True)
    assert '<dd id="figure-mrr">$6.25</dd>' in html
    assert (
        "UAH" not in html.split("Left out of converted totals")[-1][:100] or "Left out" not in html
    )


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", "-1", "0", "0.0000001", "1e3",
                                 "10000000", "1.2.3", " ", "٣"])  # fmt: skip
def test_rates_form_refuses_bad_rates(staff: FlaskClient, db: Session, bad: str) -> None:
    data = {"reporting_currency": "EUR", "rate_USD": bad, "csrf_token": csrf_token(staff)}
    response = staff.post("/staff/reports/rates", data=data)
    if bad.strip() == "":
        assert response.status_code == 303  # left empty: that currency is not converted
        return
    assert response.status_code == 400
    assert "Enter a positive number with at most six decimals" in response.get_data(as_text=True)
    db.expire_all()
    assert db.scalars(select(ExchangeRate)).all() == []


def test_rates_form_refuses_an_unknown_currency_and_a_missing_token(
    staff: FlaskClient, db: Session
) -> None:
    data = {"reporting_currency": "XXX", "csrf_token": csrf_token(staff)}
    assert staff.post("/staff/reports/rates", data=data).status_code == 400
    assert staff.post("/staff/reports/rates", data={"reporting_currency": "EUR"}).status_code == 400
    db.expire_all()
    assert db.scalars(select(ExchangeRate)).all() == []


def test_member_detail_shows_pledges_payments_votes_and_emails(
    staff: FlaskClient, db: Session
) -> None:
    world = scenario.build(db)
    member = world.users["B"]
    email = db.get(User, member).email
    db.add(OutboundEmail(to_address=email, subject="Your receipt", text_body="t", html_body="h",
                         kind="pledge_receipt", status="sent", created_at=scenario.at(3, 20),
                         next_attempt_at=scenario.at(3, 20)))  # fmt: skip
    db.commit()
    listing = staff.get("/staff/members").get_data(as_text=True)
    assert f'href="/staff/members/{member}"' in listing
    html = staff.get(f"/staff/members/{member}").get_data(as_text=True)
    assert "$10 a month, active" in html
    assert html.count("past_due") == 2  # active → past_due, past_due → active
    assert "refunded" in html and "failed 1×" in html
    assert "Bus routes" in html and "Old wells" in html and "Winter round" in html
    assert "Your receipt" in html and "pledge_receipt" in html
    assert "the ad-blocker notice" in html and "Library generator" in html


def test_an_unknown_member_is_a_404(staff: FlaskClient) -> None:
    assert staff.get("/staff/members/999999").status_code == 404


@pytest.mark.parametrize("path", [*ROUTES, "/staff/members/1"])
def test_readers_are_refused(app: Flask, db: Session, path: str) -> None:
    make_patron(db, email="patron@example.org")
    anonymous = app.test_client().get(path)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    reader = app.test_client()
    login(reader, "patron@example.org", PASSWORD)
    assert reader.get(path).status_code == 403
    post = reader.post("/staff/reports/rates", data={"csrf_token": csrf_token(reader)})
    assert post.status_code == 403


@pytest.mark.parametrize("table", sorted(service.TABLES))
def test_every_table_downloads_as_its_page_shows_it(
    staff: FlaskClient, db: Session, table: str
) -> None:
    scenario.build(db)
    rows = read_csv(staff.get(f"/staff/reports/{table}.csv?{RANGE}"))
    with staff.application.app_context():
        dash = service.dashboard(db, ReportRange(scenario.FIRST, scenario.LAST),
                                 rates.load(db, "EUR"), scenario.NOW, scenario.GRACE_DAYS,
                                 ("EUR", "USD", "GBP", "UAH"))  # fmt: skip
    shown = dash.tables[table]
    assert rows == [[str(cell) for cell in row] for row in [shown.headers, *shown.rows]]
    assert len(rows) > 1
