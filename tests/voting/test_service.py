"""The voting rules, called directly (patrons/voting/service.py)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.core.csvexport import neutralise, to_csv
from patrons.models import OutboundEmail, Payment, Pledge, Round, Topic, Vote
from patrons.voting import service
from patrons.voting.service import VotingError
from tests.factories import make_article, make_patron, make_proposal, make_round
from tests.voting.conftest import vote_rows

pytestmark = pytest.mark.usefixtures("ctx")
GRACE = 7


def cast(db: Session, user_id: int, topic_id: int, now=None) -> bool:  # type: ignore[no-untyped-def]
    added = service.cast_vote(db, user_id, topic_id, now or clock.now(), GRACE)
    db.commit()
    return added


def test_a_patron_backs_up_to_the_rounds_number_of_topics(
    db: Session, world: SimpleNamespace
) -> None:
    for topic_id in world.topics[:3]:
        assert cast(db, world.patron.id, topic_id) is True
    with pytest.raises(VotingError) as refused:
        cast(db, world.patron.id, world.topics[3])
    assert refused.value.status == 409
    db.rollback()
    assert vote_rows(db, user_id=world.patron.id) == 3


def test_the_budget_is_the_rounds_own(db: Session) -> None:
    found = make_round(db, topics=("A", "B"), votes_per_patron=1)
    patron = make_patron(db)
    ids = [t.id for t in found.topics]
    cast(db, patron.id, ids[0])
    with pytest.raises(VotingError):
        cast(db, patron.id, ids[1])


def test_a_second_vote_on_a_topic_is_the_same_vote(db: Session, world: SimpleNamespace) -> None:
    assert cast(db, world.patron.id, world.topics[0]) is True
    assert cast(db, world.patron.id, world.topics[0]) is False
    assert vote_rows(db) == 1


def test_withdrawing_frees_a_vote(db: Session, world: SimpleNamespace) -> None:
    for topic_id in world.topics[:3]:
        cast(db, world.patron.id, topic_id)
    assert service.withdraw_vote(db, world.patron.id, world.topics[1], clock.now()) is True
    db.commit()
    assert service.withdraw_vote(db, world.patron.id, world.topics[1], clock.now()) is False
    assert cast(db, world.patron.id, world.topics[3]) is True
    backed = service.votes_of(db, world.patron.id, [world.round.id])
    assert backed == {world.topics[0], world.topics[2], world.topics[3]}


@pytest.mark.parametrize("who", ["member", "unpaid", "staff"])
def test_only_patrons_whose_payment_went_through_vote(
    db: Session, world: SimpleNamespace, who: str
) -> None:
    with pytest.raises(VotingError) as refused:
        cast(db, getattr(world, who).id, world.topics[0])
    assert refused.value.status == 403
    db.rollback()
    assert vote_rows(db) == 0


def test_a_lapsed_patron_cannot_vote(db: Session, world: SimpleNamespace) -> None:
    lapsed = make_patron(db, status="canceled")
    with pytest.raises(VotingError) as refused:
        cast(db, lapsed.id, world.topics[0])
    assert refused.value.status == 403


def test_no_vote_or_withdrawal_after_the_close(db: Session, world: SimpleNamespace) -> None:
    cast(db, world.patron.id, world.topics[0])
    later = world.round.closes_at + timedelta(seconds=1)
    with pytest.raises(VotingError) as refused:
        service.cast_vote(db, world.patron.id, world.topics[1], later, GRACE)
    assert refused.value.status == 409
    with pytest.raises(VotingError):
        service.withdraw_vote(db, world.patron.id, world.topics[0], later)
    db.rollback()
    assert vote_rows(db) == 1


def test_no_vote_before_the_round_opens_or_on_a_topic_outside_a_round(db: Session) -> None:
    early = make_round(db, opens_in_days=1, closes_in_days=5, topics=("Later",))
    patron = make_patron(db)
    proposal = make_proposal(db, patron)
    for topic_id in (early.topics[0].id, proposal.id, 999_999):
        with pytest.raises(VotingError) as refused:
            cast(db, patron.id, topic_id)
        assert refused.value.status == 404


def test_results_freeze_at_the_close(db: Session, world: SimpleNamespace) -> None:
    other = make_patron(db)
    cast(db, world.patron.id, world.topics[0])
    cast(db, other.id, world.topics[0])
    cast(db, other.id, world.topics[1])
    found = db.get(Round, world.round.id)
    after = found.closes_at + timedelta(minutes=1)
    assert service.results(db, found, after, GRACE) == {world.topics[0]: 2, world.topics[1]: 1}
    db.commit()
    assert found.frozen_at == after
    db.delete(other)  # an account deleted after the close leaves the results as they were
    db.commit()
    assert vote_rows(db) == 1
    found = db.get(Round, world.round.id)
    frozen = service.results(db, found, after + timedelta(days=1), GRACE)
    assert (frozen[world.topics[0]], frozen[world.topics[1]]) == (2, 1)


def test_votes_cast_after_closes_at_do_not_count(db: Session, world: SimpleNamespace) -> None:
    found = db.get(Round, world.round.id)
    db.add(Vote(user_id=world.patron.id, topic_id=world.topics[0], round_id=found.id,
                created_at=found.closes_at + timedelta(seconds=1)))  # fmt: skip
    db.commit()
    assert service.vote_counts(db, found) == {}


def first_payment(db: Session, user_id: int) -> Payment:
    return db.scalars(
        select(Payment).join(Pledge, Payment.pledge_id == Pledge.id)
        .where(Pledge.user_id == user_id).order_by(Payment.id)
    ).first()  # type: ignore[return-value]  # fmt: skip


def set_status(db: Session, payment_id: int, status: str) -> None:
    db.get(Payment, payment_id).status = status  # type: ignore[union-attr]
    db.commit()


def test_a_vote_records_the_payment_that_gave_the_right(
    db: Session, world: SimpleNamespace
) -> None:
    cast(db, world.patron.id, world.topics[0])
    vote = db.scalars(select(Vote)).one()
    assert vote.payment_id == first_payment(db, world.patron.id).id


def test_a_refund_or_a_lost_dispute_withdraws_the_votes_of_that_payment_for_good(
    db: Session, world: SimpleNamespace
) -> None:
    cast(db, world.patron.id, world.topics[0])
    cast(db, world.patron.id, world.topics[1])
    other = make_patron(db)
    cast(db, other.id, world.topics[0])
    payment = first_payment(db, world.patron.id).id
    found = db.get(Round, world.round.id)
    for status in ("refunded", "dispute_lost"):
        set_status(db, payment, status)
        assert service.vote_counts(db, found) == {world.topics[0]: 1}  # the other's only
        assert service.turnout(db, found, clock.now(), GRACE).voters == 1
        assert vote_rows(db, user_id=world.patron.id) == 2  # nothing deleted: derived
        with pytest.raises(VotingError) as refused:  # no rights left to vote with
            cast(db, world.patron.id, world.topics[2])
        assert refused.value.status == 403
        db.rollback()


def test_an_open_dispute_suspends_the_votes_and_a_won_one_restores_them(
    db: Session, world: SimpleNamespace
) -> None:
    cast(db, world.patron.id, world.topics[0])
    payment = first_payment(db, world.patron.id).id
    found = db.get(Round, world.round.id)
    set_status(db, payment, "disputed")
    assert service.vote_counts(db, found) == {}
    set_status(db, payment, "dispute_won")
    assert service.vote_counts(db, found) == {world.topics[0]: 1}
    set_status(db, payment, "partially_refunded")  # a partial refund keeps the vote
    assert service.vote_counts(db, found) == {world.topics[0]: 1}


def test_votes_withdrawn_by_a_refund_stay_spent_after_a_new_payment(
    db: Session, world: SimpleNamespace
) -> None:
    """The defect: after a refund of one of two invoices the patron could vote again at once."""
    for topic_id in world.topics[:3]:
        cast(db, world.patron.id, topic_id)
    refunded = first_payment(db, world.patron.id)
    db.add(Payment(pledge_id=refunded.pledge_id, stripe_invoice_id="in_second", amount=500,
                   currency="EUR", status="paid", created_at=clock.now(),
                   paid_at=clock.now() + timedelta(seconds=1)))  # fmt: skip
    refunded.status = "refunded"
    db.commit()
    found = db.get(Round, world.round.id)
    assert service.vote_counts(db, found) == {}
    for topic_id in (world.topics[3], world.topics[0]):  # the budget; the same topic
        with pytest.raises(VotingError) as refused:
            cast(db, world.patron.id, topic_id)
        assert refused.value.status == 409
        db.rollback()
    with pytest.raises(VotingError) as refused:  # a vote that does not count is spent
        service.withdraw_vote(db, world.patron.id, world.topics[0], clock.now())
    assert refused.value.status == 409
    db.rollback()
    assert service.votes_of(db, world.patron.id, [found.id]) == set()
    assert vote_rows(db, user_id=world.patron.id) == 3


def test_a_refund_after_the_close_leaves_the_frozen_results(
    db: Session, world: SimpleNamespace
) -> None:
    cast(db, world.patron.id, world.topics[0])
    found = db.get(Round, world.round.id)
    after = found.closes_at + timedelta(hours=1)
    assert service.results(db, found, after, GRACE) == {world.topics[0]: 1}
    db.commit()
    set_status(db, first_payment(db, world.patron.id).id, "refunded")
    assert service.results(db, db.get(Round, found.id), after, GRACE) == {
        t: (1 if t == world.topics[0] else 0) for t in world.topics
    }


def test_votes_cast_before_votes_recorded_a_payment_count(
    db: Session, world: SimpleNamespace
) -> None:
    db.add(Vote(user_id=world.member.id, topic_id=world.topics[0], round_id=world.round.id,
                created_at=clock.now()))  # fmt: skip
    db.commit()
    assert service.vote_counts(db, db.get(Round, world.round.id)) == {world.topics[0]: 1}


def test_proposals_are_length_limited_and_for_patrons(db: Session, world: SimpleNamespace) -> None:
    now = clock.now()
    with pytest.raises(VotingError) as refused:
        service.propose_topic(db, world.member.id, "Bus routes", "", now, GRACE)
    assert refused.value.status == 403
    for title, description in (("", ""), ("x" * 121, ""), ("Fine", "y" * 601), ("   ", "")):
        with pytest.raises(VotingError):
            service.propose_topic(db, world.patron.id, title, description, now, GRACE)
    topic = service.propose_topic(db, world.patron.id, "  Bus   routes ", " Why ", now, GRACE)
    assert (topic.title, topic.description, topic.status, topic.round_id) == (
        "Bus routes", "Why", "proposed", None)  # fmt: skip


def test_a_patron_has_a_few_proposals_waiting_at_most(db: Session, world: SimpleNamespace) -> None:
    now = clock.now()
    for n in range(service.WAITING_PROPOSALS_MAX):
        service.propose_topic(db, world.patron.id, f"Topic {n}", "", now, GRACE)
    with pytest.raises(VotingError) as refused:
        service.propose_topic(db, world.patron.id, "One more", "", now, GRACE)
    assert refused.value.status == 409


def test_approving_a_proposal_puts_it_in_a_round(db: Session, world: SimpleNamespace) -> None:
    proposal = make_proposal(db, world.patron)
    service.approve_topic(db, proposal.id, world.round.id, clock.now())
    db.commit()
    assert (proposal.status, proposal.round_id) == ("in_round", world.round.id)
    assert cast(db, world.patron.id, proposal.id) is True
    with pytest.raises(VotingError):  # approved already
        service.approve_topic(db, proposal.id, world.round.id, clock.now())


def test_a_proposal_cannot_go_into_a_closed_round(db: Session, world: SimpleNamespace) -> None:
    past = make_round(db, opens_in_days=-10, closes_in_days=-8)
    proposal = make_proposal(db, world.patron)
    with pytest.raises(VotingError):
        service.approve_topic(db, proposal.id, past.id, clock.now())


def test_declining_needs_a_public_reason(db: Session, world: SimpleNamespace) -> None:
    proposal = make_proposal(db, world.patron)
    with pytest.raises(VotingError):
        service.decline_topic(db, proposal.id, "   ")
    with pytest.raises(VotingError):
        service.decline_topic(db, proposal.id, "r" * 501)
    service.decline_topic(db, proposal.id, "We covered this last month.")
    db.commit()
    assert (proposal.status, proposal.decline_reason) == ("declined", "We covered this last month.")
    assert [t.id for t in service.declined_topics(db)] == [proposal.id]


def test_merging_moves_votes_without_giving_anyone_two(db: Session, world: SimpleNamespace) -> None:
    kept, duplicate = world.topics[0], world.topics[1]
    both, only_dup, only_kept = world.patron, make_patron(db), make_patron(db)
    for user, topic_id in (
        (both, kept),
        (both, duplicate),
        (only_dup, duplicate),
        (only_kept, kept),
    ):
        cast(db, user.id, topic_id)
    moved = service.merge_topic(db, duplicate, kept, clock.now())
    db.commit()
    assert moved == 1
    assert vote_rows(db, topic_id=kept) == 3
    assert vote_rows(db, topic_id=duplicate) == 0
    assert vote_rows(db, user_id=both.id) == 1
    topic = db.get(Topic, duplicate)
    assert (topic.status, topic.merged_into_id) == ("merged", kept)
    with pytest.raises(VotingError):  # a merged topic takes no votes
        cast(db, only_dup.id, duplicate)


def test_merges_that_would_mix_rounds_or_touch_frozen_results_are_refused(
    db: Session, world: SimpleNamespace
) -> None:
    other = make_round(db, topics=("Elsewhere",))
    past = make_round(db, opens_in_days=-10, closes_in_days=-8, topics=("Old", "Older"))
    now = clock.now()
    for duplicate, kept in (
        (world.topics[0], world.topics[0]),
        (world.topics[0], other.topics[0].id),
        (past.topics[0].id, past.topics[1].id),
    ):
        with pytest.raises(VotingError):
            service.merge_topic(db, duplicate, kept, now)
        db.rollback()
    proposal = make_proposal(db, world.patron)
    service.merge_topic(db, proposal.id, world.topics[2], now)  # a proposal into a round topic
    db.commit()
    assert db.get(Topic, proposal.id).status == "merged"


def closed_world(db: Session, world: SimpleNamespace) -> Round:
    cast(db, world.patron.id, world.topics[0])
    found = db.get(Round, world.round.id)
    service.close_round(db, found, clock.now())
    db.commit()
    return found


def test_covering_a_topic_emails_its_voters_once(db: Session, world: SimpleNamespace) -> None:
    other = make_patron(db)
    cast(db, other.id, world.topics[0])
    closed_world(db, world)
    article = make_article(db, title="The river report")
    topic_id = world.topics[0]
    with pytest.raises(VotingError):  # not chosen yet
        service.link_article(db, topic_id, article.slug)
    service.set_topic_status(db, topic_id, "chosen", clock.now())
    with pytest.raises(VotingError):  # no article linked yet
        service.set_topic_status(db, topic_id, "covered", clock.now())
    service.link_article(db, topic_id, f"http://patrons.test/articles/{article.slug}/")
    service.link_article(db, topic_id, article.slug)  # twice is once
    assert service.set_topic_status(db, topic_id, "covered", clock.now()) == 2
    db.commit()
    mails = db.scalars(select(OutboundEmail).where(OutboundEmail.kind == "topic_covered")).all()
    assert sorted(m.to_address for m in mails) == sorted([world.patron.email, other.email])
    assert (
        f"/articles/{article.slug}" in mails[0].text_body
        and "The river report" in mails[0].html_body
    )
    from patrons.articles.service import PatronChoice, patron_choices

    chosen_round = db.get(Topic, topic_id).round
    assert patron_choices(db, article.id) == [PatronChoice(chosen_round.id, chosen_round.title)]
    with pytest.raises(VotingError):  # covered is the end
        service.set_topic_status(db, topic_id, "chosen", clock.now())


def test_topics_are_chosen_only_after_the_close(db: Session, world: SimpleNamespace) -> None:
    with pytest.raises(VotingError):
        service.set_topic_status(db, world.topics[0], "chosen", clock.now())


def test_rounds_are_validated(db: Session, world: SimpleNamespace) -> None:
    now = clock.now()
    draft = service.RoundDraft("R", "", now, now - timedelta(hours=1))
    with pytest.raises(VotingError):
        service.save_round(db, draft, now)
    with pytest.raises(VotingError):
        service.save_round(db, service.RoundDraft("R", "", now, now + timedelta(days=1), 0), now)
    cast(db, world.patron.id, world.topics[0])
    found = db.get(Round, world.round.id)
    fewer = service.RoundDraft("R", "", found.opens_at, found.closes_at, votes_per_patron=2)
    with pytest.raises(VotingError):
        service.save_round(db, fewer, now, found)
    db.rollback()
    created = service.save_round(
        db, service.RoundDraft("New", "Intro", now, now + timedelta(days=3)), now
    )
    assert (created.votes_per_patron, created.live_counts) == (3, False)


def test_turnout_is_voters_over_active_patrons(db: Session, world: SimpleNamespace) -> None:
    make_patron(db)
    make_patron(db, status="past_due")  # within the grace period: eligible
    cast(db, world.patron.id, world.topics[0])
    cast(db, world.patron.id, world.topics[1])
    turnout = service.turnout(db, world.round, clock.now(), GRACE)
    assert (turnout.voters, turnout.eligible) == (1, 3)  # the unpaid patron is not eligible


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    for payload in ("=1+1", "+SUM(A1)", "-2", "@cmd", "\tx", "\rx"):
        assert neutralise(payload) == "'" + payload
    assert neutralise("Rivers") == "Rivers" and neutralise(-3) == -3
    assert to_csv([["=HYPERLINK(1)", 2], ["ok", "-1"]]) == "'=HYPERLINK(1),2\r\nok,'-1\r\n"


def test_the_results_table_neutralises_patron_titles(db: Session, world: SimpleNamespace) -> None:
    db.get(Topic, world.topics[0]).title = "=cmd|' /C calc'!A0"
    db.commit()
    text = to_csv(service.results_table(db, db.get(Round, world.round.id), clock.now(), GRACE))
    assert "'=cmd" in text and ",=cmd" not in text
