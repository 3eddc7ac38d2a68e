"""The article page in Chromium: the support banner, the ad-blocker notice, correction
suggestions (with and without JavaScript), accessibility (axe-core) and screenshots.

Run: .venv/bin/pytest tests/browser -q  (skips without /usr/bin/chromium, unless REQUIRE_BROWSER=1)
Screenshots land in tests/browser/screenshots/ (git-ignored): look at them.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.browser.conftest import AXE_JS
from tests.factories import PASSWORD, make_article, make_staff

try:
    from playwright.sync_api import expect
except ImportError:  # the fixtures skip (or fail under REQUIRE_BROWSER=1) with the reason
    expect = None  # type: ignore[assignment]

BODY = """\
Officials in the regional capital said on Tuesday that the last of three river bridges \
would carry traffic again by May. The repairs cost more than the city had planned, according \
to figures the council published this week. Residents of the left bank, who have crossed by \
ferry for two winters, welcomed the news.

"We have waited long enough," said Gulnara Akhmetova, who runs a bakery near the old \
crossing. "But a date is a date, and we will hold them to it."

## What comes next

The council will vote on the remaining budget next week. Critics say the repairs came too \
late, and that the council has not said who will pay for the overrun. The council says the \
contractor will pay for the overrun, and that the contract allows it.

> The bridges are the city's lifeline, and the city's budget is not a bottomless well.

Engineers will inspect the structures again in the autumn, before the river freezes.
"""

SUMMARY = "The council says the last of three bridges will carry traffic again by May."
TITLE = "Bridges over the river reopen after two years of repairs"


@pytest.fixture
def article(db: Session) -> Any:
    """A realistic article with two related ones (so the side column has something in it)."""
    for n, title in enumerate(
        ("Ferry crossings end as ice comes early", "City budget: where the money goes")
    ):
        make_article(
            db,
            title=title,
            tags=("Regions",),
            days_ago=3 + n,
            body="A related story. It has two sentences.",
        )
    return make_article(
        db,
        title=TITLE,
        body=BODY,
        summary=SUMMARY,
        tags=("Regions", "Infrastructure"),
        author_name="Aigerim Sultanova",
        editor_name="Daniyar Bekov",
    )


# --- helpers -------------------------------------------------------------------------------

# filter lists hide bait elements with a stylesheet the page's CSP cannot refuse; an adopted
# (constructed) stylesheet, added before the page's own scripts run, does the same
HIDE_BAIT = """
(() => {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(".adsbox{display:none!important}");
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
})();
"""


def block_ads(context: Any, *, script: bool = True, bait: bool = True) -> None:
    """Simulate an ad blocker: abort the bait script and/or hide the bait element."""
    if script:
        context.route("**/static/js/ads.js*", lambda route: route.abort())
    if bait:
        context.add_init_script(HIDE_BAIT)


def settle_blocker_check(page: Any) -> None:
    """article.js looks for an ad blocker 300 ms after `load`; give it time to decide."""
    page.wait_for_load_state("load")
    page.wait_for_timeout(900)


def select_text(page: Any, container: str, text: str, occurrence: int = 0) -> None:
    """Select `text` (the n-th occurrence inside one text node of `container`) with a Range."""
    found = page.evaluate(
        """([container, text, occurrence]) => {
          const root = document.querySelector(container);
          const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
          let seen = 0;
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            let at = node.data.indexOf(text);
            while (at >= 0) {
              if (seen++ === occurrence) {
                const range = document.createRange();
                range.setStart(node, at);
                range.setEnd(node, at + text.length);
                const selection = window.getSelection();
                selection.removeAllRanges();
                selection.addRange(range);
                return selection.toString();
              }
              at = node.data.indexOf(text, at + 1);
            }
          }
          return null;
        }""",
        [container, text, occurrence],
    )
    assert found == text, f"{text!r} (occurrence {occurrence}) not found in {container}"


def dismissed_until(page: Any, name: str) -> int:
    value = page.evaluate(f"localStorage.getItem('patrons:dismissed:{name}')")
    return int(value or 0)


def assert_no_page_errors(page: Any) -> None:
    """No uncaught errors, CSP refusals or failed same-site requests on the page."""
    assert page.console_errors == [], page.console_errors
    assert page.bad_responses == [], page.bad_responses


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical (axe was added by an init script)."""
    assert page.evaluate("typeof axe") == "object", "axe-core was not injected"
    results = page.evaluate(
        """async () => await axe.run(document, {
             resultTypes: ["violations"],
             runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                              "wcag22aa", "best-practice"]}
           })"""
    )
    return [v for v in results["violations"] if v["impact"] in ("serious", "critical")]


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"\n[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:8]:
            lines.append(f"    at {', '.join(map(str, node['target']))}")
            lines.append(f"       {node['html'][:160]}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n         ")
            lines.append(f"         {summary}")
    return "\n".join(lines)


