"""Error pages in the site's look with nothing leaked, /healthz and /readyz, garbage input
never a 500 (tests/test_readiness.py: /readyz's body, and the database going away)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from patrons.models import CorrectionSuggestion
from tests.conftest import csrf_token, login, make_settings
from tests.factories import PASSWORD, make_article, make_staff
from tests.helpers import ON_POSTGRES, extra_app, fresh_db  # noqa: F401  (the `db` fixture)

LEAKS = ("Traceback", "RuntimeError", "kaboom", "secret_module", "/work/", ".py", 'File "')
SITE_LOOK = ('class="site-header"', 'class="site-footer"', "The Steppe Courier", "/static/css/")


def assert_site_look(html: str) -> None:
    for part in SITE_LOOK:
        assert part in html, part


def assert_no_leak(html: str) -> None:
    for part in LEAKS:
        assert part not in html, part


def test_404_is_in_the_sites_look(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert_site_look(html)
    assert "could not find that page" in html
    assert 'href="/"' in html  # a way back to the latest articles
    assert response.headers["Cache-Control"] == "no-store"


def test_405_names_the_allowed_methods(client):
    response = client.post("/")
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
    assert "POST" not in response.headers["Allow"]
    assert_site_look(response.get_data(as_text=True))


@pytest.mark.parametrize("method", ["get", "post"])
def test_500_is_friendly_and_leaks_nothing(settings, method, caplog):
    with extra_app(settings) as app:  # a fresh app: routes can be added before its first request

        @app.route("/__boom", methods=["GET", "POST"])
        def boom():  # type: ignore[no-untyped-def]
            raise RuntimeError("kaboom from /work/main/patrons/secret_module.py")

        client = app.test_client()
        data = {"csrf_token": csrf_token(client)} if method == "post" else None
        with caplog.at_level(logging.ERROR):
            response = getattr(client, method)("/__boom", data=data)
        # the app keeps answering afterwards
        assert client.get("/healthz").status_code == 200
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "Something went wrong on our side" in html
    assert "<title>Internal Server Error" in html and "property object" not in html
    assert_site_look(html)
    assert_no_leak(html)
    assert response.headers["Cache-Control"] == "no-store"
    # the detail goes to the log instead
    assert any(r.exc_info and "kaboom" in str(r.exc_info[1]) for r in caplog.records)


def test_500_inside_a_database_transaction_leaves_the_next_request_working(settings):
    with extra_app(settings) as app:

        @app.get("/__half-write")
        def half_write():  # type: ignore[no-untyped-def]
            from patrons.articles import corrections
            from patrons.core.db import session

            corrections.suggest_correction(session, None, "half", "", "", None)
            session.flush()
            raise RuntimeError("after the flush")

        client = app.test_client()
        assert client.get("/__half-write").status_code == 500
        assert client.get("/healthz").status_code == 200
        with app.app_context():
            from patrons.core.db import session

            assert session.scalar(select(func.count()).select_from(CorrectionSuggestion)) == 0


def test_healthz_is_200_with_the_database_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_readyz_is_200_with_the_database_up(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["database"] == "up"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


UNREACHABLE = {
    "postgresql-closed-port": "postgresql+psycopg://postgres@127.0.0.1:1/x",
    "sqlite-unopenable-path": "sqlite:///{tmp}/no/such/dir/patrons.db",
}


@pytest.fixture(params=list(UNREACHABLE))
def app_without_database(request, tmp_path):  # type: ignore[no-untyped-def]
    url = UNREACHABLE[request.param].format(tmp=tmp_path)
    with extra_app(make_settings(url, tmp_path / "instance"), empty=False) as app:
        yield app


def test_readyz_is_503_when_the_database_is_unreachable(app_without_database):
    response = app_without_database.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["database"] == "down"
    assert response.headers["Cache-Control"] == "no-store"
    assert_no_leak(response.get_data(as_text=True))


def test_healthz_is_200_while_the_database_is_unreachable(app_without_database):
    """Liveness: the process answers; restarting it would not bring the database back."""
    response = app_without_database.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_404_page_renders_while_the_database_is_down(app_without_database):
    response = app_without_database.test_client().get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert_site_look(html)
    assert "could not find that page" in html


def test_pages_needing_the_database_fail_friendly_while_it_is_down(app_without_database):
    client = app_without_database.test_client()
    for path in ("/", "/articles/some-article", "/feed.atom"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.headers["Retry-After"] == "30"
        html = response.get_data(as_text=True)
        assert_no_leak(html)
        assert (
            "psycopg" not in html
            and "sqlite" not in html.lower()
            and "OperationalError" not in html
        )


# --- garbage in the address ------------------------------------------------------------------

# Regression test, fixed: a NUL byte in a slug reaches PostgreSQL, whose driver refuses it
# (DataError: text fields cannot contain NUL), so a public page answers 500

PUBLIC_GARBAGE = [
    "/?page=abc",
    "/?page=-1",
    "/?page=0",
    "/?page=99999999999",
    "/?page=1e3",
    "/?page=%00",
    "/?page=" + "9" * 400,
    "/?page=1&page=abc",
    "/?page[]=1",
    "/?page=%F0%9F%92%A5",
    "/tags/news?page=abc",
    "/tags/news?page=-1",
    "/tags/news?page=99999999999",
    "/tags/%00",
    "/tags/" + "x" * 2000,
    "/articles/%00",
    "/articles/a%00b/correction",
    "/articles/" + "a" * 5000,
    "/articles/garbage-article?page=abc&x=%3Cscript%3E",
    "/feed.atom?page=abc",
    "/articles/garbage-article/correction?selection=" + "x" * 5000,
    "/articles/garbage-article/correction?selection=%00%01%FF",
    "/contact?sent=%00",
    "/csrf-token?x=%00",
    "/healthz?x=" + "y" * 3000,
    "/e/abc/view",
    "/e/-1/view",
    "/e/1/%00",
]


@pytest.mark.parametrize("path", PUBLIC_GARBAGE)
def test_garbage_addresses_never_cause_a_500(client, db, path):
    make_article(db, slug="garbage-article", tags=("News",))
    response = client.get(path)
    assert response.status_code < 500, path
    assert_no_leak(response.get_data(as_text=True))


def test_out_of_range_page_numbers_are_404_not_empty_pages(client, db):
    make_article(db, tags=("News",))
    assert client.get("/?page=2").status_code == 404
    assert client.get("/?page=-1").status_code == 404
    assert client.get("/?page=99999999999").status_code == 404
    assert client.get("/tags/news?page=99999999999").status_code == 404
    assert client.get("/?page=abc").status_code == 200  # not a number: the first page


STAFF_GARBAGE = [
    "/staff/corrections?article=abc",
    "/staff/corrections?article=-1",
    "/staff/corrections?article=0",
    "/staff/corrections?status=%00",
    "/staff/corrections?status=bogus",
    "/staff/articles?status=%3Cx%3E",
    "/staff/articles/0/edit",
    "/staff/articles/abc/edit",
    # found as a bug (ids past the INTEGER range reached the database: a 500); fixed by
    # urls.db_id and urls.DatabaseIdConverter
    "/staff/corrections?article=2147483648",
    "/staff/corrections?article=99999999999",
    "/staff/corrections?article=99999999999999999999",
    "/staff/articles/99999999999/edit",
    "/staff/articles/99999999999999999999/edit",
]


@pytest.mark.parametrize("path", STAFF_GARBAGE)
def test_garbage_on_staff_pages_never_causes_a_500(client, db, path):
    staff = make_staff(db)
    login(client, staff.email, PASSWORD)
    response = client.get(path)
    assert response.status_code < 500, path
    assert_no_leak(response.get_data(as_text=True))


# --- bodies that are too large ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/contact", "/articles/big/correction", "/login"])
def test_oversize_post_is_413_and_stores_nothing(client, db, path):
    make_article(db, slug="big")
    token = csrf_token(client)
    response = client.post(path, data={"selection": "x" * (1024 * 1024 + 10), "csrf_token": token})
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "too large" in html
    assert_site_look(html)
    assert db.scalar(select(func.count()).select_from(CorrectionSuggestion)) == 0


def test_oversize_raw_body_is_413(client):
    response = client.post(
        "/contact", data=b"x" * (1024 * 1024 + 1), content_type="application/octet-stream"
    )
    assert response.status_code == 413


def test_form_just_under_the_limit_is_not_413(client, db):
    make_article(db, slug="big")
    response = client.post(
        "/articles/big/correction",
        data={"selection": "x" * 500_000, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 400  # refused by the form (too long), not by the size cap
    assert "Quote at most 1000 characters." in response.get_data(as_text=True)
