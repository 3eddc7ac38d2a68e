"""The reports' share of the demo data: a year of patrons in four currencies joining,
failing and recovering, cancelling; their invoices (a few refunded in full or in part,
disputed, disputes won and lost); a few
unpaid members; attribution to the demo articles; and the articles' daily counters.

Deterministic (a seeded random generator) and made once: running it again changes nothing.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.accounts.passwords import hash_password
from patrons.models import Article, DailyCount, Payment, Pledge, PledgeStatusChange, User
from patrons.models.events import EVENT_KINDS
from patrons.models.reports import ExchangeRate
from patrons.reports import rates

EMAIL = "patron{n}@demo.example.org"
PATRONS = 90
MEMBERS = 40
COUNTER_DAYS = 120
# currency, suggested monthly amounts, weight
CURRENCIES = [
    ("EUR", (300, 500, 1000, 2500), 5),
    ("USD", (300, 500, 1000, 2500), 3),
    ("GBP", (300, 500, 1000, 2000), 1),
    ("UAH", (6000, 15000, 30000), 2),
]
MONTH = timedelta(days=30)
# made-up rates into euros, for the demo's converted totals
DEMO_RATES = {"USD": Decimal("0.92"), "GBP": Decimal("1.17"), "UAH": Decimal("0.022")}


class _Maker:
    def __init__(self, db: Session, now: datetime, articles: list[int]) -> None:
        self.db, self.now, self.articles = db, now, articles
        self.rng = random.Random(2026)  # noqa: S311  (demo data, not secrets)
        self.password = hash_password("demo-patron-password")
        self.invoices = 0

    def source(self) -> tuple[int | None, str | None]:
        if not self.articles or self.rng.random() < 0.35:
            return None, None
        prompt = "notice" if self.rng.random() < 0.25 else "banner"
        return self.rng.choice(self.articles), prompt

    def member(self, n: int, joined: datetime) -> User:
        article_id, prompt = self.source()
        user = User(
            email=EMAIL.format(n=n),
            password_hash=self.password,
            created_at=joined,
            email_verified_at=joined,
            display_name=f"Demo patron {n}",
            source_article_id=article_id,
            source_prompt=prompt,
        )
        self.db.add(user)
        self.db.flush()
        return user

    def change(self, pledge: Pledge, old: str | None, new: str, at: datetime) -> None:
        self.db.add(
            PledgeStatusChange(
                pledge_id=pledge.id,
                from_status=old,
                to_status=new,
                changed_at=at,
                source="webhook",
                amount=pledge.amount,
            )
        )
        pledge.status, pledge.updated_at = new, at

    def invoice(
        self, pledge: Pledge, at: datetime, paid_at: datetime | None, failed: bool
    ) -> Payment:
        self.invoices += 1
        payment = Payment(
            pledge_id=pledge.id,
            stripe_invoice_id=f"in_demo{pledge.id}_{self.invoices}",
            amount=pledge.amount,
            currency=pledge.currency,
            status="paid" if paid_at else "failed",
            amount_refunded=0,
            created_at=at,
            paid_at=paid_at,
            failure_notified_attempt=1 if failed else 0,
        )
        if paid_at:
            self.after_payment(payment, self.rng.random())
        self.db.add(payment)
        return payment

    @staticmethod
    def after_payment(payment: Payment, draw: float) -> None:
        """What becomes of a few paid invoices: refunded in full or in part, disputed (still
        open, won or lost), each with the amounts the ledger keeps."""
        amount = payment.amount
        if draw < 0.02:
            payment.status, payment.amount_refunded = "refunded", amount
        elif draw < 0.035:
            payment.status, payment.amount_refunded = "partially_refunded", amount // 2
        elif draw < 0.045:
            payment.status, payment.dispute_status = "dispute_lost", "lost"
            payment.dispute_amount = payment.amount_disputed = amount
        elif draw < 0.055:
            payment.status, payment.dispute_status = "dispute_won", "won"
            payment.dispute_amount = amount
        elif draw < 0.06:
            payment.status, payment.dispute_status = "disputed", "needs_response"
            payment.dispute_amount = amount

    def patron(self, n: int) -> None:
        joined = self.now - timedelta(days=self.rng.uniform(5, 360))
        user = self.member(n, joined)
        currency, amounts, _w = self.rng.choices(CURRENCIES, [c[2] for c in CURRENCIES])[0]
        pledge = Pledge(
            user_id=user.id,
            amount=self.rng.choice(amounts),
            currency=currency,
            status="pending",
            created_at=joined,
            plan_id=None,
            stripe_customer_id=f"cus_demo{n}",
            stripe_subscription_id=f"sub_demo{n}",
            source_article_id=user.source_article_id,
            source_prompt=user.source_prompt,
        )
        self.db.add(pledge)
        self.db.flush()
        start = joined + timedelta(minutes=2)
        self.change(pledge, "pending", "active", start)
        self.invoice(pledge, start, start, failed=False)
        pledge.started_at = start
        renewal = start + MONTH
        leaves = self.rng.random() < 0.2
        while renewal < self.now:
            if leaves and self.rng.random() < 0.25:
                self.change(pledge, pledge.status, "canceled", renewal)
                pledge.ended_at = renewal
                break
            if self.rng.random() < 0.08:  # a failed renewal: recovered, or the end
                self.change(pledge, "active", "past_due", renewal)
                retry = renewal + timedelta(days=self.rng.choice((2, 3, 5, 12)))
                if retry > self.now:
                    self.invoice(pledge, renewal, None, failed=True)
                    break
                if self.rng.random() < 0.7:
                    self.invoice(pledge, renewal, retry, failed=True)
                    self.change(pledge, "past_due", "active", retry)
                else:
                    self.invoice(pledge, renewal, None, failed=True)
                    self.change(pledge, "past_due", "canceled", retry)
                    pledge.ended_at = retry
                    break
            else:
                self.invoice(pledge, renewal, renewal, failed=False)
            renewal += MONTH
        pledge.current_period_end = renewal

    def counters(self) -> None:
        today = self.now.date()
        for rank, article_id in enumerate(self.articles):
            popularity = 400 / (rank + 1)
            for day in range(COUNTER_DAYS):
                views = int(self.rng.uniform(0.5, 1.5) * popularity)
                if views == 0:
                    continue
                counts = {
                    "view": views,
                    "banner_impression": int(views * 0.8),
                    "banner_click": int(views * self.rng.uniform(0.0, 0.03)),
                    "banner_dismiss": int(views * 0.05),
                    "notice_impression": int(views * 0.22),
                    "notice_click": int(views * self.rng.uniform(0.0, 0.01)),
                    "notice_dismiss": int(views * 0.12),
                }
                for kind in EVENT_KINDS:
                    if counts[kind]:
                        self.db.add(
                            DailyCount(
                                article_id=article_id,
                                day=today - timedelta(days=day),
                                kind=kind,
                                count=counts[kind],
                            )
                        )


def seed(db: Session, now: datetime, created: list[str]) -> None:
    """Add the demo patrons, members and counters unless they exist; note what was made."""
    if db.scalar(select(func.count()).select_from(User).where(User.email == EMAIL.format(n=1))):
        return
    articles = list(
        db.scalars(
            select(Article.id)
            .where(Article.status == "published")
            .order_by(Article.published_at.desc())
        )
    )
    maker = _Maker(db, now, articles)
    for n in range(1, PATRONS + 1):
        maker.patron(n)
    for n in range(PATRONS + 1, PATRONS + MEMBERS + 1):
        maker.member(n, now - timedelta(days=maker.rng.uniform(1, 360)))
    if not db.scalar(select(func.count()).select_from(DailyCount)):
        maker.counters()
    if not db.scalar(select(func.count()).select_from(ExchangeRate)):
        rates.save(db, "EUR", DEMO_RATES, now)
    db.flush()
    created.append(
        f"{PATRONS} demo patrons with a year of payments, {MEMBERS} members, article counters"
    )