# --- (1) the support banner -------------------------------------------------------------------


def test_banner_shows_and_stays_dismissed_after_reload(page: Any, article: Any) -> None:
    page.goto(f"/articles/{article.slug}")
    banner = page.locator("#support-banner")
    expect(banner).to_be_visible()
    expect(banner.get_by_role("heading", level=2)).to_have_text(re.compile("join our community"))
    expect(banner.get_by_role("link", name="Become a Patron!")).to_be_visible()

    before = int(time.time() * 1000)
    banner.get_by_role("button", name="Dismiss the support message").click()
    expect(banner).to_be_hidden()
    # remembered for banner_dismiss_days (7) in this browser only
    until = dismissed_until(page, "banner")
    assert before + 6.9 * 86_400_000 < until < before + 7.1 * 86_400_000

    page.reload()
    expect(page.locator("article h1")).to_have_text(TITLE)
    expect(banner).to_be_hidden()
    assert "banner-dismissed" in page.evaluate("document.documentElement.className")
    assert_no_page_errors(page)


def test_dismissing_the_banner_by_keyboard_keeps_the_focus_in_the_article(
    page: Any, article: Any
) -> None:
    page.goto(f"/articles/{article.slug}")
    close = page.get_by_role("button", name="Dismiss the support message")
    close.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#support-banner")).to_be_hidden()
    # not lost to <body>: the next part of the article has it, and Tab carries on from there
    assert page.evaluate("document.activeElement.className") == "article__tools"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "canonical-link"


def test_a_new_browser_sees_the_banner_again(page: Any, new_context: Any, article: Any) -> None:
    page.goto(f"/articles/{article.slug}")
    page.get_by_role("button", name="Dismiss the support message").click()
    other = new_context().new_page()
    other.goto(f"/articles/{article.slug}")
    expect(other.locator("#support-banner")).to_be_visible()


# --- (2) the ad-blocker notice ----------------------------------------------------------------


def test_notice_stays_hidden_without_an_ad_blocker(page: Any, article: Any) -> None:
    page.goto(f"/articles/{article.slug}")
    settle_blocker_check(page)
    assert page.evaluate("window.__patronsAdsAllowed") is True
    expect(page.locator("#adblock-notice")).to_be_hidden()
    assert_no_page_errors(page)


@pytest.mark.parametrize(
    ("script", "bait"),
    [(True, True), (True, False), (False, True)],
    ids=["script-blocked-and-bait-hidden", "script-blocked", "bait-hidden"],
)
def test_notice_appears_with_an_ad_blocker_and_stays_dismissed(
    page: Any, context: Any, article: Any, script: bool, bait: bool
) -> None:
    block_ads(context, script=script, bait=bait)
    page.goto(f"/articles/{article.slug}")
    notice = page.locator("#adblock-notice")
    expect(notice).to_be_visible()
    expect(notice.get_by_role("heading")).to_have_text("Looks like you are using an ad blocker")
    expect(notice.get_by_role("link", name="Become a Patron")).to_have_attribute(
        "href", re.compile(r"^/support\?src=notice")
    )
    # the banner is independent of the notice
    expect(page.locator("#support-banner")).to_be_visible()

    notice.get_by_role("button", name="Dismiss the ad-blocker notice").click()
    expect(notice).to_be_hidden()
    assert dismissed_until(page, "notice") > (time.time() + 29 * 86_400) * 1000

    page.reload()
    settle_blocker_check(page)
    expect(notice).to_be_hidden()
    expect(page.locator("#support-banner")).to_be_visible()


# --- (3) select text, Ctrl+Enter, suggest; staff resolve it -----------------------------------


