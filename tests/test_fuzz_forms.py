"""Input fuzzing (docs/security.md threat 30): every POST rule of
`app.url_map` gets Hypothesis-generated form data, signed in as a role that reaches the view,
with a valid CSRF token: never a 5xx, never a traceback in the body, and no partial write.

This module runs without Stripe keys, where the pledge routes and staff's offline-only
simulations answer 404: those ten are fuzzed with the offline Stripe in
tests/pledges/test_fuzz_pledges.py (PLEDGE_FIELDS), and test_every_post_rule_is_fuzzed
fails for a POST rule fuzzed in neither. The machinery both share (the value strategy, the
checks of every example, the no-partial-write detector) is in tests/fuzzing.py.

Examples per route: the Hypothesis profile's max_examples (tests/conftest.py: 100 in `dev`, the
default, 1,000 in `ci`, which .ci/run sets with HYPOTHESIS_PROFILE), or `FUZZ_EXAMPLES=n`
(e.g. 10,000 overnight). What keeps 20,000 requests affordable (measured on 2 cores: the
module took ~35 s for 100 per route, ~5.5 min at 1,000 by extrapolation; now ~2 min 20 s for
1,000 per route on SQLite and ~3.5 min on PostgreSQL):

- Generating the data was the largest cost, not the requests: Hypothesis draws strings a
  character at a time, and `st.text(min_size=1000, max_size=5000)` made generating 1,000
  form dicts take ~9 s per route (now ~2 s). Longer values are now a short random
  (any-codepoint) piece repeated to 51-6,000 characters: past every length limit, cheaply.
- The app hashes with cheap Argon2id parameters (PASSWORD_HASH_* settings, t=1, m=8 KiB, as
  every test app but those of the hashing tests does: tests/conftest.py), so a form that
  validates and reaches a password check costs microseconds, not ~200 ms.
  The production cost is tested elsewhere (tests/accounts/test_threats.py, threat 23;
  config.py refuses less than m=19 MiB, t=2 in production).
- The no-partial-write check costs one counting query per example (below); comparing whole
  tables before and after each request cost about as much as the request.
- One app, one database and one signed-in client per route; the session is signed in again
  only after a route that may end it answered with a redirect.

Nothing that guards the views is switched off: CSRF protection, login and staff checks and
validation all run, and every example asserts its request was not refused by the CSRF check
or by a sign-in redirect (so the input reached the view). The rate limiter is disabled for
this module (there is no setting for the limits; Flask-Limiter's switch is the supported
one): with limits on, after a few requests every answer would be a 429 and the inputs would
never reach the forms. Every example also asserts it was not answered with 429.

"No partial write": a request answered 4xx leaves every table's row count unchanged (one
counting query per example, the count after one example being the count before the next),
and the app's engine committed no INSERT, UPDATE or DELETE during it (SQLAlchemy engine
events: this also catches a row updated in place, which counting misses, and costs no
query). Requests answered 2xx/3xx may write: that is valid input doing its job (a sign-up, a
correction suggestion, a saved profile, site texts or article).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.accounts import email_tokens
from patrons.articles import corrections
from patrons.core.config import Settings
from patrons.models import User
from tests.conftest import csrf_token, login, make_settings
from tests.factories import (
    PASSWORD,
    make_article,
    make_patron,
    make_proposal,
    make_round,
    make_staff,
    make_user,
)
from tests.fuzzing import (
    CHEAP_HASHING,
    EXAMPLES,
    NoPartialWrite,
    fuzz_settings,
    no_rate_limits,  # noqa: F401  (a fixture)
    text,
)
from tests.pledges.test_fuzz_pledges import PLEDGE_FIELDS

FIELDS = {
    # unsigned: always refused before the body is read as an event
    "stripe.webhook": ["id", "type", "data", "livemode"],
    "articles.suggest_correction": ["selection", "context", "comment", "email", "website"],
    "articles.contact": ["selection", "context", "comment", "email", "website"],
    "accounts.login": ["email", "password", "remember", "next"],
    "accounts.logout": [],
    "accounts.signup": ["email", "password", "display_name", "website"],
    "accounts.verify": ["token"],
    "accounts.resend_verification": ["email"],
    "accounts.signup_sent": ["code"],
    "accounts.confirm_to_pledge": ["currency", "amount", "other_amount"],
    "accounts.update_profile": ["display_name", "is_staff", "email"],
    "accounts.change_password": ["current_password", "new_password", "confirm"],
    "accounts.forgot_password": ["email"],
    "accounts.change_email": ["new_email", "password", "email"],
    "accounts.confirm_email_change": ["token"],
    "accounts.delete_account": ["password", "confirm"],
    "accounts.reset": ["new_password", "confirm", "token"],
    "accounts.login_link": ["email", "next"],
    "accounts.login_link_open": ["token", "remember"],
    "staff.new_article": [
        "title",
        "slug",
        "summary",
        "body_format",
        "body_source",
        "author_name",
        "editor_name",
        "tags",
        "lead_image_url",
        "lead_image_alt",
        "lead_image_caption",
        "lead_image_credit",
        "canonical_url",
        "published_at",
    ],  # fmt: skip
    "staff.publish_article": ["back"],
    "staff.handle_correction": ["back"],
    "staff.site_texts": [
        "banner_heading",
        "banner_text",
        "banner_button",
        "banner_thanks",
        "banner_dismiss_days",
        "notice_heading",
        "notice_text",
        "notice_dismiss_days",
        "reprint_policy",
        "footer_copyright",
        "footer_funders",
        "privacy_policy",
        "contact_email",
        "ad_slot_body",
        "ad_slot_aside",
    ],  # fmt: skip
    # reports: the exchange rates (patrons/reports/forms.py)
    "staff.reports.exchange_rates": [
        "reporting_currency",
        "rate_EUR",
        "rate_USD",
        "rate_GBP",
        "rate_UAH",
    ],
    # voting (patrons/voting): a vote names a topic in the URL and nothing else
    "voting.vote": ["user_id", "patron_id", "round_id", "topic_id"],
    "voting.withdraw": ["user_id", "patron_id", "round_id", "topic_id"],
    "voting.propose": ["title", "description", "user_id", "proposed_by_id", "status"],
    "staff.voting.new_round": [
        "title",
        "introduction",
        "opens_at",
        "closes_at",
        "votes_per_patron",
        "live_counts",
    ],  # fmt: skip
    "staff.voting.add_topic": ["title", "description", "status", "round_id"],
    "staff.voting.close_round": [],
    "staff.stripe_events.retry_event": [],
    "staff.voting.moderate_topic": ["round_id", "into_topic_id", "reason", "back"],
    "staff.voting.topic_status": ["status"],
    "staff.voting.link_article": ["article"],
}
FIELDS["staff.edit_article"] = FIELDS["staff.new_article"]
FIELDS["staff.voting.round_page"] = FIELDS["staff.voting.new_round"]
ROLE = {name: "staff" for name in FIELDS if name.startswith("staff.")}
ROLE.update(dict.fromkeys(["voting.vote", "voting.withdraw", "voting.propose"], "patron"))
ROLE.update(
    dict.fromkeys(
        [
            "accounts.update_profile",
            "accounts.change_password",
            "accounts.change_email",
            "accounts.delete_account",
            "accounts.confirm_to_pledge",
        ],
        "member",
    )
)
# routes whose success may sign the client out or in (or rotate its session): get a fresh
# session and token after they redirect. Other routes keep theirs (a stale token would show
# up as a CSRF refusal, which every example asserts against).
SESSION_CHANGERS = {
    "accounts.login",
    "accounts.logout",
    "accounts.signup",
    "accounts.verify",
    "accounts.change_password",
    "accounts.delete_account",
    "accounts.reset",
}
# routes where random input is often valid and then writes (a check of the write detector)
WRITES_ON_VALID_INPUT = {"accounts.update_profile", "articles.contact"}


def form_data(endpoint: str) -> st.SearchStrategy[dict[str, str]]:
    names = st.sampled_from(FIELDS[endpoint]) if FIELDS[endpoint] else st.nothing()
    return st.dictionaries(st.one_of(names, st.text(max_size=20)), text, max_size=8)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """conftest's settings with cheap password hashing (the `app` fixture uses these)."""
    return make_settings(database_url, tmp_path / "instance", **CHEAP_HASHING)


