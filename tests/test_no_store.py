"""`Cache-Control: private, no-store` (docs/security.md, caching of private pages): on every
response for a signed-in session, and on every account, pledge and staff page whether or not
signed in; while the anonymous article, the feed and the theme stay cacheable, and the
article cache never holds or serves a signed-in page.

Built from `app.url_map` like tests/test_access_matrix.py (its world and fillers): a route
added tomorrow is checked the day it appears."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from patrons.articles.fastpath import CACHE_PREFIX
from patrons.core.extensions import cache
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_article, make_user
from tests.helpers import fresh_db  # noqa: F401  (the `db` fixture)
from tests.test_access_matrix import (
    SIGNED_IN,
    World,
    client_as,
    methods,
    routes,
    url_for_rule,
)
from tests.test_access_matrix import world as world  # noqa: PLC0414  (the fixture, reused)

# the blueprints whose every page is private, signed in or not (patrons/core/headers.py)
PRIVATE = ("accounts", "pledges", "staff", "stripe")
# anonymous pages every reader gets alike, which shared caches may keep
CACHEABLE = {"articles.article", "articles.feed", "articles.theme"}


def directives(response: TestResponse) -> set[str]:
    value = response.headers.get("Cache-Control", "")
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def is_no_store(response: TestResponse) -> bool:
    return directives(response) == {"private", "no-store"}


def is_private_page(rule: Rule) -> bool:
    return rule.endpoint.split(".")[0] in PRIVATE


def get_rules(app: Flask) -> list[Rule]:
    return [r for r in routes(app) if "GET" in methods(r)]


@pytest.mark.parametrize("role", SIGNED_IN)
def test_every_get_for_a_signed_in_session_is_no_store(app: Flask, world: World, role: str) -> None:
    client = client_as(app, role, world)
    wrong = []
    for rule in get_rules(app):
        url = url_for_rule(app, rule, world)
        response = client.get(url)
        if not is_no_store(response):
            wrong.append(f"{url} ({rule.endpoint}) {response.status_code}: {directives(response)}")
    assert wrong == []


def test_every_post_for_a_signed_in_session_is_no_store(app: Flask, world: World) -> None:
    """Each POST route with a valid token and no fields, as a member (a fresh client each:
    sign-out must not spill into the next route)."""
    wrong = []
    for rule in routes(app):
        if "POST" not in methods(rule) or rule.endpoint == "stripe.webhook":
            continue
        client = client_as(app, "member", world)
        url = url_for_rule(app, rule, world)
        response = client.post(url, data={"csrf_token": csrf_token(client)})
        if not is_no_store(response):
            wrong.append(f"{url} ({rule.endpoint}) {response.status_code}: {directives(response)}")
    assert wrong == []


def test_account_pledge_and_staff_pages_are_no_store_signed_out(app: Flask, world: World) -> None:
    """Signed out too (sign-in and sign-up pages, /support, and the redirects to /login)."""
    wrong, checked = [], 0
    for rule in get_rules(app):
        if not is_private_page(rule):
            continue
        url = url_for_rule(app, rule, world)
        response = app.test_client().get(url)
        checked += 1
        if not is_no_store(response):
            wrong.append(f"{url} ({rule.endpoint}) {response.status_code}: {directives(response)}")
    assert checked >= 20
    assert wrong == []


def test_public_pages_stay_cacheable_signed_out(app: Flask, world: World) -> None:
    """The anonymous article (rendered, then from the fast path), the feed and the theme are
    the same for every reader: public, no `no-store`."""
    found = {}
    for rule in get_rules(app):
        if rule.endpoint in CACHEABLE:
            url = url_for_rule(app, rule, world)
            found[rule.endpoint] = [app.test_client().get(url) for _ in range(2)]
    assert set(found) == CACHEABLE
    for endpoint, responses in found.items():
        for response in responses:
            assert response.status_code == 200, endpoint
            assert "public" in directives(response), endpoint
            assert "no-store" not in directives(response), endpoint


def test_other_public_pages_signed_out_are_not_marked_private(app: Flask, world: World) -> None:
    """no-store is for sessions and private pages: signed-out public pages keep what their
    view says (a shared cache in front of the site still helps them)."""
    for rule in get_rules(app):
        if is_private_page(rule) or rule.endpoint in ("articles.csrf_token", "articles.beacon"):
            continue
        response = app.test_client().get(url_for_rule(app, rule, world))
        if response.status_code == 200:
            assert not is_no_store(response), rule.endpoint


def test_static_files_stay_cacheable_when_signed_in(client: FlaskClient, db: Session) -> None:
    """Static files hold nothing of the reader's: their caching is kept for everyone."""
    login(client, make_user(db).email, PASSWORD)
    response = client.get("/static/js/article.js", buffered=True)
    assert response.status_code == 200
    assert "no-store" not in directives(response)


def test_a_signed_in_article_is_never_stored_in_or_served_from_the_page_cache(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    make_article(db, slug="cached")
    reader = make_user(db, display_name="Olena Private")
    login(client, reader.email, PASSWORD)
    personal = client.get("/articles/cached")
    assert is_no_store(personal) and "Sign out" in personal.get_data(as_text=True)
    with app.app_context():
        assert cache.get(CACHE_PREFIX + "cached") is None  # the signed-in render was not kept
    anonymous = app.test_client().get("/articles/cached")  # rendered for nobody, and cached
    assert "public" in directives(anonymous)
    assert "Sign out" not in anonymous.get_data(as_text=True)
    again = client.get("/articles/cached")  # the cached copy is not the signed-in answer
    assert is_no_store(again) and "Sign out" in again.get_data(as_text=True)
    assert again.get_data() != anonymous.get_data()


def test_the_sign_in_response_itself_is_no_store(client: FlaskClient, db: Session) -> None:
    reader = make_user(db)
    response = client.post(
        "/login",
        data={"email": reader.email, "password": PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302
    assert is_no_store(response)