def test_selection_and_ctrl_enter_send_a_suggestion_that_staff_resolve(
    page: Any, new_context: Any, db: Session, article: Any
) -> None:
    from patrons.models import CorrectionSuggestion

    page.goto(f"/articles/{article.slug}")
    select_text(page, "#article-body", "two winters")
    page.keyboard.press("Control+Enter")

    dialog = page.locator("#correction-dialog")
    expect(dialog).to_be_visible()
    assert page.evaluate("document.getElementById('correction-dialog').open") is True
    expect(dialog.get_by_role("heading")).to_have_text("Suggest a correction")
    expect(page.get_by_label("The text that needs correcting")).to_have_value("two winters")
    expect(page.locator("#correction-form input[name=context]")).to_have_value(
        "Residents of the left bank, who have crossed by ferry for two winters, welcomed the news."
    )
    comment = page.get_by_label("What is wrong, and what should it say?")
    expect(comment).to_be_focused()
    comment.fill("It was three winters: the first bridge closed in 2023.")
    page.get_by_label("Your email (optional").fill("Reader@Example.org")
    dialog.get_by_role("button", name="Send").click()

    # the thanks stays until the reader closes the dialog; the focus goes to Close
    expect(dialog.get_by_role("status")).to_have_text("Thank you. Our editors will look at it.")
    close = dialog.get_by_role("button", name="Close")
    expect(close).to_be_focused()
    page.wait_for_timeout(2000)
    expect(dialog).to_be_visible()
    close.click()
    expect(dialog).to_be_hidden()

    stored = db.scalars(select(CorrectionSuggestion)).one()
    assert (stored.selection, stored.email, stored.status) == (
        "two winters",
        "reader@example.org",
        "open",
    )
    assert stored.article_id == article.id
    assert_no_page_errors(page)

    # staff sign in and resolve it
    make_staff(db)
    staff = new_context().new_page()
    staff.goto("/login")
    staff.get_by_label("Email").fill("editor@example.org")
    staff.get_by_label("Password").fill(PASSWORD)
    staff.get_by_role("button", name="Sign in").click()
    expect(staff.get_by_role("button", name="Sign out")).to_be_visible()

    staff.goto("/staff/corrections")
    row = staff.locator("tbody tr", has=staff.locator("mark", has_text="two winters"))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("It was three winters")
    expect(row).to_contain_text("who have crossed by ferry for two winters")
    expect(row).to_contain_text(TITLE)
    expect(row.locator(".status")).to_have_text("open")
    row.get_by_role("button", name="Resolve").click()

    expect(staff.get_by_text(f"Suggestion #{stored.id} marked resolved.")).to_be_visible()
    expect(staff.locator("mark", has_text="two winters")).to_have_count(0)
    expect(staff.get_by_text("No open suggestions.")).to_be_visible()
    staff.goto("/staff/corrections?status=resolved")
    resolved = staff.locator("tbody tr", has=staff.locator("mark", has_text="two winters"))
    expect(resolved.locator(".status")).to_have_text("resolved")


def test_context_is_the_sentence_of_the_selected_words_not_their_first_occurrence(
    page: Any, article: Any
) -> None:
    page.goto(f"/articles/{article.slug}")
    # "for the overrun" is in two sentences of one paragraph; select the second
    select_text(page, "#article-body", "pay for the overrun", occurrence=1)
    page.keyboard.press("Control+Enter")
    expect(page.locator("#correction-form input[name=context]")).to_have_value(
        "The council says the contractor will pay for the overrun, and that the contract allows it."
    )


def test_a_typo_in_the_headline_can_be_reported_too(page: Any, article: Any) -> None:
    page.goto(f"/articles/{article.slug}")
    select_text(page, "article h1", "two years")
    page.keyboard.press("Meta+Enter")  # Cmd+Enter on a Mac
    expect(page.get_by_label("The text that needs correcting")).to_have_value("two years")
    expect(page.locator("#correction-form input[name=context]")).to_have_value(TITLE)


def test_ctrl_enter_outside_the_article_text_does_nothing(page: Any, article: Any) -> None:
    page.goto(f"/articles/{article.slug}")
    select_text(page, ".reprint", "500 characters")
    page.keyboard.press("Control+Enter")
    page.wait_for_timeout(300)
    expect(page.locator("#correction-dialog")).to_be_hidden()


# --- (4) the visible link ---------------------------------------------------------------------


def test_keyboard_users_open_the_dialog_from_the_link_and_escape_closes_it(
    page: Any, article: Any
) -> None:
    page.goto(f"/articles/{article.slug}")
    link = page.get_by_role("link", name="suggest a correction")
    link.focus()
    page.keyboard.press("Enter")

    dialog = page.locator("#correction-dialog")
    expect(dialog).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/articles/{article.slug}$"))  # no navigation
    selection = page.get_by_label("The text that needs correcting")
    expect(selection).to_have_value("")
    expect(selection).to_be_focused()

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(link).to_be_focused()  # back where the reader was