def test_every_post_rule_is_fuzzed(app: Flask) -> None:
    posts = {r.endpoint for r in app.url_map.iter_rules() if "POST" in (r.methods or ())}
    # the pledge and simulation routes answer 404 without Stripe: fuzzed with the offline
    # Stripe in tests/pledges/test_fuzz_pledges.py. A new POST route fails here until fuzzed.
    fuzzed = set(FIELDS) | set(PLEDGE_FIELDS)
    assert not set(FIELDS) & set(PLEDGE_FIELDS)
    assert posts == fuzzed, {"not fuzzed": sorted(posts - fuzzed), "gone": sorted(fuzzed - posts)}


def _voting_state(db: Session, patron_id: int) -> dict[str, dict[str, object]]:
    """An open round (the patron backs one topic), a closed one with a chosen topic, a
    proposal: the URL arguments of the voting routes."""
    from patrons.models import Vote

    open_round = make_round(db, topics=("Rivers", "Schools"))
    closed = make_round(db, opens_in_days=-9, closes_in_days=-2, topics=("Ferries", "Silos"))
    closed.topics[0].status = "chosen"
    db.add(Vote(user_id=patron_id, topic_id=open_round.topics[1].id, round_id=open_round.id,
                created_at=open_round.opens_at))  # fmt: skip
    proposal = make_proposal(db, title="Wells")
    db.commit()
    in_open = {"round_id": open_round.id}
    return {
        "voting.vote": {"topic_id": open_round.topics[0].id},
        "voting.withdraw": {"topic_id": open_round.topics[1].id},
        "staff.voting.round_page": in_open,
        "staff.voting.add_topic": in_open,
        "staff.voting.close_round": in_open,
        "staff.voting.moderate_topic": {"topic_id": proposal.id, "action": "decline"},
        "staff.voting.topic_status": {"topic_id": closed.topics[1].id},
        "staff.voting.link_article": {"topic_id": closed.topics[0].id},
    }


