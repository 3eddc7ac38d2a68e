"""Honest counters (docs/security.md, the beacon): /e/<id>/<kind> counts only published
articles and known events, one per visitor, article, event and day; a visitor is a keyed hash
of the day, address and browser, never the address; a repeat is answered like the first; the
reports read the same counts; yesterday's visitors can be pruned."""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from patrons.articles import counters, service
from patrons.core import clock
from patrons.models import BeaconSeen, DailyCount
from patrons.reports import queries
from tests.conftest import TEST_SECRET
from tests.factories import make_article
from tests.helpers import extra_app, fresh_db, settings_from  # noqa: F401  (fresh_db: `db`)

ADDRESS = "203.0.113.7"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


def counts(db: Session) -> dict[tuple[int, str], int]:
    db.rollback()  # a new transaction: SQLite would otherwise keep showing its old snapshot
    return {(r.article_id, r.kind): r.count for r in db.scalars(select(DailyCount))}


def seen(db: Session) -> list[BeaconSeen]:
    db.rollback()
    return list(db.scalars(select(BeaconSeen)))


def beacon(
    client: FlaskClient,
    article_id: int,
    kind: str = "view",
    address: str = ADDRESS,
    browser: str = BROWSER,
) -> TestResponse:
    return client.get(
        f"/e/{article_id}/{kind}",
        headers={"User-Agent": browser},
        environ_base={"REMOTE_ADDR": address},
    )


