"""Input fuzzing (security.md threat 30, "Input fuzzing" figure): every POST rule of
`app.url_map` gets Hypothesis-generated form data, signed in as a role that reaches the view,
with a valid CSRF token: never a 5xx, never a traceback in the body."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons import extensions
from patrons.accounts import tokens
from patrons.articles import corrections
from patrons.models import User
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_article, make_patron, make_staff, make_user

# per route per run: ~30 ms per request (SQLite), 19 routes -> ~60 s; 1,000 per route would
# take ~10 minutes, over the module's 90 s budget. Raise it for a long run (e.g. nightly).
EXAMPLES = 100
FIELDS = {
    "articles.suggest_correction": ["selection", "context", "comment", "email", "website"],
    "articles.contact": ["selection", "context", "comment", "email", "website"],
    "accounts.login": ["email", "password", "remember", "next"],
    "accounts.logout": [],
    "accounts.signup": ["email", "password", "display_name", "website"],
    "accounts.verify": ["token"],
    "accounts.resend_verification": ["email"],
    "accounts.update_profile": ["display_name", "is_staff", "email"],
    "accounts.change_password": ["current_password", "new_password", "confirm"],
    "accounts.forgot_password": ["email"],
    "accounts.change_email": ["email", "password"],
    "accounts.confirm_email_change": ["token"],
    "accounts.delete_account": ["password", "confirm"],
    "accounts.reset": ["new_password", "confirm", "token"],
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
}
FIELDS["staff.edit_article"] = FIELDS["staff.new_article"]
ROLE = {name: "staff" for name in FIELDS if name.startswith("staff.")}
ROLE.update(
    dict.fromkeys(
        [
            "accounts.update_profile",
            "accounts.change_password",
            "accounts.change_email",
            "accounts.delete_account",
        ],
        "member",
    )
)

text = st.one_of(
    st.text(max_size=50),
    st.text(st.characters(codec="utf-8"), max_size=300),
    st.text(st.characters(max_codepoint=0x1F), max_size=20),
    st.text(min_size=1000, max_size=5000),
    st.sampled_from(["", " ", "\x00", "a@b.c", "reader1@example.org", "0", "-1", "9" * 30]),
)


def form_data(endpoint: str) -> st.SearchStrategy[dict[str, str]]:
    names = st.sampled_from(FIELDS[endpoint]) if FIELDS[endpoint] else st.nothing()
    return st.dictionaries(st.one_of(names, st.text(max_size=20)), text, max_size=8)


@pytest.fixture
def no_rate_limits() -> Iterator[None]:
    saved = extensions.limiter.enabled
    extensions.limiter.enabled = False  # checked on every request (Flask-Limiter 4.1)
    yield
    extensions.limiter.enabled = saved


def test_every_post_rule_is_fuzzed(app: Flask) -> None:
    posts = {r.endpoint for r in app.url_map.iter_rules() if "POST" in (r.methods or ())}
    assert posts == set(FIELDS)


def _target(app: Flask, db: Session, endpoint: str) -> tuple[str, str]:
    """The URL to fuzz and the role to sign in as, with the state the view needs."""
    from flask import url_for

    article = make_article(db, slug="story")
    suggestion = corrections.suggest_correction(db, article, "a", "", "b", None)
    db.commit()
    member = make_user(db, email="member@example.org")
    make_patron(db)
    make_staff(db)
    with app.test_request_context():
        values: dict[str, object] = {}
        if endpoint == "articles.suggest_correction":
            values = {"slug": "story"}
        elif endpoint in ("staff.edit_article", "staff.publish_article"):
            values = {"article_id": article.id}
        if endpoint == "staff.publish_article":
            values["action"] = "publish"
        if endpoint == "staff.handle_correction":
            values = {"suggestion_id": suggestion.id, "status": "resolved"}
        url = url_for(endpoint, **values)
        if endpoint == "accounts.reset":
            token = tokens.make_token(
                "reset", uid=member.id, pw=tokens.password_fingerprint(member.password_hash)
            )
            url += "?token=" + token
    return url, ROLE.get(endpoint, "anonymous")


@pytest.mark.parametrize("endpoint", sorted(FIELDS))
def test_fuzz_form(app: Flask, db: Session, no_rate_limits: None, endpoint: str) -> None:
    url, role = _target(app, db, endpoint)
    client = app.test_client()
    emails = {"member": "member@example.org", "staff": "editor@example.org"}

    def sign_in() -> str:
        if role != "anonymous":
            login(client, emails[role], PASSWORD)
        return csrf_token(client)

    state = {"token": sign_in()}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=form_data(endpoint))
    def run(data: dict[str, str]) -> None:
        if endpoint in ("accounts.logout", "accounts.reset", "accounts.delete_account"):
            state["token"] = sign_in() if role != "anonymous" else csrf_token(client)
        response = client.post(url, data={**data, "csrf_token": state["token"]})
        body = response.get_data(as_text=True)
        assert response.status_code < 500, (response.status_code, data)
        assert "Traceback" not in body
        if response.status_code == 302 and role != "anonymous":
            state["token"] = sign_in()  # e.g. a password reset or sign-out changed the session

    run()

    if endpoint == "accounts.signup":
        rows = db.execute(select(User.email, User.password_hash)).all()
        for email, password_hash in rows:
            assert email and "@" in email, email
            assert password_hash.startswith("$argon2id$"), email
