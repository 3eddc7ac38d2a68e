"""Importing RSS, Atom and WordPress exports: `patrons.articles.feeds` and `import-feed`.

The fixture feeds under tests/fixtures/feeds/ were written for these tests (invented outlets,
people and events) and carry XSS attempts that must come out inert.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.articles import feeds, service
from patrons.models import Article
from tests.factories import make_article

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
RSS, ATOM, WORDPRESS = FIXTURES / "rss.xml", FIXTURES / "atom.xml", FIXTURES / "wordpress.json"


def articles(db: Session) -> list[Article]:
    db.expire_all()
    return list(db.scalars(select(Article).order_by(Article.id)))


def by_key(db: Session, key: str) -> Article:
    found = db.scalar(select(Article).where(Article.source_key == key))
    assert found is not None, key
    return found


def write_posts(path: Path, posts: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(posts), encoding="utf-8")
    return path


def post(number: int, title: str, body: str = "<p>Some text.</p>", **extra: Any) -> dict[str, Any]:
    return {
        "id": number,
        "guid": {"rendered": f"https://demo.example.net/?p={number}"},
        "link": f"https://demo.example.net/{number}/",
        "title": {"rendered": title},
        "content": {"rendered": body},
        "date_gmt": "2024-06-01T10:00:00",
        **extra,
    }


# Each format


def test_rss_feed_imports_published_articles(db: Session) -> None:
    result = feeds.import_feed(db, str(RSS))
    db.commit()
    assert (result.created, result.updated, result.unchanged, result.errors) == (2, 0, 0, [])
    assert len(result.skipped) == 2
    assert "item 3: no title" in result.skipped[0]
    assert "no content" in result.skipped[1]
    ferry = by_key(db, "rss:ledger-item-101")
    assert ferry.title == "Ferry timetable & fares change in spring"
    assert ferry.slug == "ferry-timetable-fares-change-in-spring"
    assert ferry.status == "published" and ferry.body_format == "html"
    assert ferry.summary == "The early boat moves to 6:40, and a day pass gets cheaper."
    assert ferry.author_name == "Mira Quell"
    assert {t.name for t in ferry.tags} == {"Lakeside", "Transport"}
    assert ferry.canonical_url == "https://ledger.example.org/2024/03/ferry-timetable"
    assert ferry.lead_image_url == "https://ledger.example.org/img/ferry.jpg"
    assert ferry.lead_image_credit == "Photo: Oskar Brenn"
    assert ferry.published_at == datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
    assert "<strong>early boat</strong>" in ferry.body_html
    library = by_key(db, "rss:https://ledger.example.org/?p=102")
    assert library.author_name == "Tove Arnell"  # not the newsdesk's email address
    assert library.lead_image_url == "https://ledger.example.org/img/library.png"
    assert "Sunday hours" in library.body_html and library.summary == ""
    assert result.summary().startswith(f"RSS feed from {RSS}: 2 created, 0 updated")
    assert "skipped item 3: no title" in result.summary()


def test_atom_feed_imports(db: Session) -> None:
    result = feeds.import_feed(db, str(ATOM))
    assert result.kind == "Atom feed"
    assert (result.created, result.skipped, result.errors) == (2, [], [])
    orchard = by_key(db, "rss:tag:hillside.example.com,2024:entry-7")
    assert orchard.title == "Orchard co-op opens its cider press"
    assert orchard.author_name == "Ines Varga"
    assert {t.name for t in orchard.tags} == {"co-ops", "Food & Drink"}
    assert orchard.summary == "Members can press their own apples every Saturday."
    assert orchard.published_at == datetime(2024, 4, 8, 5, 15, tzinfo=UTC)
    assert orchard.updated_at == datetime(2024, 4, 9, 10, 0, tzinfo=UTC)
    survey = by_key(db, "rss:tag:hillside.example.com,2024:entry-8")
    assert survey.body_html == (
        "<p>Volunteers counted 41 benches.</p>\n<p>Six need new planks &amp; paint.</p>"
    )
    assert survey.published_at == datetime(2024, 4, 10, 12, 0, tzinfo=UTC)


def test_wordpress_export_imports(db: Session) -> None:
    result = feeds.import_feed(db, str(WORDPRESS))
    assert result.kind == "WordPress export"
    assert (result.created, result.errors) == (2, [])
    assert result.skipped == [
        "item 3 “A draft that must not be imported”: its WordPress status is 'draft', not 'publish'"
    ]
    bakery = by_key(db, "wp:https://valley.example.net/?p=501")
    assert bakery.title == "The bakery’s ovens are warm again – “finally”"
    assert bakery.slug == "bakery-reopens"
    assert bakery.summary == "After a long repair the bakery on Mill Lane is open & busy…"
    assert bakery.author_name == "Luca Ferrand"
    assert {t.name for t in bakery.tags} == {"Food & Markets", "Mill Lane"}  # no "Uncategorized"
    assert bakery.lead_image_url == "https://valley.example.net/wp-content/uploads/ovens.jpg"
    assert bakery.lead_image_alt == "Two bread ovens"
    assert bakery.lead_image_caption == "The ovens & the baker"
    assert bakery.canonical_url == "https://valley.example.net/2024/05/bakery-reopens/"
    assert bakery.published_at == datetime(2024, 5, 3, 9, 0, tzinfo=UTC)
    assert bakery.updated_at == datetime(2024, 5, 4, 6, 30, tzinfo=UTC)
    bridge = by_key(db, "wp:https://valley.example.net/?p=502")
    assert bridge.author_name == "" and bridge.lead_image_url is None  # embedded errors ignored


def test_a_single_post_object_and_a_bom_are_accepted(db: Session, tmp_path: Path) -> None:
    path = tmp_path / "feed.txt"  # the kind comes from the content, not the extension
    path.write_bytes(b"\xef\xbb\xbf\n" + json.dumps(post(1, "One post alone")).encode())
    result = feeds.import_feed(db, str(path))
    assert result.created == 1 and by_key(db, "wp:https://demo.example.net/?p=1")


# Untrusted content


def test_scripts_handlers_and_javascript_links_come_out_inert(
    db: Session, client: FlaskClient
) -> None:
    for path in (RSS, ATOM, WORDPRESS):
        feeds.import_feed(db, str(path))
    db.commit()
    imported = articles(db)
    assert len(imported) == 6
    assert "Council votes on the library budget" in [a.title for a in imported]
    assert "Bridge inspection finds rust" in [a.title for a in imported]
    for article in imported:
        fields = [article.title, article.summary, article.body_html, article.lead_image_caption]
        for text in fields:
            lowered = text.lower()
            assert "<script" not in lowered and "alert(" not in lowered, text
            assert "onerror" not in lowered and "onclick" not in lowered, text
            assert "javascript:" not in lowered and "<iframe" not in lowered, text
        assert "<" not in article.title
        page = client.get(f"/articles/{article.slug}").get_data(as_text=True)
        assert "alert(" not in page and "onerror" not in page and "javascript:" not in page


def test_unsafe_urls_are_dropped_but_the_item_is_imported(db: Session, tmp_path: Path) -> None:
    unsafe = post(
        7,
        "Links that go nowhere",
        link="javascript:alert(1)",
        _embedded={"wp:featuredmedia": [{"source_url": "javascript:alert(2)", "alt_text": "x"}]},
    )
    result = feeds.import_feed(db, str(write_posts(tmp_path / "wp.json", [unsafe])))
    assert result.created == 1
    article = by_key(db, "wp:https://demo.example.net/?p=7")
    assert article.canonical_url is None and article.lead_image_url is None


def test_control_characters_are_removed(db: Session, tmp_path: Path) -> None:
    # PostgreSQL refuses NUL in text, and XML 1.0 (our Atom feed) refuses control characters
    item = post(8, "Nul\u0000 and bell\u0007 in a title", "<p>Body\u0000 with a NUL</p>")
    result = feeds.import_feed(db, str(write_posts(tmp_path / "wp.json", [item])))
    db.commit()
    assert result.errors == [] and result.created == 1
    article = by_key(db, "wp:https://demo.example.net/?p=8")
    assert article.title == "Nul and bell in a title"
    assert "\x00" not in article.body_source and "Body with a NUL" in article.body_html


def test_long_excerpts_are_cut_at_a_word(db: Session, tmp_path: Path) -> None:
    excerpt = {"rendered": "<p>" + "Word " * 200 + "</p>"}
    item = post(9, "A long excerpt", excerpt=excerpt)
    feeds.import_feed(db, str(write_posts(tmp_path / "wp.json", [item])))
    summary = by_key(db, "wp:https://demo.example.net/?p=9").summary
    assert len(summary) <= feeds.SUMMARY_MAX
    assert summary.endswith("Word…")


# Importing again


def test_reimport_updates_without_duplicating_or_renaming(db: Session, tmp_path: Path) -> None:
    path = shutil.copy(WORDPRESS, tmp_path / "export.json")
    feeds.import_feed(db, str(path))
    db.commit()
    bakery = by_key(db, "wp:https://valley.example.net/?p=501")
    bakery_id, slug = bakery.id, bakery.slug

    posts = json.loads(Path(path).read_text(encoding="utf-8"))
    posts[0]["title"]["rendered"] = "The bakery has a new name &amp; a new oven"
    posts[0]["content"]["rendered"] = "<p>Corrected: the bakery opens at seven.</p>"
    posts[0]["modified_gmt"] = "2024-05-07T12:00:00"
    write_posts(Path(path), posts)
    result = feeds.import_feed(db, str(path), publish=False)
    db.commit()

    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    assert len(articles(db)) == 2
    bakery = by_key(db, "wp:https://valley.example.net/?p=501")
    assert bakery.id == bakery_id and bakery.slug == slug
    assert bakery.title == "The bakery has a new name & a new oven"
    assert "opens at seven" in bakery.body_html
    assert bakery.updated_at == datetime(2024, 5, 7, 12, 0, tzinfo=UTC)
    assert bakery.status == "published"  # --draft never unpublishes

    again = feeds.import_feed(db, str(path))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_reimport_keeps_the_editor_set_by_staff(db: Session) -> None:
    feeds.import_feed(db, str(ATOM))
    orchard = by_key(db, "rss:tag:hillside.example.com,2024:entry-7")
    orchard.editor_name = "Desk Editor"
    db.commit()
    result = feeds.import_feed(db, str(ATOM))
    assert result.unchanged == 2
    assert by_key(db, "rss:tag:hillside.example.com,2024:entry-7").editor_name == "Desk Editor"


def test_draft_option_leaves_new_articles_unpublished(db: Session) -> None:
    result = feeds.import_feed(db, str(RSS), publish=False)
    assert result.created == 2
    assert {a.status for a in articles(db)} == {"draft"}
    assert "left as drafts" in result.summary()


def test_slug_collision_gets_a_numbered_slug(db: Session) -> None:
    mine = make_article(db, title="Ferry timetable & fares change in spring")
    make_article(db, title="Ferry timetable fares change in spring 2")
    make_article(db, title="Bakery reopens")
    feeds.import_feed(db, str(RSS))
    feeds.import_feed(db, str(WORDPRESS))
    db.commit()
    assert by_key(db, "rss:ledger-item-101").slug == "ferry-timetable-fares-change-in-spring-3"
    assert by_key(db, "wp:https://valley.example.net/?p=501").slug == "bakery-reopens-2"
    db.refresh(mine)
    assert mine.slug == "ferry-timetable-fares-change-in-spring" and mine.source_key is None


def test_same_titles_in_one_feed_get_distinct_slugs(db: Session, tmp_path: Path) -> None:
    posts = [post(1, "Weather"), post(2, "Weather"), post(2, "Weather again")]
    result = feeds.import_feed(db, str(write_posts(tmp_path / "wp.json", posts)))
    assert result.created == 2
    assert "same guid/link as an earlier item" in result.skipped[0]
    assert sorted(a.slug for a in articles(db)) == ["weather", "weather-2"]


def test_one_bad_item_does_not_stop_the_others(
    db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = service.save_article

    def failing_save(session: Session, draft: service.ArticleDraft, existing: Any = None) -> Any:
        article = real_save(session, draft, existing)
        if draft.title == "Fails after a flush":
            session.flush()
            raise RuntimeError("disk on fire")
        return article

    monkeypatch.setattr(service, "save_article", failing_save)
    posts: list[Any] = [
        post(1, "Before"),
        "not a post at all",
        post(3, "Fails after a flush"),
        post(4, "", body="<p>No title</p>"),
        post(5, "Only a script", body="<script>alert(1)</script>"),
        post(6, "Only empty paragraphs", body="<p> </p><p>&nbsp;</p>"),
        post(7, "After"),
    ]
    result = feeds.import_feed(db, str(write_posts(tmp_path / "wp.json", posts)))
    db.commit()
    assert result.created == 2
    assert result.errors == [
        "item 2: ValueError: expected a post object, found str",
        "item 3 “Fails after a flush”: RuntimeError: disk on fire",
    ]
    reasons = [s.split(":")[1].strip() for s in result.skipped]
    assert reasons == ["no title", "no content", "no content"]
    assert [a.title for a in articles(db)] == ["Before", "After"]
    summary = result.summary()
    assert "2 created" in summary and "3 skipped, 2 failed" in summary
    assert "failed item 3 “Fails after a flush”: RuntimeError: disk on fire" in summary


# Input that is not a feed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"  \n\t", "empty"),
        (b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>Cut', "not well-formed"),
        (b"<!DOCTYPE html><html><body><p>Sign in<br></p></body></html>", "not well-formed"),
        (b"<html><body><p>A web page</p></body></html>", "neither an RSS or Atom feed"),
        (b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>', "no items"),
        (b'[{"id": 1, "title": ', "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b"[]", "no posts"),
        (b'{"code": "rest_no_route", "message": "No route was found."}', "No route was found"),
        (b'{"posts": 3}', "not a WordPress export"),
        (b'[{"title": "\xff"}]', "not valid JSON"),
    ],
)
def test_malformed_input_is_a_feed_error(
    db: Session, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "feed"
    path.write_bytes(content)
    with pytest.raises(feeds.FeedError, match=message):
        feeds.import_feed(db, str(path))
    assert articles(db) == []


def test_missing_file_and_directory_are_feed_errors(db: Session, tmp_path: Path) -> None:
    with pytest.raises(feeds.FeedError, match="No such file"):
        feeds.import_feed(db, str(tmp_path / "nope.xml"))
    with pytest.raises(feeds.FeedError, match="is a directory"):
        feeds.import_feed(db, str(tmp_path))


def test_oversized_file_is_refused(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "MAX_BYTES", 100)
    with pytest.raises(feeds.FeedError, match="larger than"):
        feeds.import_feed(db, str(RSS))


@pytest.mark.parametrize(
    "source",
    [
        "file:///etc/passwd",
        f"file://{RSS}",
        "ftp://ftp.example.org/feed.xml",
        "javascript:alert(1)",
        "data:application/xml,<rss/>",
    ],
)
def test_other_schemes_are_refused(db: Session, source: str) -> None:
    with pytest.raises(feeds.FeedError, match="Refusing"):
        feeds.import_feed(db, source)


# Fetching over HTTP (loopback only)


class FixtureHandler(SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(FIXTURES), **kwargs)

    def do_GET(self) -> None:
        targets = {"/to-file": "file:///etc/passwd", "/to-ftp": "ftp://127.0.0.1/feed.xml"}
        if self.path in targets:
            self.send_response(302)
            self.send_header("Location", targets[self.path])
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def feed_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), FixtureHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_url_is_fetched_and_imported(db: Session, feed_server: str) -> None:
    result = feeds.import_feed(db, f"{feed_server}/rss.xml")
    assert result.created == 2 and result.source == f"{feed_server}/rss.xml"
    wordpress = feeds.import_feed(db, f"{feed_server}/wordpress.json")
    assert wordpress.created == 2
    assert len(articles(db)) == 4


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing.xml", "answered HTTP 404"),
        ("/to-file", "HTTP 302 .* not allowed"),  # urllib's own check
        ("/to-ftp", "redirects to ftp://127.0.0.1/feed.xml, which is not an http"),
    ],
)
def test_http_failures_are_feed_errors(
    db: Session, feed_server: str, path: str, message: str
) -> None:
    with pytest.raises(feeds.FeedError, match=message):
        feeds.import_feed(db, feed_server + path)


def test_oversized_download_is_refused(
    db: Session, feed_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "MAX_BYTES", 100)
    with pytest.raises(feeds.FeedError, match="larger than"):
        feeds.import_feed(db, f"{feed_server}/rss.xml")


def test_silent_server_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "TIMEOUT_SECONDS", 0.3)
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with pytest.raises(feeds.FeedError, match="Could not fetch"):
            feeds.fetch(f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml")


def test_refused_connection_is_a_feed_error(db: Session) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(feeds.FeedError, match="Could not fetch"):
        feeds.import_feed(db, f"http://127.0.0.1:{port}/feed.xml")


# The command


def test_cli_imports_and_prints_the_summary(app: Flask, db: Session) -> None:
    result = app.test_cli_runner().invoke(args=["import-feed", str(ATOM), "--draft"])
    assert result.exit_code == 0, result.output
    assert f"Atom feed from {ATOM}: 2 created, 0 updated" in result.output
    assert "left as drafts" in result.output
    assert db.scalar(select(func.count()).select_from(Article)) == 2
    assert {a.status for a in articles(db)} == {"draft"}

    again = app.test_cli_runner().invoke(args=["import-feed", str(ATOM)])
    assert again.exit_code == 0, again.output
    assert "0 created, 0 updated, 2 unchanged" in again.output


def test_cli_missing_file_exits_non_zero_with_a_message(app: Flask, db: Session) -> None:
    result = app.test_cli_runner().invoke(args=["import-feed", "/no/such/feed.xml"])
    assert result.exit_code != 0
    assert "No such file: /no/such/feed.xml" in result.output
    assert "Traceback" not in result.output
    assert articles(db) == []