def test_sending_from_the_link_with_typed_text_works(page: Any, db: Session, article: Any) -> None:
    from patrons.models import CorrectionSuggestion

    page.goto(f"/articles/{article.slug}")
    page.get_by_role("link", name="suggest a correction").click()
    dialog = page.locator("#correction-dialog")
    # the selection is required: the browser refuses an empty one, nothing is sent
    dialog.get_by_role("button", name="Send").click()
    expect(dialog.get_by_role("status")).to_have_text("")
    page.get_by_label("The text that needs correcting").fill("Gulnara Akhmetova")
    page.get_by_label("What is wrong, and what should it say?").fill("Her name is Gulnar.")
    dialog.get_by_role("button", name="Send").click()
    expect(dialog.get_by_role("status")).to_have_text(re.compile("^Thank you"))
    stored = db.scalars(select(CorrectionSuggestion)).one()
    assert (stored.selection, stored.context, stored.comment) == (
        "Gulnara Akhmetova",
        "",
        "Her name is Gulnar.",
    )


def test_a_double_click_on_send_sends_one_suggestion(page: Any, db: Session, article: Any) -> None:
    from patrons.models import CorrectionSuggestion

    # a reader who has a session already (a first visit's two sessions would hide the bug: the
    # second request's CSRF token would belong to the session the browser did not keep)
    page.request.get("/csrf-token")
    page.goto(f"/articles/{article.slug}")
    select_text(page, "#article-body", "two winters")
    page.keyboard.press("Control+Enter")
    dialog = page.locator("#correction-dialog")
    dialog.get_by_role("button", name="Send").dblclick()
    expect(dialog.get_by_role("status")).to_have_text(re.compile("^Thank you"))
    page.wait_for_timeout(500)
    assert len(db.scalars(select(CorrectionSuggestion)).all()) == 1


def test_a_refused_suggestion_says_why_and_can_be_sent_again(page: Any, article: Any) -> None:
    page.route(
        f"**/articles/{article.slug}/correction",
        lambda route: route.fulfill(
            status=429, content_type="application/json", body='{"ok": false}'
        ),
    )
    page.goto(f"/articles/{article.slug}")
    select_text(page, "#article-body", "two winters")
    page.keyboard.press("Control+Enter")
    dialog = page.locator("#correction-dialog")
    send = dialog.get_by_role("button", name="Send")
    send.click()
    expect(dialog.get_by_role("status")).to_have_text(re.compile("^Too many suggestions"))
    expect(send).to_be_enabled()
    expect(page.get_by_label("The text that needs correcting")).to_have_value("two winters")


# --- (5) without JavaScript -------------------------------------------------------------------


def test_without_javascript_the_link_leads_to_a_working_form(
    new_context: Any, db: Session, article: Any
) -> None:
    from patrons.models import CorrectionSuggestion

    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"/articles/{article.slug}")
    expect(page.locator("#support-banner")).to_be_visible()
    # controls that need JavaScript are not offered
    expect(page.locator("#support-banner [data-dismiss]")).to_be_hidden()
    expect(page.get_by_role("button", name="Copy link")).to_be_hidden()
    expect(page.locator("#adblock-notice")).to_be_hidden()
    expect(page.locator("#correction-dialog")).to_be_hidden()

    page.get_by_role("link", name="suggest a correction").click()
    expect(page).to_have_url(re.compile(rf"/articles/{article.slug}/correction$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Suggest a correction")
    page.get_by_label("The text that needs correcting").fill("two winters")
    page.get_by_label("What is wrong, and what should it say?").fill("Three winters.")
    page.get_by_role("button", name="Send suggestion").click()

    expect(page).to_have_url(re.compile(r"/correction\?sent=1$"))
    expect(page.get_by_role("status")).to_have_text(re.compile("^Thank you"))
    stored = db.scalars(select(CorrectionSuggestion)).one()
    assert (stored.selection, stored.comment, stored.article_id) == (
        "two winters",
        "Three winters.",
        article.id,
    )


def test_without_javascript_an_empty_suggestion_is_refused_with_a_message(
    new_context: Any, db: Session, article: Any
) -> None:
    from patrons.models import CorrectionSuggestion

    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"/articles/{article.slug}/correction")
    page.get_by_role("button", name="Send suggestion").click()
    expect(page.get_by_text("Quote the text that needs correcting.")).to_be_visible()
    expect(page.get_by_label("The text that needs correcting")).to_have_attribute(
        "aria-invalid", "true"
    )
    assert db.scalars(select(CorrectionSuggestion)).all() == []