def freeze(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(clock, "now", lambda: moment)


# --- only published articles, only known events ----------------------------------------------


def test_a_draft_is_not_counted_and_answers_like_no_article(
    client: FlaskClient, db: Session
) -> None:
    draft = make_article(db, published=False)
    missing = beacon(client, 424242)
    response = beacon(client, draft.id)
    assert response.status_code == 404 == missing.status_code
    assert counts(db) == {} and seen(db) == []


def test_an_article_published_for_later_is_not_counted_yet(
    client: FlaskClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = make_article(db, days_ago=-2)  # published, dated the day after tomorrow
    assert beacon(client, later.id).status_code == 404
    assert counts(db) == {}
    freeze(monkeypatch, clock.now() + timedelta(days=3))
    assert beacon(client, later.id).status_code == 204
    assert counts(db) == {(later.id, "view"): 1}


def test_an_article_taken_back_to_draft_stops_counting(client: FlaskClient, db: Session) -> None:
    article = make_article(db)
    assert beacon(client, article.id).status_code == 204
    article.status = "draft"
    db.commit()
    assert beacon(client, article.id, "banner_click").status_code == 404
    assert counts(db) == {(article.id, "view"): 1}


def test_published_means_what_the_article_page_shows(client: FlaskClient, db: Session) -> None:
    """counters asks service.is_published, the rule of the article page itself."""
    shown, draft, later = (
        make_article(db),
        make_article(db, published=False),
        make_article(db, days_ago=-1),
    )
    for article, visible in ((shown, True), (draft, False), (later, False)):
        assert service.is_published(db, article.id) is visible
        page = client.get(f"/articles/{article.slug}")
        assert (page.status_code == 200) is visible
        assert (beacon(client, article.id).status_code == 204) is visible


@pytest.mark.parametrize("kind", ["click", "View", "view.", "pageview", "banner", "notice"])
def test_unknown_event_names_count_nothing(client: FlaskClient, db: Session, kind: str) -> None:
    article = make_article(db)
    assert beacon(client, article.id, kind).status_code == 404
    assert counts(db) == {} and seen(db) == []


@pytest.mark.parametrize(
    "zero", ["\u0660", "\uff10", "\u0966"], ids=["arabic", "fullwidth", "devanagari"]
)
def test_an_id_in_other_digits_is_no_article(client: FlaskClient, db: Session, zero: str) -> None:
    """ "١", "１" and "१" are 1 to Python's int(); the address takes ASCII digits only."""
    article = make_article(db)
    digits = str(article.id).translate({ord("0") + n: ord(zero) + n for n in range(10)})
    assert beacon(client, article.id).status_code == 204  # the ASCII spelling counts
    response = client.get(f"/e/{quote(digits)}/banner_click")
    assert response.status_code == 404
    assert counts(db) == {(article.id, "view"): 1}


# --- one per visitor, article, event and day -------------------------------------------------


def headers_but_request_id(response: TestResponse) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.items() if k != "X-Request-ID")


def test_a_repeat_is_answered_like_the_first_and_counts_nothing(
    client: FlaskClient, db: Session
) -> None:
    article = make_article(db)
    first = beacon(client, article.id)
    repeats = [beacon(client, article.id) for _ in range(5)]
    for again in repeats:
        assert again.status_code == first.status_code == 204
        assert again.get_data() == first.get_data() == b""
        # Every response carries its own request id; nothing else may differ.
        assert headers_but_request_id(again) == headers_but_request_id(first)
    assert counts(db) == {(article.id, "view"): 1}


def test_each_event_and_article_counts_once_per_visitor(client: FlaskClient, db: Session) -> None:
    first, second = make_article(db), make_article(db)
    for _ in range(3):
        for article in (first, second):
            for kind in ("view", "banner_impression", "banner_click"):
                assert beacon(client, article.id, kind).status_code == 204
    assert counts(db) == {
        (a.id, k): 1 for a in (first, second) for k in ("view", "banner_impression", "banner_click")
    }


def test_other_addresses_and_other_browsers_are_other_visitors(
    client: FlaskClient, db: Session
) -> None:
    article = make_article(db)
    for address, browser in (
        (ADDRESS, BROWSER),
        ("203.0.113.8", BROWSER),  # a neighbour
        (ADDRESS, "Mozilla/5.0 (iPhone) Safari/605.1"),  # the same office, a phone
        ("2001:db8::1", BROWSER),
        (ADDRESS, BROWSER),  # the first again
    ):
        assert beacon(client, article.id, address=address, browser=browser).status_code == 204
    assert counts(db) == {(article.id, "view"): 4}


def test_the_same_visitor_counts_again_the_next_day(
    client: FlaskClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    article = make_article(db, days_ago=3650)  # published before the frozen days below
    evening = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    freeze(monkeypatch, evening)
    beacon(client, article.id)
    beacon(client, article.id)
    freeze(monkeypatch, evening + timedelta(minutes=2))
    beacon(client, article.id)
    db.rollback()
    by_day = {r.day: r.count for r in db.scalars(select(DailyCount))}
    assert by_day == {date(2026, 3, 1): 1, date(2026, 3, 2): 1}


def test_the_visitor_is_a_keyed_daily_hash_never_the_address(
    client: FlaskClient, db: Session
) -> None:
    article = make_article(db)
    beacon(client, article.id)
    [row] = seen(db)
    day = clock.now().date()
    assert len(row.visitor) == 32 and int(row.visitor, 16) >= 0
    message = f"beacon-visitor\n{day.isoformat()}\n{ADDRESS}\n{BROWSER}".encode()
    keyed = hmac.new(TEST_SECRET.encode(), message, hashlib.sha256).hexdigest()[:32]
    assert row.visitor == keyed
    assert row.visitor == counters.visitor(TEST_SECRET, day, ADDRESS, BROWSER)
    # without the key it is not the plain hash, and another key or day gives another visitor
    assert row.visitor != hashlib.sha256(message).hexdigest()[:32]
    assert counters.visitor("another key", day, ADDRESS, BROWSER) != row.visitor
    assert counters.visitor(TEST_SECRET, day + timedelta(days=1), ADDRESS, BROWSER) != row.visitor
    stored = " ".join(str(getattr(row, c.key)) for c in BeaconSeen.__table__.columns)
    assert ADDRESS not in stored and BROWSER not in stored


def test_behind_a_trusted_proxy_the_visitor_is_the_forwarded_address(
    database_url: str, tmp_path: Path
) -> None:
    """With PROXY_HOPS=1 the address is the proxy's X-Forwarded-For, as for the rate limit:
    two readers behind one proxy are two visitors."""
    settings = settings_from(database_url, tmp_path / "instance", PROXY_HOPS="1")
    with extra_app(settings) as app:
        db = app.extensions["db.sessionmaker"]()
        try:
            article = make_article(db)
            client = app.test_client()
            for reader in ("198.51.100.1", "198.51.100.2", "198.51.100.1"):
                response = client.get(
                    f"/e/{article.id}/view",
                    headers={"X-Forwarded-For": reader, "User-Agent": BROWSER},
                )
                assert response.status_code == 204
            assert counts(db) == {(article.id, "view"): 2}
        finally:
            db.close()


def test_concurrent_repeats_of_one_visitor_count_once(app: Flask, db: Session) -> None:
    """Twelve identical beacons at once (PostgreSQL: concurrent inserts of one key): one count,
    no error."""
    article = make_article(db)
    sessionmaker = app.extensions["db.sessionmaker"]
    barrier = threading.Barrier(12)
    errors: list[BaseException] = []

    def send() -> None:
        session = sessionmaker()
        try:
            barrier.wait(timeout=30)
            counters.count_beacon(session, article.id, "view", secret=TEST_SECRET,
                                  address=ADDRESS, user_agent=BROWSER)  # fmt: skip
            session.commit()
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)
            session.rollback()
        finally:
            session.close()

    threads = [threading.Thread(target=send) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert counts(db) == {(article.id, "view"): 1}
    assert len(seen(db)) == 1


# --- rate limit ------------------------------------------------------------------------------


def test_one_address_posing_as_many_browsers_is_stopped(client: FlaskClient, db: Session) -> None:
    """A script that makes itself a new visitor each time (a new User-Agent) is held to the
    per-address limit, with a 429; other addresses are still counted."""
    article = make_article(db)
    statuses = [beacon(client, article.id, browser=f"script {n}").status_code for n in range(130)]
    assert statuses.count(204) == 120 and statuses[120:] == [429] * 10
    assert beacon(client, article.id, address="203.0.113.99").status_code == 204
    assert counts(db) == {(article.id, "view"): 121}


def test_the_limit_also_holds_over_a_day() -> None:
    """The beacon's limit names a daily cap beside the per-minute one."""
    from patrons.articles.views import BEACON_LIMIT

    assert "per minute" in BEACON_LIMIT and "per day" in BEACON_LIMIT


# --- the reports count the same --------------------------------------------------------------


def test_the_reports_count_what_the_beacon_counted(client: FlaskClient, db: Session) -> None:
    article = make_article(db)
    for address in (ADDRESS, ADDRESS, "203.0.113.8", ADDRESS):
        beacon(client, article.id, address=address)
    beacon(client, article.id, "banner_click")
    beacon(client, article.id, "banner_click")
    today = clock.now().date()
    db.rollback()
    totals = {r.kind: int(r.total) for r in queries.counter_totals(db, today, today)}
    assert totals == {"view": 2, "banner_click": 1}
    start = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    [row] = queries.article_funnel(db, today, today, start, start + timedelta(days=1))
    assert (row.views, row.banner_clicks) == (2, 1)


# --- pruning ---------------------------------------------------------------------------------


def test_prune_keeps_today_and_yesterday(db: Session) -> None:
    article = make_article(db)
    today = date(2026, 3, 10)
    for days_ago in range(5):
        db.add(BeaconSeen(day=today - timedelta(days=days_ago), article_id=article.id,
                          kind="view", visitor=f"{days_ago:032x}"))  # fmt: skip
    db.commit()
    assert counters.prune_seen(db, today) == 3
    db.commit()
    assert sorted(r.day for r in seen(db)) == [today - timedelta(days=1), today]
    assert counters.prune_seen(db, today) == 0


def test_prune_beacons_command(app: Flask, db: Session) -> None:
    article = make_article(db)
    old = clock.now().date() - timedelta(days=3)
    db.add(BeaconSeen(day=old, article_id=article.id, kind="view", visitor="a" * 32))
    db.commit()
    client = app.test_client()
    beacon(client, article.id)
    result = app.test_cli_runner().invoke(args=["prune-beacons"])
    assert result.exit_code == 0, result.output
    assert "Pruned 1 beacon visitor rows." in result.output
    assert [r.day for r in seen(db)] == [clock.now().date()]
