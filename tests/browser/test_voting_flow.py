"""In Chromium: a patron backs three topics, is refused a fourth, withdraws one and backs
another; staff close the round, choose a topic, link its article and mark it covered; the
voter's email arrives. Screenshots of each page, and no serious accessibility violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.models import OutboundEmail
from tests.browser.conftest import AXE_JS, watch
from tests.factories import PASSWORD, make_article, make_patron, make_round, make_staff

TOPICS = ("River pollution", "School shelters", "The last ferry", "Village libraries")


def shot(page: Any, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"voting-{name}.png"), full_page=True)


def sign_in(page: Any, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def topic(page: Any, title: str) -> Any:
    return page.locator("li.topic").filter(has=page.get_by_role("heading", name=title))


def set_status(page: Any, topic_id: int, status: str) -> None:
    row = page.locator(f"#topic-{topic_id}")
    row.get_by_label("New status").select_option(status)
    row.get_by_role("button", name="Change").click()


def assert_clean(page: Any) -> None:
    from tests.browser.test_article_page import describe, serious_violations

    violations = serious_violations(page)
    assert not violations, describe(violations)
    assert page.console_errors == [], page.console_errors


def test_back_withdraw_close_cover_and_the_voter_is_told(
    new_context: Any, axe_source: str, app: Flask, db: Session, screenshots: Path
) -> None:
    found = make_round(db, title="Autumn: what should we cover?", topics=TOPICS,
                       introduction="Four stories our readers asked about.")  # fmt: skip
    patron, staff = make_patron(db), make_staff(db)
    article = make_article(db, title="The ferry that kept a village alive")

    context = new_context()
    context.add_init_script(path=str(AXE_JS))
    page = watch(context.new_page())
    sign_in(page, patron.email)
    page.goto("/topics")
    expect(page.get_by_text("do not buy coverage")).to_be_visible()
    expect(page.get_by_text("You have 3 of 3 votes left in this round.")).to_be_visible()
    shot(page, screenshots, "1-topics")
    assert_clean(page)
    for title in TOPICS[:3]:
        topic(page, title).get_by_role("button", name="Back this topic").click()
        expect(page.get_by_text("You back this topic.")).to_be_visible()
    expect(page.get_by_text("You have 0 of 3 votes left in this round.")).to_be_visible()
    shot(page, screenshots, "2-three-backed")

    topic(page, TOPICS[3]).get_by_role("button", name="Back this topic").click()
    expect(page.get_by_text("You have used all 3 of your votes in this round.")).to_be_visible()
    shot(page, screenshots, "3-fourth-refused")
    page.console_errors.clear()  # the 409 page itself is the expected answer

    page.goto("/topics")
    topic(page, TOPICS[0]).get_by_role("button", name="Withdraw my vote").click()
    expect(page.get_by_text("Your vote is withdrawn.")).to_be_visible()
    topic(page, TOPICS[3]).get_by_role("button", name="Back this topic").click()
    expect(page.get_by_text("You back this topic.")).to_be_visible()
    expect(topic(page, TOPICS[3]).get_by_text("You back this")).to_be_visible()
    expect(topic(page, TOPICS[0]).get_by_role("button", name="Back this topic")).to_be_visible()
    shot(page, screenshots, "4-withdrawn-and-backed")
    assert_clean(page)
    page.get_by_role("textbox", name="Topic").fill("Night buses to the outer villages")
    page.get_by_role("button", name="Send the proposal").click()
    expect(page.get_by_text("waiting for the newsroom")).to_be_visible()

    desk_context = new_context()
    desk_context.add_init_script(path=str(AXE_JS))
    desk = watch(desk_context.new_page())
    sign_in(desk, staff.email)
    desk.goto("/staff/voting/proposals")
    expect(desk.get_by_text("Night buses to the outer villages")).to_be_visible()
    shot(desk, screenshots, "5a-staff-proposals")
    assert_clean(desk)
    desk.get_by_role("button", name="Approve").click()
    expect(desk.get_by_text("is in the round.")).to_be_visible()
    desk.goto("/staff/voting")
    desk.get_by_role("link", name=found.title).click()
    expect(desk.get_by_text("1 of 1 active patrons voted (100%)")).to_be_visible()
    shot(desk, screenshots, "5-staff-round-open")
    assert_clean(desk)
    desk.get_by_role("button", name="Close the round now").click()
    expect(desk.get_by_text("The round is closed; its results are frozen.")).to_be_visible()

    set_status(desk, found.topics[3].id, "chosen")
    expect(desk.get_by_text("The topic's status is changed.")).to_be_visible()
    row = desk.locator(f"#topic-{found.topics[3].id}")
    row.get_by_label("Article address or slug").fill(f"/articles/{article.slug}")
    row.get_by_role("button", name="Link the article").click()
    expect(desk.get_by_text("The article is linked.")).to_be_visible()
    set_status(desk, found.topics[3].id, "covered")
    expect(desk.get_by_text("1 voter is told by email.")).to_be_visible()
    shot(desk, screenshots, "6-staff-covered")
    assert desk.console_errors == []

    db.rollback()
    mail = db.scalars(select(OutboundEmail).where(OutboundEmail.kind == "topic_covered")).one()
    assert (mail.to_address, mail.status) == (patron.email, "sent")
    outbox = Path(app.config["SETTINGS"].instance_path) / "outbox"
    delivered = [p.read_text() for p in outbox.glob("*.eml")]
    assert any(patron.email in text and article.slug in text for text in delivered)

    page.goto(f"/articles/{article.slug}")
    expect(page.get_by_text("Patrons chose this story in the round")).to_be_visible()
    page.get_by_text("Patrons chose this story").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "voting-7a-article-chosen.png"))
    page.get_by_role("link", name=found.title).click()
    expect(page.get_by_role("heading", name=found.title)).to_be_visible()
    expect(page.get_by_text("These results are final.")).to_be_visible()
    shot(page, screenshots, "7-round-results")
    assert_clean(page)
    page.goto("/topics/rounds")
    expect(page.get_by_role("link", name=article.title)).to_be_visible()
    shot(page, screenshots, "8-past-rounds")
    assert_clean(page)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_topics_page_reads_well_for_readers_on_a_phone(
    new_context: Any, axe_source: str, db: Session, screenshots: Path, scheme: str
) -> None:
    make_round(db, topics=TOPICS, live_counts=True)
    context = new_context(color_scheme=scheme, viewport={"width": 390, "height": 844})
    context.add_init_script(path=str(AXE_JS))
    page = watch(context.new_page())
    page.goto("/topics")
    invite = page.locator(".voting-invite").get_by_role("link", name="Become a patron")
    expect(invite).to_have_attribute("href", "/support")
    shot(page, screenshots, f"9-reader-phone-{scheme}")
    assert_clean(page)
