"""Through the real pledge flow (offline Stripe, localstripe): a reader who came from the
notice's link and then pledges has the pledge attributed to that article and prompt."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.models import Pledge
from tests.factories import make_article, make_user
from tests.pledges.conftest import localstripe, localstripe_url, settings  # noqa: F401  (fixtures)
from tests.pledges.test_pledge_flow import Reader


def test_a_pledge_started_after_the_notice_link_is_attributed_to_it(
    app: Flask,
    db: Session,
    localstripe: str,  # noqa: F811  (the fixture)
) -> None:
    article = make_article(db, title="Library generator", slug="library")
    reader = Reader(app, make_user(db), localstripe)
    assert reader.client.get("/support?src=notice&article=library").status_code == 200
    response = reader.pledge("EUR", 500)
    assert response.status_code == 200, response.get_json()
    db.expire_all()
    pledge = db.scalars(select(Pledge).where(Pledge.user_id == reader.user.id)).one()
    assert pledge.status == "active" and pledge.started_at is not None
    assert (pledge.source_article_id, pledge.source_prompt) == (article.id, "notice")


def test_without_a_prompt_the_pledge_is_not_attributed(
    app: Flask,
    db: Session,
    localstripe: str,  # noqa: F811  (the fixture)
) -> None:
    reader = Reader(app, make_user(db), localstripe)
    assert reader.pledge("EUR", 500).status_code == 200
    db.expire_all()
    pledge = db.scalars(select(Pledge).where(Pledge.user_id == reader.user.id)).one()
    assert (pledge.source_article_id, pledge.source_prompt) == (None, None)
