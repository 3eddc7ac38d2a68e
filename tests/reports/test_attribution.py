"""Sign-ups and pledges remember the article and the prompt that brought the reader; anything
unknown is ignored, never an error."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons import attribution
from patrons.core import clock
from patrons.models import Pledge, User
from tests.conftest import csrf_token
from tests.factories import make_article, make_user


def source_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(attribution.COOKIE)
    return cookie.value if cookie else None


def signup(client: FlaskClient, email: str = "new.reader@example.org"):  # type: ignore[no-untyped-def]
    data = {"email": email, "password": "long enough password", "display_name": "",
            "csrf_token": csrf_token(client)}  # fmt: skip
    return client.post("/signup", data=data)


def test_the_banner_link_is_remembered_and_the_sign_up_takes_it(
    client: FlaskClient, db: Session
) -> None:
    article = make_article(db, title="Ferry", slug="ferry")
    response = client.get("/support?src=banner&article=ferry")
    assert response.status_code == 200
    assert source_cookie(client) == f"{article.id}:banner"
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert signup(client).status_code == 303
    user = db.scalars(select(User).where(User.email == "new.reader@example.org")).one()
    assert (user.source_article_id, user.source_prompt) == (article.id, "banner")


def test_the_notice_link_too(client: FlaskClient, db: Session) -> None:
    article = make_article(db, slug="library")
    client.get("/support?src=notice&article=library")
    assert source_cookie(client) == f"{article.id}:notice"


@pytest.mark.parametrize(
    "query",
    [
        "src=popup&article=ferry",  # not a prompt
        "src=banner&article=no-such-article",
        "src=banner&article=draft-one",  # not published
        "src=banner",
        "article=ferry",
        "src=banner&article=" + "x" * 500,
        "src[]=banner&article=ferry",
    ],
)
def test_unknown_sources_are_ignored(client: FlaskClient, db: Session, query: str) -> None:
    make_article(db, slug="ferry")
    make_article(db, slug="draft-one", published=False)
    response = client.get(f"/support?{query}")
    assert response.status_code == 200
    assert source_cookie(client) is None
    signup(client)
    user = db.scalars(select(User)).one()
    assert (user.source_article_id, user.source_prompt) == (None, None)


@pytest.mark.parametrize("value", ["abc", "1:popup", "999999:banner", "-1:banner", ":banner",
                                   "99999999999999999999:banner", "1:banner:extra"])  # fmt: skip
def test_a_forged_cookie_is_ignored(client: FlaskClient, db: Session, value: str) -> None:
    make_article(db, slug="ferry")
    client.set_cookie(attribution.COOKIE, value)
    assert signup(client).status_code == 303
    user = db.scalars(select(User)).one()
    assert (user.source_article_id, user.source_prompt) == (None, None)


def _pledge(db: Session, user: User, **kw: object) -> Pledge:
    kw.setdefault("created_at", clock.now())
    pledge = Pledge(user_id=user.id, amount=500, currency="EUR", status="pending", **kw)
    db.add(pledge)
    db.commit()
    return pledge


class Cookies(dict):  # type: ignore[type-arg]
    pass


def test_a_pledge_takes_the_cookie_else_the_sign_up_source(app: Flask, db: Session) -> None:
    x, y = make_article(db, slug="x"), make_article(db, slug="y")
    reader = make_user(db, source_article_id=x.id, source_prompt="banner")
    first = _pledge(db, reader)
    attribution.stamp_pledge(db, first.id, reader, Cookies({attribution.COOKIE: f"{y.id}:notice"}))
    assert (first.source_article_id, first.source_prompt) == (y.id, "notice")
    first.status = "canceled"
    db.commit()
    second = _pledge(db, reader, created_at=clock.now() + timedelta(seconds=1))
    attribution.stamp_pledge(db, second.id, reader, Cookies())  # no cookie: the sign-up's
    assert (second.source_article_id, second.source_prompt) == (x.id, "banner")


def test_a_pledge_keeps_its_source_and_others_pledges_are_left_alone(
    app: Flask, db: Session
) -> None:
    x, y = make_article(db, slug="x"), make_article(db, slug="y")
    reader, other = make_user(db), make_user(db)
    mine = _pledge(db, reader, source_article_id=x.id, source_prompt="banner")
    theirs = _pledge(db, other)
    cookies = Cookies({attribution.COOKIE: f"{y.id}:notice"})
    attribution.stamp_pledge(db, mine.id, reader, cookies)
    attribution.stamp_pledge(db, theirs.id, reader, cookies)
    assert (mine.source_article_id, mine.source_prompt) == (x.id, "banner")
    assert (theirs.source_article_id, theirs.source_prompt) == (None, None)
