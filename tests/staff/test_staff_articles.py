"""Staff pages: writing, editing and publishing articles, the site texts, and who may use them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.routing.converters import AnyConverter, IntegerConverter

from patrons import site
from patrons.models import Article, CorrectionSuggestion, SiteSetting, Tag
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_article, make_staff, make_user

SCRIPT_BODY = (
    '<p>Kept paragraph.</p><script>alert("x")</script>'
    '<p><img src="https://img.example.org/a.png" onerror="alert(1)" alt="a"></p>'
    '<p><a href="javascript:alert(2)" onclick="alert(3)">a link</a></p>'
)


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """tests.conftest.db without the app context it holds open for the whole test.

    While that context is pushed, every request of the test client reuses it, and with it one
    `g` for all requests: the CSRF token cached in `g` before signing in outlives the session
    that sign-in clears, so every form posted after signing in fails its CSRF check, and all
    requests share one database session. Here each request gets its own context, as in a
    server."""
    session = app.extensions["db.sessionmaker"]()
    yield session
    session.close()


def fresh(db: Session) -> Session:
    """End the test session's transaction and expire what it holds, to see the app's commits."""
    db.rollback()
    db.expire_all()
    return db


def count(db: Session, model: type) -> int:
    return fresh(db).scalar(select(func.count()).select_from(model)) or 0


def article_form(client: FlaskClient, **overrides: str) -> dict[str, str]:
    data = {
        "title": "Bridges of the Dnipro",
        "slug": "",
        "summary": "Who rebuilds them.",
        "body_format": "markdown",
        "body_source": "## Repairs\n\nThe *first* bridge reopened.\n\n- one\n- two",
        "author_name": "A. Reporter",
        "editor_name": "An Editor",
        "tags": "Regions, Infrastructure",
        "lead_image_url": "",
        "lead_image_alt": "",
        "lead_image_caption": "",
        "lead_image_credit": "",
        "canonical_url": "",
        "published_at": "",
        "csrf_token": csrf_token(client),
    }
    data.update(overrides)
    return data


def action(client: FlaskClient) -> dict[str, str]:
    return {"csrf_token": csrf_token(client)}


class FormReader(HTMLParser):
    """The fields of the page's own form (the first <form method="post"> without an action;
    the header's sign-out form has one), as a browser would send them unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._done = False
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if self._done:
            return
        if tag == "form" and a.get("method") == "post" and "action" not in a:
            self._in_form = True
        elif self._in_form and tag == "input" and "name" in a:
            if a.get("type") in ("radio", "checkbox") and "checked" not in a:
                return
            self.fields[a["name"]] = a.get("value", "")
        elif self._in_form and tag == "textarea":
            self._textarea = a["name"]
            self.fields[a["name"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "form" and self._in_form:
            self._in_form, self._done = False, True

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data


def form_fields(html: str) -> dict[str, str]:
    reader = FormReader()
    reader.feed(html)
    # a browser drops the one newline that follows <textarea>
    return {k: v.removeprefix("\n") if k != "csrf_token" else v for k, v in reader.fields.items()}


@pytest.fixture
def staff_client(client: FlaskClient, db: Session) -> FlaskClient:
    staff = make_staff(db)
    login(client, staff.email, PASSWORD)
    return client


def create_article(client: FlaskClient, **overrides: str):  # type: ignore[no-untyped-def]
    return client.post("/staff/articles/new", data=article_form(client, **overrides))


# --- writing articles --------------------------------------------------------------------------


def test_staff_create_an_article_in_markdown(staff_client, db):
    response = create_article(staff_client)

    assert response.status_code == 302
    article = fresh(db).scalars(select(Article)).one()
    assert response.headers["Location"] == f"/staff/articles/{article.id}/edit"
    assert (article.slug, article.status, article.body_format) == (
        "bridges-of-the-dnipro", "draft", "markdown")  # fmt: skip
    assert "<h2>Repairs</h2>" in article.body_html
    assert "<em>first</em>" in article.body_html and "<li>two</li>" in article.body_html
    assert article.body_source.startswith("## Repairs")
    assert (article.author_name, article.editor_name) == ("A. Reporter", "An Editor")
    assert article.published_at is None
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Saved “Bridges of the Dnipro”." in page


def test_staff_create_an_article_in_html(staff_client, db):
    response = create_article(
        staff_client,
        title="An HTML piece",
        body_format="html",
        body_source="<h2>Heading</h2><p>Some <strong>bold</strong> text.</p>",
    )

    assert response.status_code == 302
    article = fresh(db).scalars(select(Article)).one()
    assert article.body_format == "html"
    assert article.body_html == "<h2>Heading</h2><p>Some <strong>bold</strong> text.</p>"


@pytest.mark.parametrize("body_format", ["html", "markdown"])
def test_the_body_is_sanitised_when_saved(staff_client, db, body_format):
    response = create_article(staff_client, body_format=body_format, body_source=SCRIPT_BODY)

    assert response.status_code == 302
    body = fresh(db).scalars(select(Article)).one().body_html
    assert "Kept paragraph." in body and "a link" in body
    assert "<script" not in body and "alert(" not in body
    assert "onerror" not in body and "onclick" not in body and "javascript:" not in body
    assert 'src="https://img.example.org/a.png"' in body


def test_tags_are_created_once_and_reused(staff_client, db):
    create_article(staff_client, title="First", tags="Regions, Energy ,  regions,")
    create_article(staff_client, title="Second", tags="REGIONS, Culture")

    tags = {t.slug: t.name for t in fresh(db).scalars(select(Tag))}
    assert tags == {"regions": "Regions", "energy": "Energy", "culture": "Culture"}
    first = db.scalar(select(Article).where(Article.slug == "first"))
    second = db.scalar(select(Article).where(Article.slug == "second"))
    assert first is not None and second is not None
    assert [t.slug for t in first.tags] == ["energy", "regions"]
    assert [t.slug for t in second.tags] == ["culture", "regions"]


def test_the_edit_form_shows_the_article_and_saving_changes_it(staff_client, db):
    article = make_article(db, title="Old title", tags=("Regions", "Energy"), published=False)

    form = staff_client.get(f"/staff/articles/{article.id}/edit")
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert 'value="Old title"' in html and 'value="Energy, Regions"' in html

    response = staff_client.post(
        f"/staff/articles/{article.id}/edit",
        data=article_form(staff_client, title="New title", slug=article.slug, tags="Culture",
                          body_source="Changed *body*."),
    )  # fmt: skip

    assert response.status_code == 302
    edited = fresh(db).get(Article, article.id)
    assert edited is not None
    assert (edited.title, edited.slug) == ("New title", article.slug)
    assert edited.body_html == "<p>Changed <em>body</em>.</p>"
    assert [t.name for t in edited.tags] == ["Culture"]
    assert count(db, Article) == 1


def test_editing_an_unknown_article_is_a_404(staff_client):
    assert staff_client.get("/staff/articles/999/edit").status_code == 404


def test_publish_and_unpublish_toggle_what_the_public_sees(staff_client, app, db):
    create_article(staff_client)
    article = fresh(db).scalars(select(Article)).one()
    public = app.test_client()
    assert public.get(f"/articles/{article.slug}").status_code == 404

    response = staff_client.post(f"/staff/articles/{article.id}/publish", data=action(staff_client))
    assert response.status_code == 302
    published = fresh(db).get(Article, article.id)
    assert published is not None and published.status == "published"
    assert published.published_at is not None
    assert public.get(f"/articles/{article.slug}").status_code == 200
    assert article.slug in public.get("/").get_data(as_text=True)

    response = staff_client.post(
        f"/staff/articles/{article.id}/unpublish", data=action(staff_client)
    )
    assert response.status_code == 302
    unpublished = fresh(db).get(Article, article.id)
    assert unpublished is not None and unpublished.status == "draft"
    assert public.get(f"/articles/{article.slug}").status_code == 404  # not served from cache
    assert article.slug not in public.get("/").get_data(as_text=True)


def test_the_anonymous_cached_page_shows_an_edit_right_after_saving(staff_client, app, db):
    article = make_article(db, title="Before the edit")
    public = app.test_client()
    first = public.get(f"/articles/{article.slug}")
    assert "Before the edit" in first.get_data(as_text=True)
    assert public.get(f"/articles/{article.slug}").headers["ETag"] == first.headers["ETag"]

    response = staff_client.post(
        f"/staff/articles/{article.id}/edit",
        data=article_form(staff_client, title="After the edit", slug=article.slug),
    )
    assert response.status_code == 302

    second = public.get(f"/articles/{article.slug}")
    html = second.get_data(as_text=True)
    assert "After the edit" in html and "Before the edit" not in html
    assert second.headers["ETag"] != first.headers["ETag"]
    stale = public.get(
        f"/articles/{article.slug}", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert stale.status_code == 200


def test_a_duplicate_slug_is_refused_with_a_clear_message(staff_client, db):
    existing = make_article(db, title="Bridges of the Dnipro", published=False)

    response = create_article(staff_client, title="Another piece", slug="Bridges of the Dnipro")

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f"Another article already uses the address /articles/{existing.slug}." in html
    assert count(db, Article) == 1
    kept = db.get(Article, existing.id)
    assert kept is not None and kept.title == "Bridges of the Dnipro"


def test_editing_into_another_articles_slug_is_refused_and_changes_nothing(staff_client, db):
    make_article(db, title="Taken")
    other = make_article(db, title="Other", tags=("Regions",))

    response = staff_client.post(
        f"/staff/articles/{other.id}/edit",
        data=article_form(staff_client, title="Other renamed", slug="taken", tags="Culture"),
    )

    assert response.status_code == 400
    assert "already uses the address /articles/taken" in response.get_data(as_text=True)
    kept = fresh(db).get(Article, other.id)
    assert kept is not None
    assert (kept.title, kept.slug, [t.name for t in kept.tags]) == ("Other", "other", ["Regions"])
    assert db.scalar(select(Tag).where(Tag.slug == "culture")) is None


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:image/svg+xml,<svg onload=alert(1)>", "ftp://x.org/a"]
)
def test_a_bad_lead_image_address_is_refused_with_a_message(staff_client, db, url):
    response = create_article(staff_client, lead_image_url=url)

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Invalid URL" in html or "The lead image must be an http(s) address." in html
    assert count(db, Article) == 0


def test_an_http_lead_image_is_kept(staff_client, db):
    response = create_article(
        staff_client,
        lead_image_url="https://img.example.org/lead.jpg",
        lead_image_alt="A bridge",
        lead_image_credit="Photo: Somebody",
    )
    assert response.status_code == 302
    article = fresh(db).scalars(select(Article)).one()
    assert article.lead_image_url == "https://img.example.org/lead.jpg"
    assert (article.lead_image_alt, article.lead_image_credit) == ("A bridge", "Photo: Somebody")


def test_an_article_with_an_on_site_lead_image_can_be_saved_unchanged(staff_client, db):
    article = make_article(
        db, title="Demo piece", lead_image_url="/static/demo/river-ferry.svg",
        lead_image_alt="A ferry", lead_image_credit="Illustration: The Steppe Courier demo",
    )  # fmt: skip
    page = staff_client.get(f"/staff/articles/{article.id}/edit").get_data(as_text=True)
    fields = form_fields(page)
    assert fields["lead_image_url"] == "/static/demo/river-ferry.svg"

    response = staff_client.post(f"/staff/articles/{article.id}/edit", data=fields)

    assert response.status_code == 302, response.get_data(as_text=True)
    kept = fresh(db).get(Article, article.id)
    assert kept is not None and kept.lead_image_url == "/static/demo/river-ferry.svg"


def test_saving_the_edit_form_unchanged_keeps_the_article(staff_client, db):
    article = make_article(
        db, title="Round trip", body="## Head\n\nText with *emphasis*.", tags=("B tag", "A tag"),
        summary="A summary.", author_name="Author", lead_image_url="https://img.example.org/x.png",
    )  # fmt: skip
    before = (article.title, article.slug, article.body_html, article.published_at)
    fields = form_fields(
        staff_client.get(f"/staff/articles/{article.id}/edit").get_data(as_text=True)
    )

    response = staff_client.post(f"/staff/articles/{article.id}/edit", data=fields)

    assert response.status_code == 302, response.get_data(as_text=True)
    kept = fresh(db).get(Article, article.id)
    assert kept is not None
    assert (kept.title, kept.slug, kept.body_html) == before[:3]
    assert kept.published_at is not None and before[3] is not None
    assert kept.published_at.replace(second=0, microsecond=0) == before[3].replace(
        second=0, microsecond=0
    )
    assert [t.name for t in kept.tags] == ["A tag", "B tag"]


def test_an_edit_post_without_the_tags_field_keeps_the_tags(staff_client, db):
    article = make_article(db, title="Tagged", tags=("Regions",))
    data = article_form(staff_client, title="Tagged again", slug=article.slug)
    del data["tags"]

    response = staff_client.post(f"/staff/articles/{article.id}/edit", data=data)

    assert response.status_code == 302
    kept = fresh(db).get(Article, article.id)
    assert kept is not None and kept.title == "Tagged again"
    assert [t.name for t in kept.tags] == ["Regions"]


@pytest.mark.parametrize("title", ["", "   "])
def test_an_article_without_a_title_is_a_400(staff_client, db, title):
    response = create_article(staff_client, title=title)

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "This field is required." in html or "An article needs a title." in html
    assert count(db, Article) == 0


def test_a_future_publication_time_keeps_a_published_article_hidden(staff_client, app, db):
    create_article(staff_client, title="Embargoed", published_at="2999-01-01T09:00")
    article = fresh(db).scalars(select(Article)).one()
    assert article.published_at is not None and article.published_at.year == 2999
    staff_client.post(f"/staff/articles/{article.id}/publish", data=action(staff_client))

    public = app.test_client()
    assert public.get("/articles/embargoed").status_code == 404
    assert "Embargoed" not in public.get("/").get_data(as_text=True)


def test_the_article_list_shows_drafts_and_published_with_filters(staff_client, db):
    make_article(db, title="A published one")
    make_article(db, title="A draft one", published=False)

    every = staff_client.get("/staff/articles").get_data(as_text=True)
    drafts = staff_client.get("/staff/articles?status=draft").get_data(as_text=True)
    published = staff_client.get("/staff/articles?status=published").get_data(as_text=True)

    assert "A published one" in every and "A draft one" in every
    assert "A draft one" in drafts and "A published one" not in drafts
    assert "A published one" in published and "A draft one" not in published


def test_staff_pages_are_never_cached(staff_client):
    response = staff_client.get("/staff/articles")
    assert "no-store" in response.headers["Cache-Control"]
    assert "private" in response.headers["Cache-Control"]


def test_staff_resolve_a_correction_suggestion(staff_client, db):
    article = make_article(db)
    from patrons.articles import corrections

    suggestion = corrections.suggest_correction(db, article, "sentence", "", "typo", None)
    db.commit()

    response = staff_client.post(
        f"/staff/corrections/{suggestion.id}/resolved",
        data={**action(staff_client), "back": "/staff/corrections?status=all"},
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/corrections?status=all"
    handled = fresh(db).get(CorrectionSuggestion, suggestion.id)
    assert handled is not None and handled.status == "resolved"
    assert handled.handled_by_id is not None and handled.handled_at is not None


# --- site texts --------------------------------------------------------------------------------


def settings_form(client: FlaskClient, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = dataclasses.asdict(site.SiteTexts())
    data.update(overrides)
    data["csrf_token"] = csrf_token(client)
    return data


def test_staff_change_the_banner_and_article_pages_show_it(staff_client, app, db):
    article = make_article(db)
    public = app.test_client()
    before = public.get(f"/articles/{article.slug}").get_data(as_text=True)
    assert 'data-dismiss-days="7"' in before
    assert staff_client.get("/staff/settings").status_code == 200

    response = staff_client.post(
        "/staff/settings",
        data=settings_form(staff_client, banner_text="Chip in for the ferry fund.",
                           banner_dismiss_days="3"),
    )  # fmt: skip

    assert response.status_code == 302
    stored = {row.key: row.value for row in fresh(db).scalars(select(SiteSetting))}
    assert stored["banner_text"] == "Chip in for the ferry fund."
    assert stored["banner_dismiss_days"] == "3"
    after = public.get(f"/articles/{article.slug}").get_data(as_text=True)
    assert "Chip in for the ferry fund." in after
    assert 'data-dismiss-days="3"' in after
    form = staff_client.get("/staff/settings").get_data(as_text=True)
    assert "Chip in for the ferry fund." in form


@pytest.mark.parametrize(
    "overrides", [{"banner_dismiss_days": "400"}, {"banner_dismiss_days": "soon"},
                  {"banner_text": ""}],
)  # fmt: skip
def test_invalid_site_texts_are_refused_and_nothing_is_stored(staff_client, db, overrides):
    response = staff_client.post("/staff/settings", data=settings_form(staff_client, **overrides))

    assert response.status_code == 400
    assert count(db, SiteSetting) == 0


# --- who may use the staff pages ---------------------------------------------------------------


def staff_requests(app: Flask) -> list[tuple[str, str]]:
    """(method, url) for every /staff rule: GET where allowed, else POST; int args are 1."""
    found = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/staff"):
                continue
            values: dict[str, object] = {}
            for name in rule.arguments:
                converter = rule._converters[name]
                if isinstance(converter, IntegerConverter):
                    values[name] = 1
                elif isinstance(converter, AnyConverter):
                    values[name] = sorted(converter.items)[0]
                else:
                    values[name] = "x"
            method = "GET" if "GET" in (rule.methods or ()) else "POST"
            found.append((method, url_for(rule.endpoint, **values)))
    return sorted(found)


def test_the_route_list_covers_every_staff_page(app):
    requests = staff_requests(app)
    assert ("GET", "/staff/") in requests
    assert ("GET", "/staff/articles/new") in requests
    assert ("POST", "/staff/articles/1/publish") in requests
    assert ("POST", "/staff/corrections/1/declined") in requests
    assert len(requests) >= 7


def test_every_staff_route_sends_anonymous_visitors_to_sign_in(app, client):
    for method, url in staff_requests(app):
        data = {"csrf_token": csrf_token(client)} if method == "POST" else None
        response = client.open(url, method=method, data=data)

        assert response.status_code == 302, (method, url)
        location = urlsplit(response.headers["Location"])
        assert location.path == "/login", (method, url)
        assert parse_qs(location.query)["next"] == [url], (method, url)


def test_every_staff_route_is_forbidden_to_members(app, client, db):
    member = make_user(db)
    login(client, member.email, PASSWORD)
    for method, url in staff_requests(app):
        data = {"csrf_token": csrf_token(client)} if method == "POST" else None
        response = client.open(url, method=method, data=data)
        assert response.status_code == 403, (method, url)


def test_signing_in_from_the_redirect_returns_to_the_staff_page(client, db):
    staff = make_staff(db)
    response = client.get("/staff/articles")
    target = response.headers["Location"]
    page = client.get(target)
    assert page.status_code == 200
    response = client.post(
        target,
        data={"email": staff.email, "password": PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/articles"


def test_posts_without_a_csrf_token_are_refused_and_change_nothing(staff_client, db):
    draft = make_article(db, title="A draft", published=False)
    from patrons.articles import corrections

    suggestion = corrections.suggest_correction(db, draft, "x", "", "", None)
    db.commit()
    no_token = {k: v for k, v in article_form(staff_client).items() if k != "csrf_token"}
    wrong_token = {**no_token, "csrf_token": "not-a-token"}

    attempts = [
        ("/staff/articles/new", no_token),
        ("/staff/articles/new", wrong_token),
        (f"/staff/articles/{draft.id}/edit", {**no_token, "title": "Changed"}),
        (f"/staff/articles/{draft.id}/publish", {}),
        (f"/staff/corrections/{suggestion.id}/resolved", {}),
        ("/staff/settings", {k: v for k, v in settings_form(staff_client).items()
                             if k != "csrf_token"}),
    ]  # fmt: skip
    for url, data in attempts:
        response = staff_client.post(url, data=data)
        assert response.status_code == 400, url

    assert count(db, Article) == 1
    kept = db.get(Article, draft.id)
    assert kept is not None and (kept.title, kept.status) == ("A draft", "draft")
    handled = db.get(CorrectionSuggestion, suggestion.id)
    assert handled is not None and handled.status == "open"
    assert count(db, SiteSetting) == 0


def test_a_number_past_a_floats_range_is_a_form_error_not_a_500(client, db):
    """WTForms' NumberRange raises OverflowError on ints of 309+ digits (found by fuzzing)."""
    from tests.conftest import csrf_token, login
    from tests.factories import PASSWORD, make_staff

    staff = make_staff(db)
    login(client, staff.email, PASSWORD)
    response = client.post(
        "/staff/settings",
        data={"notice_dismiss_days": "2" * 400, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 400
    assert "That number is too large." in response.get_data(as_text=True)
