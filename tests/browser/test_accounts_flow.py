"""A reader signs up, confirms the address from the mail, signs in, changes the password,
signs out and signs in with the new one, in Chromium, with a screenshot of each page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.models import OutboundEmail

EMAIL = "olena.reader@example.org"
FIRST_PASSWORD = "first long passphrase"
NEW_PASSWORD = "second long passphrase"


def confirmation_path(db: Session) -> str:
    db.rollback()
    message = db.scalars(
        select(OutboundEmail).where(
            OutboundEmail.to_address == EMAIL, OutboundEmail.kind == "verify_email"
        )
    ).one()
    match = re.search(r"http://patrons\.test(/verify\?token=[\w.\-]+)", message.text_body)
    assert match, message.text_body
    return match.group(1)


def sign_in(page: Any, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_up_confirm_sign_in_change_password_sign_out(
    page: Any, db: Session, screenshots: Path
) -> None:
    def shot(name: str) -> None:
        page.screenshot(path=str(screenshots / f"accounts-{name}.png"), full_page=True)

    page.goto("/signup")
    shot("1-signup")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(FIRST_PASSWORD)
    page.get_by_label("Name (optional)").fill("Olena")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    shot("2-check-email")

    page.goto(confirmation_path(db))
    expect(page.get_by_role("heading", name="Confirm your email address")).to_be_visible()
    shot("3-confirm")
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_text("your email address is confirmed")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, FIRST_PASSWORD)
    page.goto("/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.get_by_text("confirmed", exact=True)).to_be_visible()
    shot("4-account")

    page.get_by_label("Current password").fill(FIRST_PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password is changed")).to_be_visible()
    shot("5-password-changed")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    sign_in(page, FIRST_PASSWORD)
    expect(page.get_by_text("That email and password do not match an account.")).to_be_visible()
    shot("6-old-password-refused")
    sign_in(page, NEW_PASSWORD)
    page.goto("/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    shot("7-signed-in-again")


def test_sign_in_with_an_emailed_link(
    page: Any, new_context: Any, db: Session, screenshots: Path
) -> None:
    """Ask for a link, find it in the mail, see it refused in another browser, sign in."""
    from tests.factories import make_user

    def shot(name: str) -> None:
        page.screenshot(path=str(screenshots / f"sign-in-link-{name}.png"), full_page=True)

    make_user(db, email=EMAIL)
    page.goto("/login/link")
    shot("1-ask")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    shot("2-sent")
    db.rollback()
    message = db.scalars(
        select(OutboundEmail).where(
            OutboundEmail.to_address == EMAIL, OutboundEmail.kind == "sign_in_link"
        )
    ).one()
    match = re.search(r"http://patrons\.test(/login/link/open\?token=[\w\-]+)", message.text_body)
    assert match, message.text_body

    elsewhere = new_context().new_page()
    elsewhere.goto(match.group(1))
    expect(elsewhere.get_by_text("Open the link in the same browser")).to_be_visible()

    page.goto(match.group(1))
    expect(page.get_by_text(EMAIL)).to_be_visible()
    shot("3-open")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.goto("/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    shot("4-signed-in")
    page.goto(match.group(1))  # the link works once
    expect(page.get_by_text("already been used")).to_be_visible()
