"""The "topic covered" mail's links: from the SITE_URL setting, never the request's Host
header (docs/security.md); the link helpers agree with the routes."""

from __future__ import annotations

from types import SimpleNamespace

from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import OutboundEmail
from patrons.voting import outcomes, service
from tests.conftest import login
from tests.factories import PASSWORD, make_article
from tests.voting.test_service import closed_world
from tests.voting.test_views import as_patron, post


def test_the_link_helpers_are_the_routes(app: Flask) -> None:
    with app.test_request_context():
        assert outcomes.article_link("https://news.example", "ferry-2") == (
            "https://news.example" + url_for("articles.article", slug="ferry-2")
        )
        assert outcomes.round_link("https://news.example", 7) == (
            "https://news.example" + url_for("voting.round_page", round_id=7)
        )


def covered_mail(db: Session) -> OutboundEmail:
    db.rollback()
    return db.scalars(select(OutboundEmail).where(OutboundEmail.kind == "topic_covered")).one()


def test_the_mail_links_start_from_site_url_whatever_the_host(
    app: Flask, db: Session, world: SimpleNamespace
) -> None:
    with app.test_request_context(base_url="http://evil.example"):
        found = closed_world(db, world)
        article = make_article(db, title="The river report")
        topic_id = world.topics[0]
        service.set_topic_status(db, topic_id, "chosen", clock.now())
        service.link_article(db, topic_id, article.slug)
        told = service.set_topic_status(
            db, topic_id, "covered", clock.now(), site_url="https://news.example"
        )
        db.commit()
    assert told == 1
    mail = covered_mail(db)
    for body in (mail.text_body, mail.html_body):
        assert f"https://news.example/articles/{article.slug}" in body
        assert f"https://news.example/topics/rounds/{found.id}" in body
        assert "evil.example" not in body


def test_the_staff_page_passes_site_url(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    patron = as_patron(client.application.test_client(), world.patron)
    post(patron, f"/topics/{world.topics[0]}/vote")
    login(client, world.staff.email, PASSWORD)
    article = make_article(db, title="Rivers, reported")
    rid, tid = world.round.id, world.topics[0]
    assert post(client, f"/staff/voting/rounds/{rid}/close").status_code == 303
    assert post(client, f"/staff/voting/topics/{tid}/status", status="chosen").status_code == 303
    assert post(client, f"/staff/voting/topics/{tid}/articles",
                article=article.slug).status_code == 303  # fmt: skip
    assert post(client, f"/staff/voting/topics/{tid}/status", status="covered").status_code == 303
    mail = covered_mail(db)
    assert f"http://patrons.test/articles/{article.slug}" in mail.text_body  # SITE_URL in tests
    assert f"http://patrons.test/topics/rounds/{rid}" in mail.text_body
    assert "localhost" not in mail.text_body  # the test client's Host
