"""The demo data's voting part: an open round, a closed one whose covered topics link demo
articles (and those articles say so), a proposal waiting; a second run adds nothing."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons import demo
from patrons.core import clock
from patrons.models import Round, Topic, TopicArticle


def test_seed_demo_adds_rounds_a_covered_topic_and_a_proposal(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    with app.app_context():
        from patrons.core.db import session

        demo.seed(session)
        session.commit()
        demo.seed(session)
        session.commit()
    now = clock.now()
    rounds = db.scalars(select(Round)).all()
    assert sum(r.is_open(now) for r in rounds) == 1 and sum(r.is_closed(now) for r in rounds) == 1
    assert db.scalar(select(func.count()).select_from(TopicArticle)) == 2
    assert db.scalar(select(func.count()).where(Topic.status == "proposed")) == 1
    page = client.get("/articles/bilyi-brid-ferry-returns").get_data(as_text=True)
    assert "Patrons chose this story" in page
    assert "The ferry crossing at Bilyi Brid" in client.get("/topics/rounds").get_data(as_text=True)
