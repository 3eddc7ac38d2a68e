"""The staff voting pages: rounds, topics, the proposals queue, outcomes, turnout and CSV."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import OutboundEmail, Round, Topic
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_article, make_patron, make_proposal, make_round
from tests.voting.conftest import vote_rows
from tests.voting.test_views import as_patron, post


@pytest.fixture
def staff(client: FlaskClient, world: SimpleNamespace) -> FlaskClient:
    login(client, world.staff.email, PASSWORD)
    return client


def local(value) -> str:  # type: ignore[no-untyped-def]
    return value.strftime("%Y-%m-%dT%H:%M")


def test_staff_open_a_round_with_three_votes_by_default(staff: FlaskClient, db: Session) -> None:
    assert staff.get("/staff/voting/rounds/new").status_code == 200
    now = clock.now()
    response = post(staff, "/staff/voting/rounds/new", title="Autumn round", introduction="Pick.",
                    opens_at=local(now), closes_at=local(now + timedelta(days=7)),
                    votes_per_patron="3")  # fmt: skip
    assert response.status_code == 303
    found = db.scalar(select(Round).where(Round.title == "Autumn round"))
    assert found is not None and (found.votes_per_patron, found.live_counts) == (3, False)
    assert post(staff, f"/staff/voting/rounds/{found.id}/topics", title="Grain silos",
                description="Who owns them?").status_code == 303  # fmt: skip
    page = staff.get(f"/staff/voting/rounds/{found.id}").get_data(as_text=True)
    assert "Grain silos" in page and "Turnout" in page


def test_bad_round_input_is_a_400_and_writes_nothing(staff: FlaskClient, db: Session) -> None:
    now = clock.now()
    before = db.scalar(select(func.count()).select_from(Round))
    for data in (
        {
            "title": "R",
            "opens_at": local(now),
            "closes_at": local(now - timedelta(days=1)),
            "votes_per_patron": "3",
        },
        {
            "title": "R",
            "opens_at": local(now),
            "closes_at": local(now + timedelta(days=1)),
            "votes_per_patron": "0",
        },
        {
            "title": "",
            "opens_at": local(now),
            "closes_at": local(now + timedelta(days=1)),
            "votes_per_patron": "3",
        },
        {"title": "R", "opens_at": "tomorrow", "closes_at": "", "votes_per_patron": "x"},
    ):
        assert post(staff, "/staff/voting/rounds/new", **data).status_code == 400, data
    db.rollback()
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Round)) == before


def test_the_moderation_queue(staff: FlaskClient, db: Session, world: SimpleNamespace) -> None:
    approve, merge, decline = (make_proposal(db, world.patron, title=t) for t in ("A", "B", "C"))
    assert "A" in staff.get("/staff/voting/proposals").get_data(as_text=True)
    assert post(staff, f"/staff/voting/topics/{approve.id}/approve",
                round_id=str(world.round.id)).status_code == 303  # fmt: skip
    assert post(staff, f"/staff/voting/topics/{merge.id}/merge",
                into_topic_id=str(world.topics[0])).status_code == 303  # fmt: skip
    assert post(staff, f"/staff/voting/topics/{decline.id}/decline", reason="").status_code == 400
    assert post(staff, f"/staff/voting/topics/{decline.id}/decline",
                reason="Covered last week.").status_code == 303  # fmt: skip
    db.rollback()
    db.expire_all()
    statuses = {t.title: (t.status, t.round_id) for t in db.scalars(select(Topic).where(
        Topic.id.in_([approve.id, merge.id, decline.id])))}  # fmt: skip
    assert statuses == {"A": ("in_round", world.round.id), "B": ("merged", None),
                        "C": ("declined", None)}  # fmt: skip
    # a second decision on the same proposal is refused, not applied twice
    again = post(staff, f"/staff/voting/topics/{decline.id}/decline", reason="Again.")
    assert again.status_code == 409
    assert (
        post(staff, f"/staff/voting/topics/{approve.id}/approve", round_id="999999").status_code
        == 400
    )


def test_merging_in_a_round_keeps_one_vote_per_patron(
    staff: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    patron = as_patron(staff.application.test_client(), world.patron)
    post(patron, f"/topics/{world.topics[0]}/vote")
    post(patron, f"/topics/{world.topics[1]}/vote")
    response = post(staff, f"/staff/voting/topics/{world.topics[1]}/merge",
                    into_topic_id=str(world.topics[0]), back="round")  # fmt: skip
    assert (
        response.status_code == 303 and f"/rounds/{world.round.id}" in response.headers["Location"]
    )
    assert vote_rows(db, user_id=world.patron.id) == 1


def test_close_choose_link_and_cover_emails_the_voters(
    staff: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    patron = as_patron(staff.application.test_client(), world.patron)
    post(patron, f"/topics/{world.topics[0]}/vote")
    article = make_article(db, title="Rivers, reported")
    rid, tid = world.round.id, world.topics[0]
    assert post(staff, f"/staff/voting/rounds/{rid}/close").status_code == 303
    assert post(patron, f"/topics/{world.topics[1]}/vote").status_code == 409
    assert post(staff, f"/staff/voting/topics/{tid}/status", status="covered").status_code == 409
    assert post(staff, f"/staff/voting/topics/{tid}/status", status="chosen").status_code == 303
    assert post(staff, f"/staff/voting/topics/{tid}/articles", article="no-such").status_code == 400
    assert post(staff, f"/staff/voting/topics/{tid}/articles",
                article=f"/articles/{article.slug}").status_code == 303  # fmt: skip
    assert post(staff, f"/staff/voting/topics/{tid}/status", status="covered").status_code == 303
    db.rollback()
    db.expire_all()
    mails = db.scalars(select(OutboundEmail).where(OutboundEmail.kind == "topic_covered")).all()
    assert [m.to_address for m in mails] == [world.patron.email]
    assert db.get(Topic, tid).status == "covered"
    assert post(staff, f"/staff/voting/topics/{tid}/status", status="bogus").status_code == 400


def test_turnout_and_the_csv_export(
    staff: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    make_patron(db)
    topic = db.get(Topic, world.topics[0])
    topic.title = '=HYPERLINK("http://evil")'
    db.commit()
    patron = as_patron(staff.application.test_client(), world.patron)
    post(patron, f"/topics/{world.topics[0]}/vote")
    page = staff.get(f"/staff/voting/rounds/{world.round.id}").get_data(as_text=True)
    assert "1 of 2 active patrons voted (50%)" in page
    csv = staff.get(f"/staff/voting/rounds/{world.round.id}/results.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "attachment" in csv.headers["Content-Disposition"]
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0] == "round_id,round,topic_id,topic,status,votes"
    assert lines[1].startswith(f"{world.round.id},") and lines[1].endswith(",in_round,1")
    assert "\"'=HYPERLINK" in lines[1]


@pytest.mark.parametrize("who", ["member", "patron"])
def test_the_voting_staff_pages_are_staff_only(
    client: FlaskClient, world: SimpleNamespace, who: str
) -> None:
    login(client, getattr(world, who).email, PASSWORD)
    token = csrf_token(client)
    assert client.get("/staff/voting").status_code == 403
    assert client.get(f"/staff/voting/rounds/{world.round.id}/results.csv").status_code == 403
    assert client.post(f"/staff/voting/rounds/{world.round.id}/close",
                       data={"csrf_token": token}).status_code == 403  # fmt: skip


def test_staff_pages_render(staff: FlaskClient, db: Session, world: SimpleNamespace) -> None:
    make_round(db, title="Done", opens_in_days=-9, closes_in_days=-2, topics=("Old",))
    for path in (
        "/staff/voting",
        "/staff/voting/proposals",
        f"/staff/voting/rounds/{world.round.id}",
    ):
        assert staff.get(path).status_code == 200, path


def test_a_closed_round_freezes_on_first_read_and_refuses_changes(
    staff: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    past = make_round(db, opens_in_days=-9, closes_in_days=-2, topics=("Old",))
    now = clock.now()
    refused = post(staff, f"/staff/voting/rounds/{past.id}", title="Changed", votes_per_patron="3",
                   opens_at=local(now), closes_at=local(now + timedelta(days=3)))  # fmt: skip
    assert refused.status_code == 409
    db.rollback()
    db.expire_all()
    found = db.get(Round, past.id)
    assert (found.title, found.frozen_at) == ("What should we cover next?", None)  # no write
    assert staff.get(f"/staff/voting/rounds/{past.id}").status_code == 200
    db.expire_all()
    assert db.get(Round, past.id).frozen_at is not None
    assert db.get(Topic, past.topics[0].id).final_votes == 0
