"""Public lists: the index and its pages, tag pages, related articles, the Atom feed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from patrons.articles import service
from patrons.models import Article
from tests.conftest import login
from tests.factories import PASSWORD, make_article, make_user

ATOM = "{http://www.w3.org/2005/Atom}"
SITE_URL = "http://patrons.test"  # tests.conftest.make_settings


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """tests.conftest.db without holding an app context open for the whole test, so that each
    request of the test client gets its own context, `g` and database session, as in a server."""
    session = app.extensions["db.sessionmaker"]()
    yield session
    session.close()


def card_slugs(html: str) -> list[str]:
    return re.findall(r'class="card__title"><a href="/articles/([^"]+)"', html)


def related_slugs(html: str) -> list[str]:
    section = re.search(r'<section class="related">(.*?)</section>', html, re.S)
    return re.findall(r'href="/articles/([^"]+)"', section.group(1)) if section else []


# --- the index ---------------------------------------------------------------------------------


def test_the_index_lists_newest_first_and_has_a_second_page(client, db):
    # days_ago 1 is the newest; one more than fits on a page
    made = [make_article(db, days_ago=n) for n in range(1, service.PAGE_SIZE + 2)]

    first = client.get("/")
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    assert card_slugs(html) == [a.slug for a in made[: service.PAGE_SIZE]]
    assert 'rel="next" href="/?page=2"' in html
    assert 'rel="prev"' not in html

    second = client.get("/?page=2")
    assert second.status_code == 200
    html = second.get_data(as_text=True)
    assert card_slugs(html) == [made[-1].slug]
    assert 'rel="prev" href="/?page=1"' in html
    assert 'rel="next"' not in html

    assert client.get("/?page=3").status_code == 404


@pytest.mark.parametrize("page", ["0", "-1", "10001"])
def test_page_numbers_out_of_range_are_404(client, db, page):
    make_article(db)
    assert client.get(f"/?page={page}").status_code == 404


def test_exactly_one_page_has_no_pagination(client, db):
    for n in range(service.PAGE_SIZE):
        make_article(db, days_ago=n + 1)
    html = client.get("/").get_data(as_text=True)
    assert len(card_slugs(html)) == service.PAGE_SIZE
    assert 'class="pagination"' not in html
    assert client.get("/?page=2").status_code == 404


def test_an_empty_index_says_so(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "No articles yet." in response.get_data(as_text=True)


# --- drafts and embargoes ----------------------------------------------------------------------


def test_drafts_and_future_articles_are_neither_listed_nor_viewable(app, client, db):
    shared = ("Regions",)
    public = make_article(db, title="Public piece", tags=shared, days_ago=2)
    draft = make_article(db, title="Draft piece", tags=shared, published=False, days_ago=1)
    future = make_article(db, title="Embargoed piece", tags=shared, days_ago=-1)

    index = client.get("/").get_data(as_text=True)
    assert card_slugs(index) == [public.slug]
    assert card_slugs(client.get("/tags/regions").get_data(as_text=True)) == [public.slug]
    feed = client.get("/feed.atom").get_data(as_text=True)
    assert "Public piece" in feed
    assert "Draft piece" not in feed and "Embargoed piece" not in feed
    page = client.get(f"/articles/{public.slug}").get_data(as_text=True)
    assert draft.slug not in page and future.slug not in page
    for hidden in (draft, future):
        assert client.get(f"/articles/{hidden.slug}").status_code == 404
        assert client.get(f"/articles/{hidden.slug}/correction").status_code == 404

    member = app.test_client()
    login(member, make_user(db).email, PASSWORD)
    for hidden in (draft, future):
        assert member.get(f"/articles/{hidden.slug}").status_code == 404
    assert member.get(f"/articles/{public.slug}").status_code == 200


def test_an_article_appears_once_its_publication_time_has_passed(client, db, monkeypatch):
    article = make_article(db, title="Scheduled", days_ago=-1)
    assert client.get(f"/articles/{article.slug}").status_code == 404

    from datetime import timedelta

    from patrons.core import clock

    later = clock.now() + timedelta(days=2)
    monkeypatch.setattr(clock, "now", lambda: later)

    assert client.get(f"/articles/{article.slug}").status_code == 200
    assert card_slugs(client.get("/").get_data(as_text=True)) == [article.slug]


# --- tags --------------------------------------------------------------------------------------


def test_a_tag_page_lists_only_the_articles_with_that_tag(client, db):
    both = make_article(db, title="Both", tags=("Regions", "Energy"), days_ago=1)
    regions = make_article(db, title="Regions only", tags=("Regions",), days_ago=2)
    energy = make_article(db, title="Energy only", tags=("Energy",), days_ago=3)
    untagged = make_article(db, title="No tags", days_ago=4)

    response = client.get("/tags/regions")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Tagged “Regions”" in html
    assert card_slugs(html) == [both.slug, regions.slug]
    assert card_slugs(client.get("/tags/energy").get_data(as_text=True)) == [
        both.slug, energy.slug]  # fmt: skip
    assert untagged.slug not in html


def test_unknown_tags_and_empty_tag_pages(client, db):
    make_article(db, tags=("Regions",))
    assert client.get("/tags/no-such-tag").status_code == 404
    assert client.get("/tags/regions?page=2").status_code == 404


def test_a_tag_with_only_drafts_shows_an_empty_page(client, db):
    make_article(db, tags=("Secret plans",), published=False)
    response = client.get("/tags/secret-plans")
    assert response.status_code == 200
    assert "No published articles carry this tag yet." in response.get_data(as_text=True)


def test_tag_pages_paginate(client, db):
    tagged = [make_article(db, tags=("Regions",), days_ago=n) for n in range(1, 13)]
    for n in range(5):
        make_article(db, days_ago=n + 0.5)

    first = client.get("/tags/regions").get_data(as_text=True)
    assert card_slugs(first) == [a.slug for a in tagged[: service.PAGE_SIZE]]
    assert 'rel="next" href="/tags/regions?page=2"' in first
    second = client.get("/tags/regions?page=2").get_data(as_text=True)
    assert card_slugs(second) == [a.slug for a in tagged[service.PAGE_SIZE :]]
    assert client.get("/tags/regions?page=3").status_code == 404


def test_the_article_page_links_its_tags(client, db):
    article = make_article(db, tags=("Regions", "Energy"))
    html = client.get(f"/articles/{article.slug}").get_data(as_text=True)
    assert 'href="/tags/regions">Regions</a>' in html
    assert 'href="/tags/energy">Energy</a>' in html


# --- related articles --------------------------------------------------------------------------


def test_related_articles_prefer_shared_tags_then_recency(client, db):
    article = make_article(db, title="Subject", tags=("A", "B", "C"), days_ago=3)
    three = make_article(db, title="Three shared", tags=("A", "B", "C", "D"), days_ago=30)
    two_old = make_article(db, title="Two shared, old", tags=("A", "B"), days_ago=20)
    two_new = make_article(db, title="Two shared, new", tags=("B", "C"), days_ago=10)
    make_article(db, title="One shared", tags=("C",), days_ago=1)
    make_article(db, title="Nothing shared, newest", tags=("Z",), days_ago=0.5)
    make_article(db, title="A draft", tags=("A", "B", "C"), published=False)
    make_article(db, title="Embargoed", tags=("A", "B", "C"), days_ago=-1)

    related = service.related_articles(db, article)

    assert [a.title for a in related] == [three.title, two_new.title, two_old.title]
    html = client.get(f"/articles/{article.slug}").get_data(as_text=True)
    assert related_slugs(html) == [three.slug, two_new.slug, two_old.slug]


def test_related_articles_are_filled_up_with_the_most_recent(client, db):
    article = make_article(db, title="Subject", tags=("A",), days_ago=3)
    shared = make_article(db, title="Shares A", tags=("A", "X"), days_ago=40)
    newest = make_article(db, title="Newest", days_ago=0.5)
    newer = make_article(db, title="Newer", tags=("X",), days_ago=1)
    make_article(db, title="Old", days_ago=50)
    make_article(db, title="A draft", published=False, days_ago=0.1)

    related = service.related_articles(db, article)

    assert [a.title for a in related] == [shared.title, newest.title, newer.title]
    assert article not in related


def test_an_article_without_tags_gets_the_most_recent_others(client, db):
    article = make_article(db, title="Untagged", days_ago=0.2)
    older = [make_article(db, tags=("A",), days_ago=n) for n in (1, 2, 3, 4)]

    related = service.related_articles(db, article)

    assert [a.id for a in related] == [a.id for a in older[:3]]


def test_a_lone_article_has_no_related_section(client, db):
    article = make_article(db, tags=("A",))
    html = client.get(f"/articles/{article.slug}").get_data(as_text=True)
    assert 'class="related"' not in html


# --- the Atom feed -----------------------------------------------------------------------------


def parse_feed(client) -> ET.Element:  # type: ignore[no-untyped-def]
    response = client.get("/feed.atom")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    return ET.fromstring(response.data)  # noqa: S314  (our own output)


def test_the_feed_is_valid_atom_with_absolute_links_and_escaped_content(client, db):
    tricky = make_article(
        db,
        title='Fish & "chips" <at> the ferry',
        body="Text with *emphasis* & a [link](https://example.org/?a=1&b=2).",
        summary="Less < more & so on",
        author_name="O'Brien & Co",
        tags=("Regions & Places",),
        days_ago=1,
    )
    plain = make_article(db, title="Plain", days_ago=2)
    make_article(db, title="Draft", published=False)

    root = parse_feed(client)

    assert root.tag == f"{ATOM}feed"
    assert root.findtext(f"{ATOM}id") == f"{SITE_URL}/"
    self_link = root.find(f"{ATOM}link[@rel='self']")
    assert self_link is not None and self_link.get("href") == f"{SITE_URL}/feed.atom"
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == [tricky.title, plain.title]

    entry = entries[0]
    url = f"{SITE_URL}/articles/{tricky.slug}"
    assert entry.findtext(f"{ATOM}id") == url
    link = entry.find(f"{ATOM}link[@rel='alternate']")
    assert link is not None and link.get("href") == url
    assert entry.findtext(f"{ATOM}summary") == "Less < more & so on"
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == "O'Brien & Co"
    category = entry.find(f"{ATOM}category")
    assert category is not None
    assert (category.get("term"), category.get("label")) == ("regions-places", "Regions & Places")
    content = entry.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"
    assert content.text == tricky.body_html
    assert "<em>emphasis</em>" in (content.text or "")
    for tag in ("published", "updated"):
        stamp = entry.findtext(f"{ATOM}{tag}")
        assert stamp is not None and datetime.fromisoformat(stamp).tzinfo is not None
    updated = root.findtext(f"{ATOM}updated")
    assert updated is not None and datetime.fromisoformat(updated).tzinfo is not None

    raw = client.get("/feed.atom").get_data(as_text=True)
    assert "&lt;em&gt;emphasis&lt;/em&gt;" in raw  # the HTML travels escaped, not as markup


def test_a_pasted_control_character_does_not_break_the_feed(client, db):
    make_article(db, title="Pasted\x0c title", body="Line one\x0bline two, from a word processor.")
    make_article(db, title="Another", days_ago=2)

    root = parse_feed(client)

    assert len(root.findall(f"{ATOM}entry")) == 2


def test_an_empty_feed_is_valid(client):
    root = parse_feed(client)
    assert root.findall(f"{ATOM}entry") == []
    assert root.findtext(f"{ATOM}updated")


def test_the_feed_holds_the_30_newest(client, db):
    made = [make_article(db, days_ago=n) for n in range(1, 33)]
    entries = parse_feed(client).findall(f"{ATOM}entry")
    assert len(entries) == 30
    assert entries[0].findtext(f"{ATOM}title") == made[0].title
    assert entries[-1].findtext(f"{ATOM}title") == made[29].title


# --- reading time ------------------------------------------------------------------------------


@pytest.mark.parametrize(("words", "minutes"), [(5, 1), (460, 2), (700, 3)])
def test_the_article_page_shows_the_reading_time(client, db, words, minutes):
    body = " ".join(["word"] * words)
    article: Article = make_article(db, body=body)

    html = client.get(f"/articles/{article.slug}").get_data(as_text=True)

    assert f"· {minutes} min read" in html
