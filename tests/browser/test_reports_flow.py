"""In Chromium: staff open the reports dashboard on the demo data, narrow the date range and
download a table as CSV. Screenshots of each step, no serious accessibility violation, no
console error (the charts are SVG drawn on the server: nothing for the CSP to refuse)."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from patrons import demo
from patrons.core import clock
from tests.browser.conftest import AXE_JS, watch


def shot(page: Any, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"reports-{name}.png"), full_page=True)


def test_dashboard_range_and_csv(
    new_context: Any, axe_source: str, app: Flask, db: Session, screenshots: Path
) -> None:
    demo.seed(db)
    db.commit()
    context = new_context(accept_downloads=True)
    context.add_init_script(path=str(AXE_JS))
    page = watch(context.new_page())
    page.goto("/login")
    page.get_by_label("Email").fill(demo.DEMO_STAFF_EMAIL)
    page.get_by_label("Password").fill(demo.DEMO_STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.goto("/staff/")
    page.get_by_role("navigation", name="Staff").get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()
    expect(page.locator("#figure-patrons")).not_to_have_text("0")
    expect(page.locator("svg.chart__svg rect.chart__bar").first).to_be_attached()
    mrr_rows = page.locator("#table-mrr tbody tr")
    expect(mrr_rows).to_have_count(12)
    shot(page, screenshots, "1-dashboard")
    for section in ("now", "months", "payments", "funnel"):  # readable pieces of a long page
        heading = page.locator(f"#{section}-heading").locator("xpath=..")
        heading.screenshot(path=str(screenshots / f"reports-1-{section}.png"))
    from tests.browser.test_article_page import describe, serious_violations

    violations = serious_violations(page)
    assert not violations, describe(violations)

    today = clock.now().date()
    # the first day of the month two months back: three months on the page, whatever the
    # day (70 days back spanned four months from 6 December on)
    back = today.year * 12 + today.month - 1 - 2
    first = date(back // 12, back % 12 + 1, 1)
    page.get_by_label("From", exact=True).fill(first.isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(f"/staff/reports?from={first.isoformat()}&to={today.isoformat()}")
    expect(mrr_rows).to_have_count(3)
    expect(page.get_by_label("From", exact=True)).to_have_value(first.isoformat())
    shot(page, screenshots, "2-three-months")

    with page.expect_download() as info:
        page.locator("#table-patrons").get_by_role("link", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == f"patrons-{first.isoformat()}-{today.isoformat()}.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows[0][:2] == ["Month", "Active patrons at month end"]
    page_months = [m.strip() for m in page.locator("#table-patrons tbody th").all_inner_texts()]
    assert [r[0] for r in rows[1:]] == page_months
    page_patrons = page.locator("#table-patrons tbody tr td:nth-child(2)").all_inner_texts()
    assert [r[1] for r in rows[1:]] == [p.strip() for p in page_patrons]
    assert page.console_errors == [], page.console_errors

    page.get_by_role("link", name="Set exchange rates").click()
    expect(page.get_by_label("1 USD in the reporting currency")).to_have_value("0.92")
    shot(page, screenshots, "3-rates")
    violations = serious_violations(page)
    assert not violations, describe(violations)

    page.goto("/staff/members?q=patron1%40demo")
    page.get_by_role("link", name="patron1@demo.example.org").click()
    expect(page.get_by_role("heading", name="Demo patron 1", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Payments")).to_be_visible()
    shot(page, screenshots, "4-member")
    violations = serious_violations(page)
    assert not violations, describe(violations)
    assert page.console_errors == [], page.console_errors
