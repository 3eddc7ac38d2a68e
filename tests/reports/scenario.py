"""A small world whose report figures are worked out by hand in test_figures.py.

Now is 2026-04-15 12:00 UTC; the grace period is 7 days; the range is 2026-01-01..04-15;
rates into EUR: 1 USD = 0.90 EUR, 1 GBP = 1.20 EUR.

    A  EUR 5, active 01-10 (banner on X); renewal 02-10 failed, paid 02-20 (10 days: after
       the grace period); upgraded to EUR 10 on 03-20; paid 03-10, 04-10 (EUR 10).
    B  USD 10, active 01-20 (notice on Y); renewal 02-20 failed, paid 02-23 (within grace);
       03-20 paid, then refunded in full.
    C  GBP 3, active 02-05; renewal 03-05 failed for good; Stripe cancels it 03-20.
    D  EUR 3, active 02-15; 03-15 paid, then disputed; cancels, ends 04-02.
    E  EUR 25, active since 2025-12-01 (before the range); renewal 04-01 failed, still
       past due now (14 days: past the grace period).
    F  signed up 02-10 from the banner on X; pledge abandoned before paying.
    G  signed up 03-01, from nowhere known; no pledge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from patrons.models import (
    CorrectionSuggestion,
    DailyCount,
    Payment,
    Pledge,
    PledgeStatusChange,
    Round,
    Topic,
    Vote,
)
from patrons.reports import rates
from tests.factories import make_article, make_user

NOW = datetime(2026, 4, 15, 12, 0, tzinfo=UTC)
GRACE_DAYS = 7
FIRST, LAST = date(2026, 1, 1), date(2026, 4, 15)


def at(month: int, day: int, year: int = 2026, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=UTC)


@dataclass
class World:
    users: dict[str, int]
    pledges: dict[str, int]
    articles: dict[str, int]
    rounds: dict[str, int]


class _Builder:
    def __init__(self, db: Session) -> None:
        self.db = db
        self.invoices = 0

    def pledge(self, user_id: int, amount: int, currency: str, **kw: object) -> Pledge:
        pledge = Pledge(user_id=user_id, amount=amount, currency=currency, status="pending",
                        created_at=kw.pop("created_at"), **kw)  # fmt: skip
        self.db.add(pledge)
        self.db.flush()
        return pledge

    def change(self, pledge: Pledge, old: str | None, new: str, when: datetime,
               amount: int | None = None) -> None:  # fmt: skip
        self.db.add(PledgeStatusChange(pledge_id=pledge.id, from_status=old, to_status=new,
                                       changed_at=when, source="webhook",
                                       amount=amount or pledge.amount))  # fmt: skip
        pledge.status = new

    def pay(self, pledge: Pledge, amount: int, created: datetime, paid: datetime | None,
            failed: bool = False, **kw: object) -> None:  # fmt: skip
        self.invoices += 1
        self.db.add(Payment(pledge_id=pledge.id, stripe_invoice_id=f"in_s{self.invoices}",
                            amount=amount, currency=pledge.currency,
                            status=kw.pop("status", "paid" if paid else "failed"),
                            created_at=created, paid_at=paid,
                            failure_notified_attempt=1 if failed else 0, **kw))  # fmt: skip


def build(db: Session) -> World:
    x = make_article(db, title="Ferry timetable", slug="ferry")
    y = make_article(db, title="Library generator", slug="library")
    b = _Builder(db)
    users = {
        "A": make_user(db, created_at=at(1, 9), source_article_id=x.id, source_prompt="banner"),
        "B": make_user(db, created_at=at(1, 19), source_article_id=y.id, source_prompt="notice"),
        "C": make_user(db, created_at=at(2, 4)),
        "D": make_user(db, created_at=at(2, 14)),
        "E": make_user(db, created_at=at(11, 30, 2025)),
        "F": make_user(db, created_at=at(2, 10), source_article_id=x.id, source_prompt="banner"),
        "G": make_user(db, created_at=at(3, 1)),
    }
    uid = {k: u.id for k, u in users.items()}

    a = b.pledge(uid["A"], 500, "EUR", created_at=at(1, 10, hour=8), started_at=at(1, 10),
                 source_article_id=x.id, source_prompt="banner")  # fmt: skip
    b.change(a, None, "pending", at(1, 10, hour=8))
    b.change(a, "pending", "active", at(1, 10))
    b.pay(a, 500, at(1, 10), at(1, 10))
    b.change(a, "active", "past_due", at(2, 10))
    b.pay(a, 500, at(2, 10), at(2, 20), failed=True)
    b.change(a, "past_due", "active", at(2, 20))
    b.pay(a, 500, at(3, 10), at(3, 10))
    b.change(a, "active", "active", at(3, 20), amount=1000)  # the upgrade
    a.amount = 1000
    b.pay(a, 1000, at(4, 10), at(4, 10))
    a.current_period_end = at(5, 10)

    p_b = b.pledge(uid["B"], 1000, "USD", created_at=at(1, 20, hour=8), started_at=at(1, 20),
                   source_article_id=y.id, source_prompt="notice")  # fmt: skip
    b.change(p_b, "pending", "active", at(1, 20))
    b.pay(p_b, 1000, at(1, 20), at(1, 20))
    b.change(p_b, "active", "past_due", at(2, 20))
    b.pay(p_b, 1000, at(2, 20), at(2, 23), failed=True)
    b.change(p_b, "past_due", "active", at(2, 23))
    b.pay(p_b, 1000, at(3, 20), at(3, 20), status="refunded", amount_refunded=1000)
    p_b.current_period_end = at(4, 20)

    c = b.pledge(uid["C"], 300, "GBP", created_at=at(2, 5, hour=8), started_at=at(2, 5))
    b.change(c, "pending", "active", at(2, 5))
    b.pay(c, 300, at(2, 5), at(2, 5))
    b.change(c, "active", "past_due", at(3, 5))
    b.pay(c, 300, at(3, 5), None, failed=True)
    b.change(c, "past_due", "canceled", at(3, 20))
    c.current_period_end, c.ended_at = at(3, 5), at(3, 20)

    d = b.pledge(uid["D"], 300, "EUR", created_at=at(2, 15, hour=8), started_at=at(2, 15))
    b.change(d, "pending", "active", at(2, 15))
    b.pay(d, 300, at(2, 15), at(2, 15))
    b.pay(d, 300, at(3, 15), at(3, 15), status="disputed")
    b.change(d, "active", "canceled", at(4, 2))
    d.current_period_end, d.ended_at = at(4, 2), at(4, 2)

    e = b.pledge(uid["E"], 2500, "EUR", created_at=at(12, 1, 2025, 8), started_at=at(12, 1, 2025))
    b.change(e, "pending", "active", at(12, 1, 2025))
    for month, year in ((12, 2025), (1, 2026), (2, 2026), (3, 2026)):
        b.pay(e, 2500, at(month, 1, year), at(month, 1, year))
    b.change(e, "active", "past_due", at(4, 1))
    b.pay(e, 2500, at(4, 1), None, failed=True)
    e.current_period_end = at(4, 1)

    f = b.pledge(uid["F"], 500, "EUR", created_at=at(2, 10, hour=10),
                 source_article_id=x.id, source_prompt="banner")  # fmt: skip
    b.change(f, "pending", "abandoned", at(2, 10, hour=11))

    for article, day, counts in (
        (x, date(2026, 1, 5), {"view": 1000, "banner_impression": 800, "banner_click": 20,
                               "notice_impression": 200, "notice_click": 5,
                               "notice_dismiss": 50}),
        (x, date(2025, 12, 31), {"view": 999, "banner_click": 99}),  # before the range
        (y, date(2026, 3, 1), {"view": 400, "banner_impression": 300, "banner_click": 4,
                               "notice_impression": 100, "notice_click": 10,
                               "notice_dismiss": 30}),
    ):  # fmt: skip
        for kind, count in counts.items():
            db.add(DailyCount(article_id=article.id, day=day, kind=kind, count=count))

    winter = Round(title="Winter round", opens_at=at(2, 1), closes_at=at(2, 28, hour=12),
                   frozen_at=at(2, 28, hour=12))  # fmt: skip
    spring = Round(title="Spring round", opens_at=at(4, 10), closes_at=at(4, 30))
    db.add_all([winter, spring])
    db.flush()
    t1 = Topic(round_id=winter.id, title="Bus routes", status="chosen", final_votes=2)
    t2 = Topic(round_id=winter.id, title="Old wells", status="in_round", final_votes=1)
    t3 = Topic(round_id=spring.id, title="River ferry", status="in_round")
    db.add_all([t1, t2, t3])
    db.flush()
    for user, topic, when in (("A", t1, at(2, 2)), ("B", t1, at(2, 3)), ("B", t2, at(2, 3)),
                              ("A", t3, at(4, 11))):  # fmt: skip
        db.add(Vote(user_id=uid[user], topic_id=topic.id, round_id=topic.round_id,
                    created_at=when))  # fmt: skip

    for article_id, status, when in (
        (x.id, "open", at(1, 15)), (x.id, "open", at(2, 1)), (x.id, "resolved", at(3, 1)),
        (y.id, "declined", at(3, 2)), (None, "open", at(3, 3)),
        (x.id, "open", at(12, 20, 2025)),  # before the range
    ):  # fmt: skip
        db.add(CorrectionSuggestion(article_id=article_id, selection="typo", status=status,
                                    created_at=when))  # fmt: skip

    rates.save(db, "EUR", {"USD": Decimal("0.90"), "GBP": Decimal("1.20")}, at(1, 1))
    db.commit()
    return World(
        uid,
        {"A": a.id, "B": p_b.id, "C": c.id, "D": d.id, "E": e.id, "F": f.id},
        {"X": x.id, "Y": y.id},
        {"winter": winter.id, "spring": spring.id},
    )