def _failed_event(db: Session) -> str:
    """A Stripe event that failed to apply, for staff to retry."""
    from patrons.core import clock
    from patrons.models import StripeEvent

    db.add(StripeEvent(id="evt_fuzz", type="invoice.paid", received_at=clock.now(),
                       object_id="in_fuzz", state="failed", attempts=12,
                       last_error="x"))  # fmt: skip
    db.commit()
    return "evt_fuzz"


def _target(app: Flask, db: Session, endpoint: str) -> tuple[str, str]:
    """The URL to fuzz and the role to sign in as, with the state the view needs."""
    from flask import url_for

    article = make_article(db, slug="story")
    suggestion = corrections.suggest_correction(db, article, "a", "", "b", None)
    db.commit()
    member = make_user(db, email="member@example.org")
    patron = make_patron(db, email="patron@example.org")
    make_staff(db)
    voting = _voting_state(db, patron.id)
    with app.test_request_context():
        values: dict[str, object] = dict(voting.get(endpoint, {}))
        if endpoint == "articles.suggest_correction":
            values = {"slug": "story"}
        elif endpoint in ("staff.edit_article", "staff.publish_article"):
            values = {"article_id": article.id}
        if endpoint == "staff.publish_article":
            values["action"] = "publish"
        if endpoint == "staff.handle_correction":
            values = {"suggestion_id": suggestion.id, "status": "resolved"}
        if endpoint == "staff.stripe_events.retry_event":
            values = {"event_id": _failed_event(db)}
        url = url_for(endpoint, **values)
        if endpoint == "accounts.reset":
            url += "?token=" + email_tokens.issue(db, member, email_tokens.RESET).token
            db.commit()
    return url, ROLE.get(endpoint, "anonymous")


@pytest.mark.slow
@pytest.mark.usefixtures("no_rate_limits")
@pytest.mark.parametrize("endpoint", sorted(FIELDS))
def test_fuzz_form(app: Flask, db: Session, endpoint: str) -> None:
    url, role = _target(app, db, endpoint)
    client = app.test_client()
    emails = {
        "member": "member@example.org",
        "patron": "patron@example.org",
        "staff": "editor@example.org",
    }

    def sign_in() -> str:
        if role != "anonymous":
            login(client, emails[role], PASSWORD)
        return csrf_token(client)

    state = {"token": sign_in()}
    answered: dict[int, int] = {}
    guard = NoPartialWrite(app.extensions["db.engine"])

    @fuzz_settings()
    @given(data=form_data(endpoint))
    def run(data: dict[str, str]) -> None:
        response = guard.send(
            lambda: client.post(url, data={**data, "csrf_token": state["token"]}),
            data,
            signed_in=role != "anonymous",
        )
        status = response.status_code
        answered[status] = answered.get(status, 0) + 1
        if status in (302, 303) and endpoint in SESSION_CHANGERS:
            state["token"] = sign_in()
            guard.forget()  # signing in writes a session

    try:
        run()
    finally:
        guard.close()
    assert sum(answered.values()) >= EXAMPLES, answered  # every example reached the app
    if endpoint in WRITES_ON_VALID_INPUT and EXAMPLES >= 100:  # the write detector sees writes
        assert guard.wrote > 0, answered
    if endpoint == "accounts.update_profile":  # mass assignment (threat 18): no is_staff
        assert db.scalar(select(User.is_staff).where(User.email == emails["member"])) is False

    if endpoint == "accounts.signup":
        rows = db.execute(select(User.email, User.password_hash)).all()
        for email, password_hash in rows:
            assert email and "@" in email, email
            assert password_hash.startswith("$argon2id$"), email


# two-factor: fuzzed with the state each form needs in tests/accounts/test_two_factor_fuzz.py
from tests.accounts.test_two_factor_fuzz import TWO_FACTOR_FIELDS  # noqa: E402

FIELDS.update(TWO_FACTOR_FIELDS)
