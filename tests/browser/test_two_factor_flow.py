"""Two-factor in Chromium: a staff member enrols from the QR page (the test computes the code
from the key shown as text), signs in with a code, and after 15 minutes is asked again
before a CSV export and before a Stripe retry (the form sent again after the code).
Screenshots of the enrolment page and the account's security section at 1280 and 360 px."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import StripeEvent
from tests.browser.conftest import AXE_JS, watch
from tests.browser.test_article_page import assert_no_page_errors, describe, serious_violations
from tests.factories import PASSWORD, make_staff

WIDTHS = (1280, 360)


def sign_in(page: Any, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def next_code(secret: str) -> str:
    """The next step's code: accepted now (one step of drift) and later than any code
    already used, whichever side of a step boundary the server reads its clock."""
    return pyotp.TOTP(secret).at(clock.now().timestamp() + 30)


def test_staff_enrol_from_the_qr_page_and_sign_in_with_a_code(
    new_context: Any, db: Session, screenshots: Path, axe_source: str
) -> None:
    staff = make_staff(db)
    context = new_context()
    context.add_init_script(path=str(AXE_JS))
    page = watch(context.new_page())
    sign_in(page, staff.email)
    page.goto("/account")
    page.get_by_role("link", name="Set up two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None and box["width"] >= 150 and box["width"] == box["height"]
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(screenshots / f"two-factor-setup-{width}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not overflow, f"the enrolment page scrolls sideways at {width} px"
    page.set_viewport_size({"width": 1280, "height": 900})
    violations = serious_violations(page)
    assert violations == [], describe(violations)
    assert_no_page_errors(page)  # the inline SVG is allowed by the CSP; nothing else loaded

    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    page.get_by_label("The six-digit code your app shows").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.get_by_role("list", name="Recovery codes").locator("code").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name="I have saved them: continue").click()

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, staff.email)
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    page.get_by_label("Code").fill(next_code(secret))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.goto("/account")
    expect(page.get_by_text("Signed in with your password").first).to_be_visible()
    expect(page.get_by_text("Two-factor sign-in turned on")).to_be_visible()
    violations = serious_violations(page)
    assert violations == [], describe(violations)
    assert_no_page_errors(page)
    both = page.locator("#security, section[aria-labelledby=activity-heading]")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        top, bottom = both.first.bounding_box(), both.last.bounding_box()
        assert top is not None and bottom is not None
        scrolled = page.evaluate("window.scrollY")  # boxes are in the viewport; clips in the page
        clip = {"x": 0, "y": top["y"] + scrolled, "width": width,
                "height": bottom["y"] + bottom["height"] - top["y"]}  # fmt: skip
        shot = screenshots / f"two-factor-account-{width}.png"
        page.screenshot(path=str(shot), clip=clip, full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not overflow, f"the account page scrolls sideways at {width} px"


def test_staff_are_asked_again_before_an_export_and_a_stripe_retry(
    new_context: Any, db: Session, screenshots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = make_staff(db)
    secret = pyotp.random_base32()
    staff.totp_secret, staff.two_factor_enabled_at = secret, clock.now()
    db.add(StripeEvent(id="evt_browser", type="invoice.paid", received_at=clock.now(),
                       object_id="in_b", state="failed", attempts=12, last_error="x"))  # fmt: skip
    db.commit()
    context = new_context(accept_downloads=True)
    page = context.new_page()
    sign_in(page, staff.email)
    page.get_by_label("Code").fill(next_code(secret))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    later = datetime.now(UTC) + timedelta(minutes=16)  # the server's clock too (one process)
    started = time.monotonic()
    monkeypatch.setattr(clock, "now", lambda: later + timedelta(seconds=time.monotonic() - started))
    page.goto("/staff/reports")
    page.locator("a.report-csv").first.click()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    page.screenshot(path=str(screenshots / "two-factor-reauth.png"), full_page=True)
    page.get_by_label("Code").fill(next_code(secret))
    with page.expect_download() as info:
        page.get_by_role("button", name="Confirm").click()
    assert info.value.suggested_filename.endswith(".csv")

    later += timedelta(minutes=16)
    page.goto("/staff/stripe-events")
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    page.get_by_label("Code").fill(next_code(secret))
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("Event evt_browser is queued to be applied again.")).to_be_visible()
    page.goto("/staff/audit")
    expect(page.get_by_role("cell", name="Retried a Stripe event")).to_be_visible()
    expect(page.get_by_role("cell", name="Downloaded a report table (CSV)")).to_be_visible()
