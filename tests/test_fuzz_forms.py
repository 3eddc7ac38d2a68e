"""Input fuzzing (security.md threat 30, "Input fuzzing" figure): every POST rule of
`app.url_map` gets Hypothesis-generated form data, signed in as a role that reaches the view,
with a valid CSRF token: never a 5xx, never a traceback in the body, and no partial write.

1,000 examples per route (`FUZZ_EXAMPLES=n` to change it, e.g. 100 for a quick run or 10,000
overnight). What keeps 19,000 requests affordable (measured on 2 cores: the module took ~35 s
for 100 per route, ~5.5 min at 1,000 by extrapolation; now ~2 min 20 s for 1,000 per route on
SQLite and ~3.5 min on PostgreSQL):

- Generating the data was the largest cost, not the requests: Hypothesis draws strings a
  character at a time, and `st.text(min_size=1000, max_size=5000)` made generating 1,000
  form dicts take ~9 s per route (now ~2 s). Longer values are now a short random
  (any-codepoint) piece repeated to 51-6,000 characters: past every length limit, cheaply.
- The app hashes with cheap Argon2id parameters (PASSWORD_HASH_* settings, t=1, m=8 KiB),
  so a form that validates and reaches a password check costs microseconds, not ~200 ms.
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

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from patrons import extensions
from patrons.accounts import tokens
from patrons.articles import corrections
from patrons.config import Settings
from patrons.db import Base
from patrons.models import User
from tests.conftest import csrf_token, login, make_settings
from tests.factories import PASSWORD, make_article, make_patron, make_staff, make_user

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
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
    "accounts.change_email": ["new_email", "password", "email"],
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
# refreshed when a signed-in page is requested minutes apart: not a write of the view
VOLATILE_WRITE = re.compile(r"UPDATE user_sessions SET last_seen_at=\S+ WHERE", re.I)
CSRF_REFUSAL = "could not be accepted"  # the CSRF error page (web.py)


def _repeat(piece: str, length: int) -> str:
    piece = piece or "x"
    return (piece * (length // len(piece) + 1))[:length]


text = st.one_of(
    st.text(max_size=50),
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.text(st.characters(max_codepoint=0x1F), max_size=20),
    # longer values (past the length limits): a random piece repeated; drawing 5,000
    # characters one by one made generating the data cost more than the requests
    st.builds(_repeat, st.text(st.characters(codec="utf-8"), max_size=12), st.integers(51, 6000)),
    st.sampled_from(["", " ", "\x00", "a@b.c", "reader1@example.org", "0", "-1", "9" * 30]),
)


def form_data(endpoint: str) -> st.SearchStrategy[dict[str, str]]:
    names = st.sampled_from(FIELDS[endpoint]) if FIELDS[endpoint] else st.nothing()
    return st.dictionaries(st.one_of(names, st.text(max_size=20)), text, max_size=8)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """conftest's settings with cheap password hashing (the `app` fixture uses these)."""
    return make_settings(
        database_url,
        tmp_path / "instance",
        password_hash_time_cost=1,
        password_hash_memory_cost=8,
        password_hash_parallelism=1,
    )


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


def row_counts(conn: Connection) -> dict[str, int]:
    """Every table's row count, in one query."""
    tables = list(Base.metadata.sorted_tables)
    query = select(*(select(func.count()).select_from(t).scalar_subquery() for t in tables))
    counts = dict(zip((t.name for t in tables), conn.execute(query).one(), strict=True))
    conn.rollback()  # no transaction (and no SQLite read lock) held between requests
    return counts


class CommittedWrites:
    """The INSERT/UPDATE/DELETE statements the app's engine committed since `clear()`.

    Counting rows misses an UPDATE (a profile half saved before a 400); this sees every write
    that reached the database through the app, and costs no query."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pending: dict[int, list[str]] = {}
        self.committed: list[str] = []
        event.listen(engine, "before_cursor_execute", self._execute)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)

    def _execute(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        verb = statement.lstrip()[:6].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and not VOLATILE_WRITE.match(statement):
            self.pending.setdefault(id(conn), []).append(statement)

    def _commit(self, conn) -> None:  # type: ignore[no-untyped-def]
        self.committed += self.pending.pop(id(conn), [])

    def _rollback(self, conn) -> None:  # type: ignore[no-untyped-def]
        self.pending.pop(id(conn), None)

    def clear(self) -> None:
        self.committed = []

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._execute)
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "rollback", self._rollback)


@pytest.mark.parametrize("endpoint", sorted(FIELDS))
def test_fuzz_form(app: Flask, db: Session, no_rate_limits: None, endpoint: str) -> None:
    url, role = _target(app, db, endpoint)
    client = app.test_client()
    emails = {"member": "member@example.org", "staff": "editor@example.org"}
    engine = app.extensions["db.engine"]

    def sign_in() -> str:
        if role != "anonymous":
            login(client, emails[role], PASSWORD)
        return csrf_token(client)

    state: dict[str, object] = {"token": sign_in(), "counts": None}
    answered: dict[int, int] = {}
    wrote = {"after 2xx/3xx": 0}
    writes = CommittedWrites(engine)

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=form_data(endpoint))
    def run(data: dict[str, str]) -> None:
        with engine.connect() as conn:
            before = state["counts"] or row_counts(conn)
            writes.clear()
            response = client.post(url, data={**data, "csrf_token": state["token"]})
            status = response.status_code
            answered[status] = answered.get(status, 0) + 1
            body = response.get_data(as_text=True)
            assert status < 500, (status, data)
            assert "Traceback" not in body
            assert status != 429, "a rate limit answered: the input never reached the view"
            assert not (status == 400 and CSRF_REFUSAL in body), "refused by the CSRF check"
            location = urlsplit(response.headers.get("Location", ""))
            if role != "anonymous":
                assert location.path != "/login", "signed out: the input never reached the view"
            state["counts"] = after = row_counts(conn)
            if 400 <= status < 500:
                assert writes.committed == [], (status, data)
                assert after == before, (status, data)
            elif writes.committed:
                wrote["after 2xx/3xx"] += 1
        if status in (302, 303) and endpoint in SESSION_CHANGERS:
            state["token"] = sign_in()
            state["counts"] = None  # signing in writes a session

    try:
        run()
    finally:
        writes.close()
    assert sum(answered.values()) >= EXAMPLES, answered  # every example reached the app
    if endpoint in WRITES_ON_VALID_INPUT and EXAMPLES >= 100:  # the write detector sees writes
        assert wrote["after 2xx/3xx"] > 0, answered
    if endpoint == "accounts.update_profile":  # mass assignment (threat 18): no is_staff
        assert db.scalar(select(User.is_staff).where(User.email == emails["member"])) is False

    if endpoint == "accounts.signup":
        rows = db.execute(select(User.email, User.password_hash)).all()
        for email, password_hash in rows:
            assert email and "@" in email, email
            assert password_hash.startswith("$argon2id$"), email
