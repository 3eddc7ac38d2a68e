"""A refund or a dispute recorded from Stripe withdraws the patron's votes in open rounds
(patrons/pledges/records.py apply_charge → voting.service.withdraw_votes_of_user)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.pledges import records
from patrons.pledges.stripe_objects import Charge
from patrons.voting import service
from tests.voting.conftest import vote_rows


@pytest.mark.usefixtures("ctx")
@pytest.mark.parametrize("disputed", [False, True])
def test_a_recorded_refund_or_dispute_withdraws_the_votes(
    db: Session, world: SimpleNamespace, disputed: bool
) -> None:
    for topic_id in world.topics[:2]:
        service.cast_vote(db, world.patron.id, topic_id, clock.now(), 7)
    db.commit()
    invoice = f"in_test{world.patron.id}"  # tests/factories.make_patron's paid invoice
    charge = Charge(id="ch_1", customer_id=None, payment_intent_id=None, invoice_id=invoice,
                    amount=500, amount_refunded=0 if disputed else 500, currency="eur")  # fmt: skip
    assert records.apply_charge(db, charge, disputed=disputed) is not None
    db.commit()
    assert vote_rows(db, user_id=world.patron.id) == 0
