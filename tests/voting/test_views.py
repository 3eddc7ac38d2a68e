"""/topics and the voting routes over the test client, named after the threats where they
prove a defence (docs/security.md threats 16-18 and 27)."""

from __future__ import annotations

from types import SimpleNamespace

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.models import Topic, User
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_article, make_patron, make_proposal, make_round
from tests.voting.conftest import vote_rows


def post(client: FlaskClient, path: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={"csrf_token": csrf_token(client), **data})


def as_patron(client: FlaskClient, user: User) -> FlaskClient:
    login(client, user.email, PASSWORD)
    return client


def test_everyone_sees_the_open_round_and_the_rule(
    client: FlaskClient, world: SimpleNamespace
) -> None:
    page = client.get("/topics")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Rivers" in text and "Libraries" in text
    assert "do not buy coverage" in text
    assert "refunded or disputed" in text
    assert "/support" in text and "Become a patron" in text
    assert "Back this topic" not in text


def test_members_are_invited_to_become_patrons(client: FlaskClient, world: SimpleNamespace) -> None:
    login(client, world.member.email, PASSWORD)
    text = client.get("/topics").get_data(as_text=True)
    assert "Become a patron" in text and "Back this topic" not in text


def test_a_patron_backs_three_is_refused_a_fourth_and_withdraws(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    as_patron(client, world.patron)
    assert "You have 3 of 3 votes left" in client.get("/topics").get_data(as_text=True)
    for topic_id in world.topics[:3]:
        response = post(client, f"/topics/{topic_id}/vote")
        assert response.status_code == 303
        assert response.headers["Location"].endswith(f"/topics#topic-{topic_id}")
    refused = post(client, f"/topics/{world.topics[3]}/vote")
    assert refused.status_code == 409
    assert "used all 3 of your votes" in refused.get_data(as_text=True)
    assert vote_rows(db, user_id=world.patron.id) == 3
    assert post(client, f"/topics/{world.topics[0]}/withdraw").status_code == 303
    assert post(client, f"/topics/{world.topics[3]}/vote").status_code == 303
    page = client.get("/topics").get_data(as_text=True)
    assert page.count("Withdraw my vote") == 3 and "You have 0 of 3 votes left" in page


def test_threat_16_a_double_submitted_vote_is_one_vote(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    as_patron(client, world.patron)
    codes = [post(client, f"/topics/{world.topics[0]}/vote").status_code for _ in range(3)]
    assert codes == [303, 303, 303]
    assert vote_rows(db) == 1
    assert "You already back this topic" in client.get("/topics").get_data(as_text=True)


def test_threat_17_anonymous_votes_go_to_the_login_page(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    response = post(client, f"/topics/{world.topics[0]}/vote")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert vote_rows(db) == 0


def test_threat_17_members_lapsed_and_unpaid_patrons_are_refused(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    lapsed = make_patron(db, status="canceled")
    for user in (world.member, world.unpaid, lapsed):
        with client.session_transaction() as session:
            session.clear()
        login(client, user.email, PASSWORD)
        response = post(client, f"/topics/{world.topics[0]}/vote")
        assert response.status_code == 403, user.email
        assert "payment has gone through" in response.get_data(as_text=True)
    assert vote_rows(db) == 0


def test_threat_18_no_form_field_votes_for_someone_else(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    other = make_patron(db)
    as_patron(client, world.patron)
    response = post(client, f"/topics/{world.topics[0]}/vote", user_id=str(other.id),
                    patron_id=str(other.id), round_id="999")  # fmt: skip
    assert response.status_code == 303
    assert vote_rows(db, user_id=world.patron.id) == 1
    assert vote_rows(db, user_id=other.id) == 0
    post(client, f"/topics/{world.topics[0]}/vote", user_id=str(other.id))
    # withdrawing names a topic, never a voter: another patron's vote stays
    client2 = client.application.test_client()
    as_patron(client2, other)
    post(client2, f"/topics/{world.topics[1]}/vote")
    post(client, f"/topics/{world.topics[1]}/withdraw", user_id=str(other.id))
    assert vote_rows(db, user_id=other.id) == 1


def test_threat_27_votes_need_the_csrf_token(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    as_patron(client, world.patron)
    for path in (f"/topics/{world.topics[0]}/vote", f"/topics/{world.topics[0]}/withdraw",
                 "/topics/propose"):  # fmt: skip
        assert client.post(path, data={"title": "x"}).status_code == 400
    assert vote_rows(db) == 0


def test_votes_on_closed_or_unknown_topics(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    past = make_round(db, opens_in_days=-10, closes_in_days=-8, topics=("Old",))
    as_patron(client, world.patron)
    assert post(client, f"/topics/{past.topics[0].id}/vote").status_code == 409
    assert post(client, f"/topics/{past.topics[0].id}/withdraw").status_code == 409
    assert post(client, "/topics/999999/vote").status_code == 404
    assert post(client, "/topics/99999999999/vote").status_code == 404
    assert vote_rows(db) == 0


def test_live_counts_are_a_per_round_setting(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    as_patron(client, world.patron)
    post(client, f"/topics/{world.topics[0]}/vote")
    assert "1 vote" not in client.get("/topics").get_data(as_text=True)
    live = make_round(db, title="Live round", topics=("Counted",), live_counts=True)
    post(client, f"/topics/{live.topics[0].id}/vote")
    text = client.get("/topics").get_data(as_text=True)
    assert "1 vote" in text and "Vote counts are shown when the round closes" in text


def test_patrons_propose_and_see_what_became_of_it(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    as_patron(client, world.patron)
    response = post(client, "/topics/propose", title="Night buses", description="They stopped.")
    assert response.status_code == 303
    topic = db.scalar(select(Topic).where(Topic.title == "Night buses"))
    assert topic is not None and topic.proposed_by_id == world.patron.id
    assert topic.status == "proposed"
    text = client.get("/topics").get_data(as_text=True)
    assert "Night buses" in text and "waiting for the newsroom" in text
    too_long = post(client, "/topics/propose", title="x" * 121)
    assert too_long.status_code == 400
    assert db.scalar(select(Topic).where(Topic.title == "x" * 121)) is None


def test_members_cannot_propose(client: FlaskClient, db: Session, world: SimpleNamespace) -> None:
    login(client, world.member.email, PASSWORD)
    assert post(client, "/topics/propose", title="Mine").status_code == 403
    assert db.scalar(select(Topic).where(Topic.title == "Mine")) is None


def test_proposals_are_rate_limited(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    as_patron(client, world.patron)
    codes = [post(client, "/topics/propose", title=f"Idea {n}").status_code for n in range(7)]
    assert codes[:5] == [303] * 5
    assert 429 in codes[5:]


def test_declined_proposals_show_their_reason_publicly(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    proposal = make_proposal(db, world.patron, title="Celebrity gossip")
    proposal.status, proposal.decline_reason = "declined", "Not our beat."
    db.commit()
    text = client.get("/topics").get_data(as_text=True)
    assert "Celebrity gossip" in text and "Not our beat." in text


def test_past_rounds_and_the_article_page_say_what_patrons_chose(
    client: FlaskClient, db: Session
) -> None:
    past = make_round(db, title="Spring round", opens_in_days=-10, closes_in_days=-8,
                      topics=("Ferries", "Silos"))  # fmt: skip
    article = make_article(db, title="The last ferry")
    ferry = past.topics[0]
    ferry.status = "covered"
    from patrons.models import TopicArticle

    db.add(TopicArticle(topic_id=ferry.id, article_id=article.id))
    db.commit()
    text = client.get("/topics/rounds").get_data(as_text=True)
    assert "Spring round" in text and "Ferries" in text and "The last ferry" in text
    assert "Silos" not in text  # not chosen: only on the round's own page
    page = client.get(f"/topics/rounds/{past.id}")
    assert page.status_code == 200 and "Silos" in page.get_data(as_text=True)
    article_page = client.get(f"/articles/{article.slug}").get_data(as_text=True)
    assert "Patrons chose this story" in article_page
    assert f"/topics/rounds/{past.id}" in article_page


def test_a_round_not_open_yet_has_no_public_page(client: FlaskClient, db: Session) -> None:
    later = make_round(db, opens_in_days=2, closes_in_days=4)
    assert client.get(f"/topics/rounds/{later.id}").status_code == 404
    assert client.get("/topics/rounds/999999").status_code == 404


def test_topic_titles_from_patrons_are_escaped(
    client: FlaskClient, db: Session, world: SimpleNamespace
) -> None:
    as_patron(client, world.patron)
    payload = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    assert post(client, "/topics/propose", title=payload[:100]).status_code == 303
    text = client.get("/topics").get_data(as_text=True)
    assert "<script>alert(1)" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