# --- (6) accessibility: axe-core --------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_article_page_has_no_serious_accessibility_violations(
    new_context: Any, axe_source: str, article: Any, scheme: str
) -> None:
    # the page's CSP refuses inline scripts (add_script_tag); init scripts are not subject to it
    context = new_context(color_scheme=scheme)
    context.add_init_script(path=str(AXE_JS))
    block_ads(context)  # so the notice is on the page and checked as well
    page = context.new_page()
    page.goto(f"/articles/{article.slug}")
    expect(page.locator("#adblock-notice")).to_be_visible()
    assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") is (scheme == "dark")

    violations = serious_violations(page)
    assert not violations, f"axe-core ({scheme}): {describe(violations)}"

    # and with the correction dialog open
    page.get_by_role("link", name="suggest a correction").click()
    expect(page.locator("#correction-dialog")).to_be_visible()
    violations = serious_violations(page)
    assert not violations, f"axe-core ({scheme}, dialog open): {describe(violations)}"


def test_emulated_dark_scheme_switches_the_colours(page: Any, article: Any) -> None:
    page.goto(f"/articles/{article.slug}")
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (light, dark) == ("rgb(255, 255, 255)", "rgb(18, 18, 18)")


# --- (7) screenshots, to look at ---------------------------------------------------------------


def shoot(page: Any, folder: Path, name: str) -> None:
    page.wait_for_timeout(150)  # let transitions and fonts settle
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_screenshots(new_context: Any, screenshots: Path, article: Any) -> None:
    for scheme in ("light", "dark"):
        page = new_context(color_scheme=scheme).new_page()
        page.goto(f"/articles/{article.slug}")
        settle_blocker_check(page)
        expect(page.locator("#adblock-notice")).to_be_hidden()
        shoot(page, screenshots, f"article-{scheme}")

    mobile = new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = mobile.new_page()
    page.goto(f"/articles/{article.slug}")
    settle_blocker_check(page)
    shoot(page, screenshots, "article-mobile-390")
    # nothing sticks out sideways on a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("link", name="suggest a correction").click()
    dialog = page.locator("#correction-dialog")
    expect(dialog).to_be_visible()
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844, "the dialog must fit the screen"
    page.screenshot(path=str(screenshots / "dialog-mobile-390.png"))  # the viewport: it is modal

    blocked = new_context()
    block_ads(blocked)
    page = blocked.new_page()
    page.goto(f"/articles/{article.slug}")
    expect(page.locator("#adblock-notice")).to_be_visible()
    shoot(page, screenshots, "article-with-notice")

    for scheme in ("light", "dark"):
        page = new_context(color_scheme=scheme).new_page()
        page.goto(f"/articles/{article.slug}")
        select_text(page, "#article-body", "two winters")
        page.keyboard.press("Control+Enter")
        dialog = page.locator("#correction-dialog")
        expect(dialog).to_be_visible()
        page.screenshot(path=str(screenshots / f"dialog-open-{scheme}.png"))
        page.get_by_label("What is wrong, and what should it say?").fill("Three winters.")
        dialog.get_by_role("button", name="Send").click()
        expect(dialog.get_by_role("status")).to_have_text(re.compile("^Thank you"))
        page.screenshot(path=str(screenshots / f"dialog-sent-{scheme}.png"))


# --- (6) signed-in readers get the page from the shared cached parts --------------------------


def test_a_patron_reads_the_cached_article_without_the_banner_and_a_member_with_it(
    page: Any, new_context: Any, db: Session, article: Any
) -> None:
    from tests.browser.test_voting_flow import sign_in
    from tests.factories import make_patron, make_user

    anonymous = new_context().new_page()
    anonymous.goto(f"/articles/{article.slug}")  # an anonymous reader fills the page cache
    expect(anonymous.locator("#support-banner")).to_be_visible()

    patron = make_patron(db)
    reader = page
    sign_in(reader, patron.email)
    reader.goto(f"/articles/{article.slug}")
    expect(reader.locator("article h1")).to_have_text(TITLE)
    expect(reader.get_by_role("button", name="Sign out")).to_be_visible()
    expect(reader.locator("#support-banner")).to_have_count(0)
    expect(reader.locator(".support-banner--thanks")).to_be_visible()
    reader.reload()  # now from the patrons' cached parts
    expect(reader.locator("article h1")).to_have_text(TITLE)
    expect(reader.locator("#support-banner")).to_have_count(0)
    expect(reader.locator(".support-banner--thanks")).to_be_visible()
    assert_no_page_errors(reader)

    member = new_context().new_page()
    sign_in(member, make_user(db).email)
    member.goto(f"/articles/{article.slug}")
    expect(member.locator("#support-banner")).to_be_visible()
    expect(member.get_by_role("button", name="Sign out")).to_be_visible()
    member.get_by_role("button", name="Sign out").click()  # lands on the cached front page
    expect(member.get_by_text("You are signed out.")).to_be_visible()
