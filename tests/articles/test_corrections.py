"""Correction suggestions: the reader's forms (dialog JSON and no-JS page), /contact, and staff."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from patrons.articles import corrections
from patrons.models import CorrectionSuggestion
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_article, make_staff, make_user
from tests.helpers import ON_POSTGRES, fresh_db  # noqa: F401  (the `db` fixture)

JSON = {"Accept": "application/json"}


def stored(db) -> list[CorrectionSuggestion]:  # type: ignore[no-untyped-def]
    db.rollback()  # a new transaction: SQLite would otherwise keep showing its old snapshot
    return list(db.scalars(select(CorrectionSuggestion).order_by(CorrectionSuggestion.id)))


def nothing_stored(db) -> bool:  # type: ignore[no-untyped-def]
    db.rollback()
    return db.scalar(select(func.count()).select_from(CorrectionSuggestion)) == 0


def reload(db, row: CorrectionSuggestion) -> None:  # type: ignore[no-untyped-def]
    db.rollback()  # end the read transaction first (SQLite reads from a snapshot)
    db.refresh(row)


def valid(client, **fields: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    data = {
        "selection": "second sentence",
        "context": "The second sentence here.",
        "comment": "It is the third.",
        "email": "Reader@Example.org",
        "csrf_token": csrf_token(client),
    }
    data.update(fields)
    return data


@pytest.fixture
def article(db):  # type: ignore[no-untyped-def]
    return make_article(db, slug="story")


# --- refused input ---------------------------------------------------------------------------

INVALID = {
    "empty selection": ({"selection": ""}, "selection", "Quote the text that needs correcting."),
    "blank selection": (
        {"selection": "   \n "},
        "selection",
        "Quote the text that needs correcting.",
    ),
    "selection of 1001 characters": (
        {"selection": "x" * 1001},
        "selection",
        "Quote at most 1000 characters.",
    ),
    "comment of 2001 characters": (
        {"comment": "y" * 2001},
        "comment",
        "Keep the comment under 2000 characters.",
    ),
    "context of 2001 characters": ({"context": "z" * 2001}, "context", "2000"),
    "invalid email": (
        {"email": "not-an-email"},
        "email",
        "That does not look like an email address.",
    ),
    "email with two @": (
        {"email": "a@b@example.org"},
        "email",
        "That does not look like an email address.",
    ),
    "email with a space": (
        {"email": "a b@example.org"},
        "email",
        "That does not look like an email address.",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
@pytest.mark.parametrize("path", ["/articles/story/correction", "/contact"])
def test_invalid_suggestion_is_a_400_form_page_with_the_message(client, db, article, case, path):
    fields, field, message = INVALID[case]
    response = client.post(path, data=valid(client, **fields))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    if field != "context":  # a hidden field: its error has no place on the page
        assert message in html
        assert f'id="{field}-error"' in html and 'aria-invalid="true"' in html
    assert 'class="site-header"' in html and "<form" in html
    assert nothing_stored(db)


@pytest.mark.parametrize("case", list(INVALID))
@pytest.mark.parametrize("path", ["/articles/story/correction", "/contact"])
def test_invalid_suggestion_is_a_400_json_with_the_message(client, db, article, case, path):
    fields, field, message = INVALID[case]
    response = client.post(path, data=valid(client, **fields), headers=JSON)
    assert response.status_code == 400
    assert response.is_json
    body = response.get_json()
    assert body["ok"] is False
    assert list(body["errors"]) == [field]
    assert message in body["errors"][field][0]
    assert nothing_stored(db)


def test_selection_of_exactly_1000_characters_is_accepted(client, db, article):
    response = client.post(
        "/articles/story/correction", data=valid(client, selection="x" * 1000), headers=JSON
    )
    assert response.status_code == 200
    assert len(stored(db)[0].selection) == 1000


@pytest.mark.parametrize(
    "token", [None, "", "garbage", "IjAwMCI.AAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBB"]
)
def test_missing_or_wrong_csrf_token_is_a_400_page_with_a_message(client, db, article, token):
    data = valid(client)
    if token is None:
        del data["csrf_token"]
    else:
        data["csrf_token"] = token
    response = client.post("/articles/story/correction", data=data)
    assert response.status_code == 400
    assert "This form has expired or was sent from elsewhere" in response.get_data(as_text=True)
    assert nothing_stored(db)


def test_token_of_another_session_is_refused(app, db, article):
    other = app.test_client()
    token = csrf_token(other)
    client = app.test_client()
    csrf_token(client)  # this client has a session of its own
    response = client.post("/articles/story/correction", data=valid(client, csrf_token=token))
    assert response.status_code == 400
    assert nothing_stored(db)


# Regression test, fixed: the CSRFError handler always answers with the HTML error page, even to
# the dialog's fetch (Accept: application/json), which then shows a generic message
def test_missing_csrf_token_is_a_400_json_for_the_dialog(client, db, article):
    data = valid(client)
    del data["csrf_token"]
    response = client.post("/articles/story/correction", data=data, headers=JSON)
    assert response.status_code == 400
    assert response.is_json
    body = response.get_json()
    assert body["ok"] is False and "expired" in (body.get("message") or str(body.get("errors")))
    assert nothing_stored(db)


# Regression test, fixed: the correction form lets a NUL byte through to PostgreSQL, which refuses
# it (DataError), so the reader gets a 500
@pytest.mark.parametrize("field", ["selection", "comment", "context"])
def test_nul_byte_in_a_suggestion_is_never_a_500(client, db, article, field):
    response = client.post(
        "/articles/story/correction", data=valid(client, **{field: "bad\x00byte"}), headers=JSON
    )
    assert response.status_code in (200, 400)


# --- the honeypot, unknown articles, the rate limit ------------------------------------------


# Regression test, fixed: the honeypot field has a Length(max=0) validator, so a filled honeypot
# fails validation: the bot gets a 400 naming the `website` field, and the view's pretend-success
# branch (`if not form.website.data`) is never reached


@pytest.mark.parametrize("accept", ["html", "json"])
def test_filled_honeypot_looks_accepted_but_stores_nothing(client, db, article, accept):
    headers = JSON if accept == "json" else {}
    response = client.post(
        "/articles/story/correction",
        data=valid(client, website="http://spam.example"),
        headers=headers,
    )
    if accept == "json":
        assert response.status_code == 200
        assert response.get_json()["ok"] is True
    else:
        assert response.status_code == 303
        assert response.headers["Location"].endswith("/articles/story/correction?sent=1")
    assert nothing_stored(db)


def test_honeypot_on_contact_stores_nothing(client, db):
    response = client.post("/contact", data=valid(client, website="x"))
    assert response.status_code == 303
    assert nothing_stored(db)


@pytest.mark.parametrize("path", ["/articles/story/correction", "/contact"])
def test_filled_honeypot_never_stores(client, db, article, path):
    for headers in ({}, JSON):
        response = client.post(
            path, data=valid(client, website="http://spam.example"), headers=headers
        )
        assert response.status_code in (200, 303, 400)
    assert nothing_stored(db)


@pytest.mark.parametrize("method", ["get", "post"])
def test_unknown_or_unpublished_article_is_404(client, db, method):
    make_article(db, slug="draft", published=False)
    make_article(db, slug="tomorrow", days_ago=-1)
    for slug in ("no-such-article", "draft", "tomorrow"):
        data = valid(client) if method == "post" else None
        response = getattr(client, method)(f"/articles/{slug}/correction", data=data)
        assert response.status_code == 404, slug
    assert nothing_stored(db)


@pytest.mark.parametrize("path", ["/articles/story/correction", "/contact"])
def test_sixth_post_within_a_minute_is_429(client, db, article, path):
    statuses = [
        client.post(path, data=valid(client, selection=f"quote {i}"), headers=JSON).status_code
        for i in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    assert len(stored(db)) == 5
    limited = client.post(path, data=valid(client))
    assert limited.status_code == 429
    assert "Too many attempts" in limited.get_data(as_text=True)
    assert len(stored(db)) == 5


def test_refused_posts_count_towards_the_rate_limit(client, db, article):
    for _ in range(5):
        assert (
            client.post("/articles/story/correction", data=valid(client, selection="")).status_code
            == 400
        )
    assert client.post("/articles/story/correction", data=valid(client)).status_code == 429
    assert nothing_stored(db)


def test_the_limit_is_per_form_not_shared_with_reading(client, db, article):
    for i in range(5):
        client.post("/articles/story/correction", data=valid(client, selection=f"q{i}"))
    assert client.get("/articles/story/correction").status_code == 200
    assert client.get("/articles/story").status_code == 200
    assert client.post("/contact", data=valid(client)).status_code == 303


# --- the no-JS form page, its thanks, /contact -----------------------------------------------


def test_no_js_form_page_works(client, db, article):
    response = client.get("/articles/story/correction?selection=the+second+sentence")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Suggest a correction" in html and article.title in html
    assert re.search(r'name="csrf_token" type="hidden" value="[^"]+"', html)
    assert re.search(r'<textarea id="selection"[^>]*>\s*the second sentence</textarea>', html)
    assert 'name="website"' in html  # the honeypot


def test_no_js_form_page_cuts_a_long_selection(client, db, article):
    html = client.get(
        "/articles/story/correction", query_string={"selection": "x" * 5000}
    ).get_data(as_text=True)
    assert re.search(r">\s*" + "x" * 1000 + "</textarea>", html) and "x" * 1001 not in html


def test_no_js_form_post_redirects_to_thanks_and_stores(client, db, article):
    response = client.post("/articles/story/correction", data=valid(client))
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/articles/story/correction?sent=1")
    thanks = client.get(response.headers["Location"])
    assert thanks.status_code == 200
    html = thanks.get_data(as_text=True)
    assert "Thank you. Our editors will look at your suggestion." in html
    assert "<textarea" not in html
    (row,) = stored(db)
    assert (row.article_id, row.selection, row.context, row.comment, row.email, row.status) == (
        article.id,
        "second sentence",
        "The second sentence here.",
        "It is the third.",
        "reader@example.org",
        "open",
    )
    assert row.created_at is not None and row.handled_at is None


def test_json_post_answers_ok_with_a_message(client, db, article):
    response = client.post("/articles/story/correction", data=valid(client, email=""), headers=JSON)
    assert response.status_code == 200
    assert response.get_json() == {"ok": True, "message": "Thank you. Our editors will look at it."}
    (row,) = stored(db)
    assert row.email is None


def test_sent_page_without_a_post_only_thanks(client, db, article):
    html = client.get("/articles/story/correction?sent=1").get_data(as_text=True)
    assert "Thank you" in html


def test_contact_stores_a_general_message(client, db, article):
    page = client.get("/contact")
    assert page.status_code == 200 and "Corrections and contact" in page.get_data(as_text=True)
    response = client.post(
        "/contact", data=valid(client, selection="A general note", context="", comment="")
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/contact?sent=1")
    (row,) = stored(db)
    assert row.article_id is None and row.selection == "A general note"
    thanks = client.get("/contact?sent=1").get_data(as_text=True)
    assert "Thank you. Our editors will read your message." in thanks


# --- staff: the list, its filters, handling --------------------------------------------------


@pytest.fixture
def suggestions(db, article):  # type: ignore[no-untyped-def]
    other = make_article(db, slug="other-story", title="Other story")
    rows = {
        "story-open": corrections.suggest_correction(db, article, "story open", "", "", None),
        "story-resolved": corrections.suggest_correction(
            db, article, "story resolved", "", "", None
        ),
        "other-open": corrections.suggest_correction(db, other, "other open", "", "", None),
        "general": corrections.suggest_correction(db, None, "general open", "", "", None),
    }
    db.flush()
    staff = make_staff(db)
    corrections.handle_suggestion(db, rows["story-resolved"], "resolved", staff)
    db.commit()
    return {"rows": rows, "staff": staff, "other": other}


def listed(html: str) -> set[str]:
    return set(re.findall(r"<mark>([^<]*)</mark>", html))


@pytest.fixture
def staff_client(client, suggestions):  # type: ignore[no-untyped-def]
    login(client, suggestions["staff"].email, PASSWORD)
    return client


def test_staff_list_shows_open_suggestions_by_default(staff_client):
    html = staff_client.get("/staff/corrections").get_data(as_text=True)
    assert listed(html) == {"story open", "other open", "general open"}
    assert "General message" in html


@pytest.mark.parametrize(
    "status,expected",
    [
        ("open", {"story open", "other open", "general open"}),
        ("resolved", {"story resolved"}),
        ("declined", set()),
        ("all", {"story open", "story resolved", "other open", "general open"}),
    ],
)
def test_staff_list_filters_by_status(staff_client, status, expected):
    response = staff_client.get(f"/staff/corrections?status={status}")
    assert response.status_code == 200
    assert listed(response.get_data(as_text=True)) == expected


def test_staff_list_filters_by_article(staff_client, article, suggestions):
    html = staff_client.get(f"/staff/corrections?status=all&article={article.id}").get_data(
        as_text=True
    )
    assert listed(html) == {"story open", "story resolved"}
    assert f"for “{article.title}”" in html
    other = suggestions["other"]
    html = staff_client.get(f"/staff/corrections?article={other.id}").get_data(as_text=True)
    assert listed(html) == {"other open"}


def test_staff_list_counts_per_article(staff_client, article):
    html = staff_client.get("/staff/corrections").get_data(as_text=True)
    row = re.search(
        rf"{re.escape(article.title)}</a></td>\s*<td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", html
    )
    assert row and row.groups() == ("1", "1", "0")


def test_staff_list_refuses_an_unknown_status(staff_client):
    assert staff_client.get("/staff/corrections?status=bogus").status_code == 404


def test_staff_pages_are_never_cached(staff_client):
    response = staff_client.get("/staff/corrections")
    assert "no-store" in response.headers["Cache-Control"]
    assert "private" in response.headers["Cache-Control"]


def _handle(client, suggestion_id: int, status: str, token: bool = True, back: str | None = None):  # type: ignore[no-untyped-def]
    data = {"csrf_token": csrf_token(client)} if token else {}
    if back is not None:
        data["back"] = back
    return client.post(f"/staff/corrections/{suggestion_id}/{status}", data=data)


def test_resolving_declining_and_reopening(staff_client, db, suggestions):
    row = suggestions["rows"]["story-open"]
    staff = suggestions["staff"]
    response = _handle(staff_client, row.id, "resolved", back="/staff/corrections?status=open")
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/corrections?status=open"
    reload(db, row)
    assert (row.status, row.handled_by_id) == ("resolved", staff.id) and row.handled_at is not None
    assert f"Suggestion #{row.id} marked resolved." in staff_client.get(
        "/staff/corrections"
    ).get_data(as_text=True)

    assert _handle(staff_client, row.id, "declined").status_code == 302
    reload(db, row)
    assert row.status == "declined" and row.handled_by_id == staff.id

    assert _handle(staff_client, row.id, "open").status_code == 302
    reload(db, row)
    assert (row.status, row.handled_at, row.handled_by_id) == ("open", None, None)


def test_handling_redirects_only_within_the_site(staff_client, suggestions):
    row = suggestions["rows"]["general"]
    for back in (
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ):
        response = _handle(staff_client, row.id, "resolved", back=back)
        assert response.status_code == 302
        assert response.headers["Location"] == "/staff/corrections", back


def test_handling_requires_a_csrf_token(staff_client, db, suggestions):
    row = suggestions["rows"]["story-open"]
    response = _handle(staff_client, row.id, "resolved", token=False)
    assert response.status_code == 400
    reload(db, row)
    assert row.status == "open" and row.handled_at is None


def test_handling_an_unknown_suggestion_or_status(staff_client, suggestions):
    assert _handle(staff_client, 987654, "resolved").status_code == 404
    row = suggestions["rows"]["story-open"]
    assert _handle(staff_client, row.id, "deleted").status_code == 404
    assert staff_client.get(f"/staff/corrections/{row.id}/resolved").status_code == 405


def test_non_staff_get_403(client, db, suggestions):
    member = make_user(db)
    login(client, member.email, PASSWORD)
    assert client.get("/staff/corrections").status_code == 403
    row = suggestions["rows"]["story-open"]
    assert _handle(client, row.id, "resolved").status_code == 403
    reload(db, row)
    assert row.status == "open"


def test_anonymous_is_sent_to_sign_in(client, db, suggestions):
    response = client.get("/staff/corrections?status=all")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert "%2Fstaff%2Fcorrections" in response.headers["Location"]
    row = suggestions["rows"]["story-open"]
    response = _handle(client, row.id, "resolved")  # with a valid token of its own session
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    reload(db, row)
    assert row.status == "open"
