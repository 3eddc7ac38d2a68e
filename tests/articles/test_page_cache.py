"""The page cache beyond the anonymous article (issue 15): the signed-in article page from
cached shared parts, its SQL statements, its cookies, ARTICLE_CACHE_SECONDS=0, and the cached
front page with its invalidation. No timings: the mechanics that make the pages fast."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask, template_rendered
from flask.signals import before_render_template
from flask.testing import FlaskClient
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from patrons import create_app
from patrons.articles.fastpath import CACHE_PREFIX, FRONT_PAGE_PREFIX
from patrons.core import clock
from patrons.core.extensions import cache
from patrons.models import Payment, Pledge, Topic, TopicArticle
from tests.conftest import csrf_token, empty_tables, login, make_settings
from tests.factories import PASSWORD, make_article, make_patron, make_round, make_staff, make_user
from tests.staff.test_staff_articles import action, article_form


class Statements:
    """The SQL statements the app's engine runs while counting, and those run while a template
    was rendering (Flask's before_render_template .. template_rendered)."""

    def __init__(self) -> None:
        self.all: list[str] = []
        self.in_templates: list[str] = []
        self.rendering = 0


@contextmanager
def counting(app: Flask) -> Iterator[Statements]:
    seen = Statements()
    engine = app.extensions["db.engine"]

    def on_statement(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.all.append(statement)
        if seen.rendering:
            seen.in_templates.append(statement)

    def started(sender, template, context, **extra):  # type: ignore[no-untyped-def]
        seen.rendering += 1

    def finished(sender, template, context, **extra):  # type: ignore[no-untyped-def]
        seen.rendering -= 1

    event.listen(engine, "before_cursor_execute", on_statement)
    before_render_template.connect(started, app)
    template_rendered.connect(finished, app)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        before_render_template.disconnect(started, app)
        template_rendered.disconnect(finished, app)


def chosen_article(db: Session) -> tuple[str, str]:
    """A published article that patrons chose in a round (the page says so); slug, round."""
    article = make_article(db, title="The river report", tags=("Water",))
    make_article(db, title="Another water story", tags=("Water",))
    found = make_round(db, title="Spring round", topics=("Rivers",))
    topic = found.topics[0]
    topic.status = "covered"
    db.add(TopicArticle(topic_id=topic.id, article_id=article.id))
    db.commit()
    return article.slug, found.title


def test_no_query_runs_from_a_template_of_the_signed_in_article(app, client, db):
    slug, round_title = chosen_article(db)
    patron = make_patron(db)
    login(client, patron.email, PASSWORD)
    with counting(app) as seen:  # a cold cache: everything is read, all of it by the view
        html = client.get(f"/articles/{slug}").get_data(as_text=True)
    assert "Patrons chose this story in the round" in html and round_title in html
    assert "Another water story" in html  # related
    assert seen.all and seen.in_templates == []


def test_a_warm_signed_in_article_runs_two_statements(app, client, db):
    """The session with its user (one joined query) and whether the reader is a patron: the
    article, its related posts and what patrons chose come from the cached shared parts."""
    slug, _ = chosen_article(db)
    patron = make_patron(db)
    login(client, patron.email, PASSWORD)
    client.get(f"/articles/{slug}")  # warms the patrons' parts
    with counting(app) as seen:
        response = client.get(f"/articles/{slug}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Patrons chose this story" in html
    assert len(seen.all) == 2, seen.all
    assert "user_sessions" in seen.all[0] and "users" in seen.all[0]
    assert "pledges" in seen.all[1]
    assert seen.in_templates == []


def test_patrons_and_other_readers_each_get_their_own_cached_parts(app, db):
    article = make_article(db, title="Shared parts")
    patron, member = make_patron(db), make_user(db)
    patron_client, member_client, anonymous = (app.test_client() for _ in range(3))
    login(patron_client, patron.email, PASSWORD)
    login(member_client, member.email, PASSWORD)
    for _ in range(2):  # cold, then from the cache
        for_patron = patron_client.get(f"/articles/{article.slug}").get_data(as_text=True)
        for_member = member_client.get(f"/articles/{article.slug}").get_data(as_text=True)
        for_anonymous = anonymous.get(f"/articles/{article.slug}").get_data(as_text=True)
        assert "Thank you for being a patron" in for_patron
        for page in (for_member, for_anonymous):
            assert "Thank you for being a patron" not in page
            assert 'id="support-banner"' in page and 'id="adblock-notice"' in page
            assert 'id="ad-bait"' in page and "js/ads.js" in page
        assert 'id="support-banner"' not in for_patron and 'id="adblock-notice"' not in for_patron
        assert 'id="ad-bait"' not in for_patron and "js/ads.js" not in for_patron
        # the reader's own bits around the shared parts: the signed-in header, per request
        assert "Sign out" in for_patron and "Sign out" in for_member
        assert "Sign out" not in for_anonymous and "Sign in" in for_anonymous
        assert "Shared parts" in for_patron and "Shared parts" in for_member


def test_a_refund_and_a_new_pledge_show_on_the_next_request(app, client, db):
    article = make_article(db)
    reader = make_patron(db)
    login(client, reader.email, PASSWORD)
    assert "Thank you for being a patron" in client.get(f"/articles/{article.slug}").text

    db.execute(update(Payment).values(status="refunded"))  # what a charge.refunded applies
    db.commit()
    html = client.get(f"/articles/{article.slug}").text
    assert "Thank you for being a patron" not in html and 'id="support-banner"' in html

    pledge = db.query(Pledge).one()
    db.add(Payment(pledge_id=pledge.id, stripe_invoice_id="in_again", amount=500,
                   currency="EUR", status="paid", created_at=clock.now(),
                   paid_at=clock.now()))  # fmt: skip
    db.commit()
    assert "Thank you for being a patron" in client.get(f"/articles/{article.slug}").text


def test_a_signed_in_reader_gets_no_new_session_cookie_when_nothing_changed(client, db):
    article = make_article(db)
    reader = make_user(db)
    response = client.post(
        "/login",
        data={"email": reader.email, "password": PASSWORD, "remember": "y",
              "csrf_token": csrf_token(client)},
    )  # fmt: skip
    assert response.status_code == 302
    assert "Expires=" in response.headers["Set-Cookie"]  # "keep me signed in": a lasting cookie
    client.get(f"/articles/{article.slug}")  # may store the CSRF token of the sign-out form
    second = client.get(f"/articles/{article.slug}")
    assert second.status_code == 200 and "Sign out" in second.text
    assert "Set-Cookie" not in second.headers
    assert "Set-Cookie" not in client.get("/").headers


def test_a_revoked_session_still_ends_at_once_without_a_refreshed_cookie(client, db):
    article = make_article(db)
    reader = make_user(db)
    login(client, reader.email, PASSWORD)
    assert "Sign out" in client.get(f"/articles/{article.slug}").text
    from patrons.models import UserSession

    db.execute(update(UserSession).values(revoked_at=clock.now()))  # signed out elsewhere
    db.commit()
    html = client.get(f"/articles/{article.slug}").text
    assert "Sign out" not in html and "Sign in" in html


# --- ARTICLE_CACHE_SECONDS=0 --------------------------------------------------------------


@pytest.fixture
def uncached_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    application = create_app(
        make_settings(database_url, tmp_path / "instance", article_cache_seconds=0)
    )
    yield application
    empty_tables(application)
    application.extensions["db.engine"].dispose()


def _retitle(db: Session, article_id: int, title: str) -> None:
    """Change an article behind the app's back: no site.forget_cached, as a cache would need."""
    from patrons.models import Article

    db.execute(update(Article).where(Article.id == article_id).values(title=title))
    db.commit()


def test_article_cache_seconds_zero_turns_the_page_cache_off(uncached_app, db):
    article = make_article(db, title="First title")
    patron = make_patron(db)
    anonymous, signed_in = uncached_app.test_client(), uncached_app.test_client()
    login(signed_in, patron.email, PASSWORD)
    first = anonymous.get(f"/articles/{article.slug}")
    assert "First title" in first.text and "First title" in signed_in.get("/").text
    assert first.headers["Cache-Control"] == "public, no-cache"
    assert "First title" in signed_in.get(f"/articles/{article.slug}").text
    assert "First title" in anonymous.get("/").text
    with uncached_app.app_context():
        assert cache.get(CACHE_PREFIX + article.slug) is None
        assert cache.get(FRONT_PAGE_PREFIX + "1") is None
    fast_path = uncached_app.extensions["article_fast_path"]
    assert fast_path._cached_page({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}) is None

    _retitle(db, article.id, "Second title")
    for client in (anonymous, signed_in):
        assert "Second title" in client.get(f"/articles/{article.slug}").text
        assert "Second title" in client.get("/").text


def test_by_default_the_pages_are_cached(app, client, db):
    """The contrast to the test above: the same change, not yet seen by the cached pages."""
    article = make_article(db, title="First title")
    patron_client = app.test_client()
    login(patron_client, make_patron(db).email, PASSWORD)
    for c in (client, patron_client):
        assert "First title" in c.get(f"/articles/{article.slug}").text
    assert "First title" in client.get("/").text
    _retitle(db, article.id, "Second title")
    for c in (client, patron_client):
        assert "First title" in c.get(f"/articles/{article.slug}").text
    assert "First title" in client.get("/").text


# --- the front page -----------------------------------------------------------------------


@pytest.fixture
def staff_client(app: Flask, db: Session) -> FlaskClient:
    staff = app.test_client()
    login(staff, make_staff(db).email, PASSWORD)
    return staff


def test_the_front_page_is_cached_per_page_number_and_answered_before_flask(app, client, db):
    for n in range(11):  # two pages
        make_article(db, title=f"Story {n:02d}", days_ago=20 - n)
    first, second = client.get("/"), client.get("/?page=2")
    assert "Story 10" in first.text and "Story 00" in second.text
    assert "Story 00" not in first.text
    assert "Set-Cookie" not in first.headers
    # the one copy is the app's, dropped on every change: nginx and browsers ask each time
    assert first.headers["Cache-Control"] == "public, no-cache"
    with app.app_context():
        assert cache.get(FRONT_PAGE_PREFIX + "1") is not None
        assert cache.get(FRONT_PAGE_PREFIX + "2") is not None
    fast_path = app.extensions["article_fast_path"]
    assert fast_path._cached_page({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}) is not None
    with counting(app) as seen:
        again, again_second = client.get("/"), client.get("/?page=2")
    assert seen.all == []
    assert again.data == first.data and again_second.data == second.data
    assert client.get("/", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


def test_a_signed_in_reader_gets_their_own_front_page(app, client, db):
    make_article(db, title="Front story")
    assert "Sign in" in app.test_client().get("/").text  # the anonymous copy, cached
    login(client, make_user(db).email, PASSWORD)
    response = client.get("/")
    assert "Front story" in response.text and "Sign out" in response.text
    assert "no-store" in response.headers["Cache-Control"]


def test_a_message_waiting_in_the_session_is_shown_on_the_front_page(app, client, db):
    """Signing out lands on the front page with "You are signed out.": the shared cached copy
    has no message, so a reader with one gets the page rendered for them (Chromium found it).
    An article stays the shared page and leaves the message for the next one
    (tests/test_security_headers.py)."""
    make_article(db, title="Front story")
    path = "/"
    assert "signed out" not in app.test_client().get(path).text  # the anonymous copy, cached
    login(client, make_user(db).email, PASSWORD)
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    shown = client.get(path)
    assert "You are signed out." in shown.text and "Front story" in shown.text
    assert "Sign in" in shown.text and "no-store" in shown.headers["Cache-Control"]
    again = client.get(path)  # shown once; the shared copy never held it
    assert "You are signed out." not in again.text
    assert "You are signed out." not in app.test_client().get(path).text


def test_publish_unpublish_and_edit_reach_the_cached_front_pages(app, db, staff_client):
    for n in range(11):  # a full first page and one more: page 2 holds the oldest
        make_article(db, title=f"Older {n:02d}", days_ago=30 - n)
    public = app.test_client()
    draft = make_article(db, title="Brand new story", published=False, days_ago=0.1)
    first, second = public.get("/").text, public.get("/?page=2").text  # both now cached
    assert "Older 01" in first and "Older 00" in second and "Older 01" not in second

    staff_client.post(f"/staff/articles/{draft.id}/publish", data=action(staff_client))
    first, second = public.get("/").text, public.get("/?page=2").text
    assert "Brand new story" in first and "Older 01" not in first
    assert "Older 01" in second  # pushed to the second page

    form = article_form(staff_client, title="Renamed story", slug=draft.slug)
    assert staff_client.post(f"/staff/articles/{draft.id}/edit", data=form).status_code == 302
    first = public.get("/").text
    assert "Renamed story" in first and "Brand new story" not in first

    staff_client.post(f"/staff/articles/{draft.id}/unpublish", data=action(staff_client))
    first, second = public.get("/").text, public.get("/?page=2").text
    assert "Renamed story" not in first and "Older 01" in first
    assert "Older 01" not in second


def test_an_edit_reaches_the_signed_in_readers_cached_parts(app, db, staff_client):
    article = make_article(db, title="Before the edit")
    reader = app.test_client()
    login(reader, make_patron(db).email, PASSWORD)
    assert "Before the edit" in reader.get(f"/articles/{article.slug}").text
    form = article_form(staff_client, title="After the edit", slug=article.slug)
    assert staff_client.post(f"/staff/articles/{article.id}/edit", data=form).status_code == 302
    assert "After the edit" in reader.get(f"/articles/{article.slug}").text
    staff_client.post(f"/staff/articles/{article.id}/unpublish", data=action(staff_client))
    assert reader.get(f"/articles/{article.slug}").status_code == 404


def test_a_topic_linked_by_staff_reaches_the_cached_article(app, client, db):
    """What patrons chose is part of the shared parts; staff linking a topic drops them."""
    from patrons import site

    article = make_article(db, title="Linked later")
    login(client, make_patron(db).email, PASSWORD)
    assert "Patrons chose this story" not in client.get(f"/articles/{article.slug}").text
    found = make_round(db, title="Autumn round", topics=("Roads",))
    topic: Topic = found.topics[0]
    topic.status = "chosen"
    db.add(TopicArticle(topic_id=topic.id, article_id=article.id))
    db.commit()
    with app.app_context():
        site.forget_cached()  # what staff/voting.py does after linking an article
    html = client.get(f"/articles/{article.slug}").text
    assert "Patrons chose this story" in html and "Autumn round" in html


# --- an expiring page: one request renders, the others answer with the stale copy --------


def test_an_expired_page_is_rendered_by_one_request_while_the_others_get_the_stale_copy(
    app, client, db
):
    from patrons.articles import views
    from patrons.articles.fastpath import Kept

    article = make_article(db, title="Fresh title")
    key = CACHE_PREFIX + article.slug
    client.get(f"/articles/{article.slug}")  # cached
    with app.app_context():
        kept = cache.get(key)
        stale_page = dataclasses.replace(kept.value, body=b"the stale copy")
        cache.set(key, Kept(stale_page, fresh_until=time.time() - 1), timeout=60)
        assert cache.add(key + views.REFRESHING, 1)  # another request is rendering
    fast_path = app.extensions["article_fast_path"]
    assert (
        fast_path._cached_page({"REQUEST_METHOD": "GET", "PATH_INFO": f"/articles/{article.slug}"})
        is None
    )  # stale: Flask answers
    with counting(app) as seen:
        assert client.get(f"/articles/{article.slug}").data == b"the stale copy"
    assert seen.all == []  # nothing rendered, nothing read

    with app.app_context():
        cache.delete(key + views.REFRESHING)  # that request is gone: the next one renders
    assert "Fresh title" in client.get(f"/articles/{article.slug}").text
    with app.app_context():
        assert cache.get(key).is_fresh() and cache.get(key + views.REFRESHING) is None
    assert "Fresh title" in client.get(f"/articles/{article.slug}").text


def test_an_expired_signed_in_part_is_refreshed_once(app, client, db):
    from patrons.articles import views
    from patrons.articles.fastpath import Kept

    article = make_article(db, title="Parts title")
    login(client, make_user(db).email, PASSWORD)
    client.get(f"/articles/{article.slug}")
    key = f"{views.PARTS_PREFIX}reader:{article.slug}"
    with app.app_context():
        parts = cache.get(key).value
        stale = dataclasses.replace(parts, main_html="<p>the stale parts</p>")
        cache.set(key, Kept(stale, fresh_until=time.time() - 1), timeout=60)
        assert cache.add(key + views.REFRESHING, 1)
    assert "the stale parts" in client.get(f"/articles/{article.slug}").text
    with app.app_context():
        cache.delete(key + views.REFRESHING)
    html = client.get(f"/articles/{article.slug}").text
    assert "the stale parts" not in html and "Parts title" in html
