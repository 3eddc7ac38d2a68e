"""The first-party beacon /e/<id>/<kind> and the per-article, per-day counters behind it."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from patrons.articles.counters import count_event
from patrons.core import clock
from patrons.models import DailyCount
from patrons.models.events import EVENT_KINDS
from tests.factories import make_article
from tests.helpers import fresh_db  # noqa: F401  (the `db` fixture)


def counts(db) -> dict[tuple[int, date, str], int]:  # type: ignore[no-untyped-def]
    db.rollback()  # a new transaction: SQLite would otherwise keep showing its old snapshot
    return {(r.article_id, r.day, r.kind): r.count for r in db.scalars(select(DailyCount))}


def at(moment: datetime):  # type: ignore[no-untyped-def]
    return lambda: moment


def test_beacon_counts_per_article_and_kind(client, db):
    """One visitor: once per article and kind (a repeat answers the same and counts nothing;
    tests/articles/test_beacon.py)."""
    first = make_article(db)
    second = make_article(db)
    for path in (
        f"/e/{first.id}/view",
        f"/e/{first.id}/view",
        f"/e/{first.id}/banner_click",
        f"/e/{second.id}/view",
    ):
        response = client.get(path)
        assert response.status_code == 204, path
        assert response.get_data() == b""
    today = clock.now().date()
    assert counts(db) == {
        (first.id, today, "view"): 1,
        (first.id, today, "banner_click"): 1,
        (second.id, today, "view"): 1,
    }


def test_beacon_counts_per_day(client, db, monkeypatch):
    article = make_article(db, days_ago=3650)  # published before the frozen days below
    monkeypatch.setattr(clock, "now", at(datetime(2026, 3, 1, 23, 59, 30, tzinfo=UTC)))
    client.get(f"/e/{article.id}/view")
    client.get(f"/e/{article.id}/view")
    monkeypatch.setattr(clock, "now", at(datetime(2026, 3, 2, 0, 0, 5, tzinfo=UTC)))
    client.get(f"/e/{article.id}/view")
    assert counts(db) == {
        (article.id, date(2026, 3, 1), "view"): 1,  # the same visitor twice that day
        (article.id, date(2026, 3, 2), "view"): 1,
    }


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_documented_kind_is_counted(client, db, kind):
    article = make_article(db)
    assert client.get(f"/e/{article.id}/{kind}").status_code == 204
    assert counts(db) == {(article.id, clock.now().date(), kind): 1}


@pytest.mark.parametrize(
    "kind", ["click", "VIEW", "view ", "view%00", "banner_impression2", "%3Cscript%3E", "count"]
)
def test_unknown_kind_is_404_and_counts_nothing(client, db, kind):
    article = make_article(db)
    response = client.get(f"/e/{article.id}/{kind}")
    assert response.status_code == 404
    assert counts(db) == {}


@pytest.mark.parametrize(
    "article_id",
    [
        "0",
        "424242",
        # found as a bug (past the INTEGER range: a 500); fixed by urls.DatabaseIdConverter
        "2147483648",
        "99999999999",
        "99999999999999999999",
    ],
)
def test_unknown_article_is_404_and_counts_nothing(client, db, article_id):
    make_article(db)
    response = client.get(f"/e/{article_id}/view")
    assert response.status_code == 404
    assert counts(db) == {}


def test_beacon_takes_only_get(client, db):
    article = make_article(db)
    assert client.post(f"/e/{article.id}/view").status_code in (400, 405)
    assert counts(db) == {}


def test_beacon_sets_no_cookie_and_is_not_cached(client, db):
    article = make_article(db)
    response = client.get(f"/e/{article.id}/view")
    assert "Set-Cookie" not in response.headers
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers.get("X-Robots-Tag") == "noindex"
    # a visitor who already has a session is not sent it again
    client.get("/csrf-token")
    again = client.get(f"/e/{article.id}/banner_impression")
    assert again.status_code == 204
    assert "Set-Cookie" not in again.headers


def test_beacon_is_rate_limited(client, db):
    """120 a minute per address, however many browsers it claims to be."""
    article = make_article(db)
    statuses = [
        client.get(f"/e/{article.id}/view", headers={"User-Agent": f"browser {n}"}).status_code
        for n in range(121)
    ]
    assert statuses[:120] == [204] * 120
    assert statuses[120] == 429
    assert counts(db) == {(article.id, clock.now().date(), "view"): 120}


def test_count_event_refuses_an_unknown_kind(db):
    article = make_article(db)
    with pytest.raises(ValueError, match="unknown event kind"):
        count_event(db, article.id, "bogus")


def _count_concurrently(app, jobs: list[tuple[int, str]]) -> list[BaseException]:  # type: ignore[no-untyped-def]
    """Each job in its own thread and session, all released at once; errors are returned."""
    sessionmaker = app.extensions["db.sessionmaker"]
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def work(article_id: int, kind: str) -> None:
        session = sessionmaker()
        try:
            barrier.wait(timeout=30)
            count_event(session, article_id, kind)
            session.commit()
        except BaseException as exc:
            errors.append(exc)
            session.rollback()
        finally:
            session.close()

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a counting thread hung"
    return errors


def test_concurrent_beacons_lose_no_count(app, db):
    article = make_article(db)
    errors = _count_concurrently(app, [(article.id, "view")] * 20)
    assert errors == []
    assert counts(db) == {(article.id, clock.now().date(), "view"): 20}


def test_concurrent_beacons_on_an_existing_row_lose_no_count(app, db):
    article = make_article(db)
    count_event(db, article.id, "view")
    db.commit()
    errors = _count_concurrently(app, [(article.id, "view")] * 20)
    assert errors == []
    assert counts(db) == {(article.id, clock.now().date(), "view"): 21}


def test_concurrent_beacons_of_several_kinds_and_articles(app, db):
    first = make_article(db)
    second = make_article(db)
    jobs = [
        (first.id, "view"),
        (second.id, "view"),
        (first.id, "banner_click"),
        (first.id, "notice_dismiss"),
    ] * 5
    errors = _count_concurrently(app, jobs)
    assert errors == []
    today = clock.now().date()
    assert counts(db) == {
        (first.id, today, "view"): 5,
        (second.id, today, "view"): 5,
        (first.id, today, "banner_click"): 5,
        (first.id, today, "notice_dismiss"): 5,
    }
