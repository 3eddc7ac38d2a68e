"""The `flask --app patrons ...` commands: create-staff and seed-demo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons import create_app, demo
from patrons.accounts.passwords import verify_password
from patrons.articles.sanitize import plain_text
from patrons.core.db import Base
from patrons.demo import content as demo_content
from patrons.models import Article, Round, Tag, Topic, User
from tests.conftest import login, make_settings
from tests.factories import PASSWORD, make_user

NEW_PASSWORD = "a-new-staff-password"
STATIC = Path(__file__).resolve().parent.parent / "patrons" / "static"


@pytest.fixture(autouse=True)
def _no_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """--password also reads STAFF_PASSWORD; a developer's shell must not leak into the tests."""
    monkeypatch.delenv("STAFF_PASSWORD", raising=False)


def run(app: Flask, *args: str) -> Result:
    """Run a command as `flask --app patrons` does: inside an app context of its own."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


def fresh(db: Session) -> Session:
    """The test's session, with its transaction ended and its objects expired: it sees what
    the command committed (SQLite reads from a snapshot taken when the transaction began)."""
    db.rollback()
    db.expire_all()
    return db


def user_by_email(db: Session, email: str) -> User | None:
    fresh(db)
    return db.scalar(select(User).where(User.email == email))


def row_counts(db: Session) -> dict[str, int]:
    fresh(db)
    return {
        table.name: db.scalar(select(func.count()).select_from(table)) or 0
        for table in Base.metadata.sorted_tables
    }


# --- create-staff ------------------------------------------------------------------------------


def test_create_staff_makes_an_argon2id_staff_account_that_can_sign_in(app, client, db):
    result = run(app, "create-staff", "New.Editor@Example.org", "--password", NEW_PASSWORD)

    assert result.exit_code == 0, result.output
    assert "Created staff account new.editor@example.org." in result.output
    assert NEW_PASSWORD not in result.output
    user = user_by_email(db, "new.editor@example.org")
    assert user is not None and user.is_staff
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, NEW_PASSWORD)

    login(client, "new.editor@example.org", NEW_PASSWORD)
    assert client.get("/staff/").status_code == 200


def test_create_staff_promotes_an_existing_member_and_keeps_their_password(app, client, db):
    member = make_user(db, email="member@example.org")
    old_hash = member.password_hash
    client_before = app.test_client()
    login(client_before, "member@example.org", PASSWORD)

    result = run(app, "create-staff", "Member@Example.org")

    assert result.exit_code == 0, result.output
    assert "Promoted staff account member@example.org." in result.output
    assert "Generated password" not in result.output
    user = user_by_email(db, "member@example.org")
    assert user is not None and user.id == member.id and user.is_staff
    assert user.password_hash == old_hash
    assert client_before.get("/staff/").status_code == 200  # signed in before: still signed in
    assert db.scalar(select(func.count()).select_from(User)) == 1

    login(client, "member@example.org", PASSWORD)
    assert client.get("/staff/").status_code == 200


def test_create_staff_with_a_password_for_an_existing_member_resets_it(app, client, db):
    make_user(db, email="member@example.org")
    client_before = app.test_client()
    login(client_before, "member@example.org", PASSWORD)

    result = run(app, "create-staff", "member@example.org", "--password", NEW_PASSWORD)

    assert result.exit_code == 0, result.output
    user = user_by_email(db, "member@example.org")
    assert user is not None and user.is_staff
    assert verify_password(user.password_hash, NEW_PASSWORD)
    # sessions signed in before the reset end at once
    assert client_before.get("/staff/").status_code == 302
    login(client, "member@example.org", NEW_PASSWORD)


def test_create_staff_refuses_a_short_password(app, db):
    result = run(app, "create-staff", "editor@example.org", "--password", "short")

    assert result.exit_code == 2
    assert "at least 12 characters" in result.output  # staff: 12 (passwords.py)
    assert user_by_email(db, "editor@example.org") is None


def test_create_staff_refuses_a_short_password_for_an_existing_member(app, db):
    old_hash = make_user(db, email="member@example.org").password_hash

    result = run(app, "create-staff", "member@example.org", "--password", "short")

    assert result.exit_code == 2
    user = user_by_email(db, "member@example.org")
    assert user is not None and not user.is_staff
    assert user.password_hash == old_hash


@pytest.mark.parametrize("email", ["not-an-email", "x" * 250 + "@example.org"])
def test_create_staff_refuses_what_is_not_an_email_address(app, db, email):
    result = run(app, "create-staff", email, "--password", NEW_PASSWORD)

    assert result.exit_code == 2
    assert "Invalid value for EMAIL" in result.output
    assert db.scalar(select(func.count()).select_from(User)) == 0


@pytest.mark.parametrize(
    "email", ["editor@", "@example.org", "two@@example.org", "ed itor@example.org"]
)
def test_create_staff_refuses_addresses_the_sign_in_form_refuses(app, db, email):
    result = run(app, "create-staff", email, "--password", NEW_PASSWORD)

    assert result.exit_code == 2
    assert "Invalid value for EMAIL" in result.output
    assert db.scalar(select(func.count()).select_from(User)) == 0


def test_create_staff_without_a_password_or_a_terminal_generates_and_prints_one(app, client, db):
    result = run(app, "create-staff", "editor@example.org")

    assert result.exit_code == 0, result.output
    assert "Created staff account editor@example.org." in result.output
    found = re.search(r"Generated password: (\S+)", result.output)
    assert found is not None, result.output
    generated = found.group(1)
    assert len(generated) >= 10
    user = user_by_email(db, "editor@example.org")
    assert user is not None and user.is_staff
    assert user.password_hash.startswith("$argon2id$")

    login(client, "editor@example.org", generated)
    assert client.get("/staff/").status_code == 200


def test_generated_passwords_differ(app, db):
    first = run(app, "create-staff", "one@example.org").output
    second = run(app, "create-staff", "two@example.org").output
    passwords = [re.search(r"Generated password: (\S+)", out) for out in (first, second)]
    assert all(passwords)
    assert passwords[0].group(1) != passwords[1].group(1)  # type: ignore[union-attr]


# --- seed-demo ---------------------------------------------------------------------------------


def test_seed_demo_creates_the_demo_data(app, client, db):
    result = run(app, "seed-demo")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Created:")
    fresh(db)
    articles = list(db.scalars(select(Article)))
    assert len(articles) == len(demo_content.ARTICLES)
    assert all(a.is_published and a.source_key == f"demo:{a.slug}" for a in articles)
    demo_round = db.scalars(select(Round).where(Round.title == demo_content.ROUND["title"])).one()
    topics = list(db.scalars(select(Topic).where(Topic.round_id == demo_round.id)))
    assert len(topics) == len(demo_content.TOPICS)
    assert all(t.status == "in_round" for t in topics)
    staff = user_by_email(db, demo.DEMO_STAFF_EMAIL)
    assert staff is not None and staff.is_staff
    assert staff.password_hash.startswith("$argon2id$")

    login(client, demo.DEMO_STAFF_EMAIL, demo.DEMO_STAFF_PASSWORD)
    assert client.get("/staff/").status_code == 200


def test_seed_demo_a_second_time_changes_nothing(app, db):
    first = run(app, "seed-demo")
    assert first.exit_code == 0, first.output
    counts = row_counts(db)
    assert counts["articles"] == len(demo_content.ARTICLES)

    second = run(app, "seed-demo")

    assert second.exit_code == 0, second.output
    assert "nothing to do" in second.output
    assert "Created" not in second.output
    assert row_counts(db) == counts


def test_seed_demo_refuses_in_production(database_url, tmp_path, db):
    settings = make_settings(database_url, tmp_path / "instance", env="production")
    assert settings.is_production
    production = create_app(settings)
    try:
        result = run(production, "seed-demo")
    finally:
        production.extensions["db.engine"].dispose()

    assert result.exit_code == 1
    assert "refuses to run in production" in result.output
    assert all(count == 0 for count in row_counts(db).values())


def test_demo_articles_render_with_their_lead_images(app, client, db):
    assert run(app, "seed-demo").exit_code == 0

    index = client.get("/").get_data(as_text=True)
    for _days_ago, data in demo_content.ARTICLES:
        assert data["title"].replace("'", "&#39;") in index
        response = client.get(f"/articles/{data['slug']}")
        assert response.status_code == 200, data["slug"]
        html = response.get_data(as_text=True)
        assert f'src="{data["lead_image_url"]}"' in html
        assert data["lead_image_credit"] in html
        image = client.get(data["lead_image_url"])
        assert image.status_code == 200, data["lead_image_url"]
        assert image.mimetype == "image/svg+xml"
        image.close()
        assert 'class="related"' in html  # every demo article shares a tag with another
    assert client.get("/feed.atom").status_code == 200


# --- the demo content itself -------------------------------------------------------------------


def test_demo_content_is_complete():
    slugs = [data["slug"] for _, data in demo_content.ARTICLES]
    assert len(demo_content.ARTICLES) == 8
    assert len(set(slugs)) == len(slugs)
    for days_ago, data in demo_content.ARTICLES:
        assert 0.2 <= days_ago <= 20
        assert set(data) == {
            "slug", "title", "summary", "body_source", "author_name", "editor_name", "tags",
            "lead_image_url", "lead_image_alt", "lead_image_caption", "lead_image_credit",
        }  # fmt: skip
        body = data["body_source"]
        assert 350 <= len(re.findall(r"\w+", body)) <= 700, data["slug"]
        assert body.count("\n## ") >= 2 and "\n> " in body and "\n- " in body, data["slug"]
        assert all(data[k] for k in ("title", "summary", "author_name", "editor_name", "tags"))
        assert data["lead_image_credit"] == "Illustration: The Steppe Courier demo"
        assert data["lead_image_alt"] and data["lead_image_caption"]
        path = STATIC / data["lead_image_url"].removeprefix("/static/")
        assert path.is_file() and path.suffix == ".svg"
        assert 1_000 <= path.stat().st_size <= 6_500
        assert 'viewBox="0 0 1200 675"' in path.read_text()
    tag_use: dict[str, int] = {}
    for _, data in demo_content.ARTICLES:
        for tag in data["tags"]:
            tag_use[tag] = tag_use.get(tag, 0) + 1
    for _, data in demo_content.ARTICLES:
        assert any(tag_use[tag] > 1 for tag in data["tags"]), data["slug"]
    assert "do not buy coverage" in demo_content.ROUND["introduction"]
    assert len(demo_content.TOPICS) == 6
    assert all(title and description for title, description in demo_content.TOPICS)


def test_demo_tags_become_shared_tag_pages(app, client, db):
    assert run(app, "seed-demo").exit_code == 0
    fresh(db)
    regions = db.scalar(select(Tag).where(Tag.slug == "regions"))
    assert regions is not None
    html = client.get("/tags/regions").get_data(as_text=True)
    tagged = [d for _, d in demo_content.ARTICLES if "Regions" in d["tags"]]
    assert len(tagged) >= 3
    for data in tagged:
        assert f'href="/articles/{data["slug"]}"' in html
    # the body text is what the reader sees: no Markdown syntax left over
    article = db.scalar(select(Article).where(Article.slug == tagged[0]["slug"]))
    assert article is not None
    assert "## " not in plain_text(article.body_html)
