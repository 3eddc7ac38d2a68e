from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_article, make_patron, make_user


def test_article_page_shows_the_article_with_banner_reprint_and_correction_link(client, db):
    article = make_article(db, title="Bridges rebuilt", tags=("Regions",))
    response = client.get(f"/articles/{article.slug}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Bridges rebuilt" in html
    assert 'id="support-banner"' in html and "Become a Patron!" in html
    assert 'href="/support?src=banner' in html
    assert "500 characters" in html
    assert "press <kbd>Ctrl</kbd> + <kbd>Enter</kbd>" in html
    assert f'href="/articles/{article.slug}/correction"' in html
    assert 'id="adblock-notice"' in html and "hidden" in html


def test_unknown_slug_is_a_404_in_the_sites_look(client):
    response = client.get("/articles/no-such-article")
    assert response.status_code == 404
    assert "could not find that page" in response.get_data(as_text=True)


def test_anonymous_article_is_publicly_cacheable_with_etag(client, db):
    article = make_article(db)
    first = client.get(f"/articles/{article.slug}")
    assert "public" in first.headers["Cache-Control"]
    assert "s-maxage" in first.headers["Cache-Control"]
    assert "Cookie" in first.headers["Vary"]
    assert "Set-Cookie" not in first.headers
    etag = first.headers["ETag"]
    second = client.get(f"/articles/{article.slug}", headers={"If-None-Match": etag})
    assert second.status_code == 304


def test_active_patron_sees_thanks_not_banner_and_private_response(client, db):
    article = make_article(db)
    patron = make_patron(db)
    login(client, patron.email, PASSWORD)
    response = client.get(f"/articles/{article.slug}")
    html = response.get_data(as_text=True)
    assert "Thank you for being a patron" in html
    assert 'id="support-banner"' not in html
    assert 'id="adblock-notice"' not in html
    assert "private" in response.headers["Cache-Control"]


def test_member_without_paid_pledge_still_sees_banner(client, db):
    article = make_article(db)
    member = make_patron(db, paid=False)
    login(client, member.email, PASSWORD)
    html = client.get(f"/articles/{article.slug}").get_data(as_text=True)
    assert 'id="support-banner"' in html


def test_correction_suggestion_is_stored(client, db):
    from sqlalchemy import select

    from patrons.models import CorrectionSuggestion

    article = make_article(db)
    response = client.post(
        f"/articles/{article.slug}/correction",
        data={
            "selection": "second sentence",
            "context": "The second sentence here.",
            "comment": "Typo",
            "email": "a@example.org",
            "csrf_token": csrf_token(client),
        },
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    stored = db.scalars(select(CorrectionSuggestion)).one()
    assert (stored.selection, stored.context, stored.email) == (
        "second sentence",
        "The second sentence here.",
        "a@example.org",
    )


def test_correction_without_csrf_token_is_refused(client, db):
    article = make_article(db)
    response = client.post(f"/articles/{article.slug}/correction", data={"selection": "x"})
    assert response.status_code == 400


def test_healthz(client):
    assert client.get("/healthz").status_code == 200


def test_member_login_and_staff_required(client, db):
    user = make_user(db)
    login(client, user.email, PASSWORD)
    assert client.get("/staff/").status_code == 403


def test_fast_path_serves_the_same_page_and_headers_as_flask(app, client, db):
    article = make_article(db, title="Same either way")
    first = client.get(f"/articles/{article.slug}")  # rendered by Flask, then cached
    assert (
        app.extensions["article_fast_path"]._cached_page(
            {"REQUEST_METHOD": "GET", "PATH_INFO": f"/articles/{article.slug}"}
        )
        is not None
    )
    second = client.get(f"/articles/{article.slug}")  # answered by the fast path
    assert second.data == first.data

    def headers(r):  # each response has its own request id (core/logs.py)
        return {k: v for k, v in r.headers.items() if k not in ("Date", "X-Request-ID")}

    assert headers(second) == headers(first)
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    assert "Content-Security-Policy" in second.headers


def test_fast_path_leaves_signed_in_readers_to_flask(client, db):
    article = make_article(db)
    client.get(f"/articles/{article.slug}")  # cache the anonymous page
    patron = make_patron(db)
    login(client, patron.email, PASSWORD)
    html = client.get(f"/articles/{article.slug}").get_data(as_text=True)
    assert "Thank you for being a patron" in html


def test_staff_edit_reaches_anonymous_readers_at_once(app, client, db):
    from patrons import site
    from patrons.articles import service

    article = make_article(db, title="Before the edit")
    assert "Before the edit" in client.get(f"/articles/{article.slug}").get_data(as_text=True)
    draft = service.ArticleDraft(title="After the edit", slug=article.slug, body_source="New.")
    service.save_article(db, draft, article)
    db.commit()
    with app.app_context():
        site.forget_cached()
    assert "After the edit" in client.get(f"/articles/{article.slug}").get_data(as_text=True)
