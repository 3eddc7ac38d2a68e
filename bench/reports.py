"""The staff reports dashboard on PostgreSQL at the size of a real outlet, against the same
dashboard at a tenth of that size (the baseline, measured in the same run) and at 30 %.

    python -m bench reports          # or: make bench BENCH=reports

Each size is bulk-loaded with COPY into a scratch database (its public schema is dropped and
migrated first): 100,000 members, 40,000 patrons with their status histories, 1,000,000
payments and 5,000,000 page-view and prompt events — stored as the app stores them, as
aggregate per-article, per-day, per-kind counters (`daily_counts`, about 490,000 rows whose
counts sum to 5,000,000) — plus articles, voting rounds with votes (the newest round
open) and correction suggestions. After VACUUM ANALYZE (what autovacuum does in
production), GET /staff/reports (the default range, the last twelve months: every query,
the template, the charts) is timed in-process through the Flask test client, signed in as
staff, after the work `flask worker` keeps current: its update-reports job (the daily
rollup of the settled days, which production builds once and then adds to hourly) and its
close-rounds job (a closed round's results frozen). Then the first request (cold
templates), then BENCH_REPEATS (7) timed requests; their median is reported.

It prints the median at 10 %, 30 % and 100 % and the ratio 100 % / 10 %: the dashboard
should stay under 150 ms at full size (GOAL_MS) and grow less than linearly (a ratio under
10).

Settings (environment): BENCH_DATABASE_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/bench_reports — wiped: use one that holds
nothing else), BENCH_REPEATS, BENCH_SCALE (1.0: multiply every size, e.g. 0.2 for a quick run),
BENCH_VOTE_PAYMENTS (1: each vote records its rights payment, as the app records it; off by
default while voting's `counted()` makes that take minutes: see Loader.rights_payment).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import harness

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_reports"
FULL = {
    "members": 100_000,
    "patrons": 40_000,
    "payments": 1_000_000,
    "events": 5_000_000,
    "articles": 5_000,
    "rounds": 36,
    "corrections": 20_000,
}
STEPS = (("10 %", 0.1), ("30 %", 0.3), ("100 %", 1.0))  # the last is the full size
GOAL_MS = 150  # the dashboard's median at full size
DAYS_PER_ARTICLE = 14  # an article is read mostly in its first two weeks
EVENT_SHARE = {
    "view": 0.55,
    "banner_impression": 0.28,
    "notice_impression": 0.08,
    "banner_dismiss": 0.04,
    "notice_dismiss": 0.03,
    "banner_click": 0.012,
    "notice_click": 0.008,
}
CURRENCIES = [
    ("EUR", (300, 500, 1000, 2500)),
    ("USD", (300, 500, 1000, 2500)),
    ("GBP", (300, 500, 1000, 2000)),
    ("UAH", (6000, 15000, 30000)),
]
MONTH = timedelta(days=30)
STAFF_EMAIL, STAFF_PASSWORD = "bench-staff@example.org", "bench-staff-password"  # noqa: S105


def sizes(scale: float) -> dict[str, int]:
    return {name: max(1, round(n * scale)) for name, n in FULL.items()}


# --- loading -----------------------------------------------------------------------------


def reset(url: str) -> None:
    from sqlalchemy import text

    from bench.article import migrate
    from patrons.core.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate(url)


class Loader:
    """Rows for every table, written with COPY (psycopg's `copy.write_row`)."""

    def __init__(self, conn: Any, size: dict[str, int], now: datetime) -> None:
        self.conn, self.size, self.now = conn, size, now
        self.rng = random.Random(20261127)  # noqa: S311  (benchmark data)
        self.start = now - 48 * MONTH  # four years of history

    def copy(self, table: str, columns: str, rows: Iterator[tuple[Any, ...]]) -> int:
        count = 0
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    def when(self, low: datetime, high: datetime) -> datetime:
        return low + (high - low) * self.rng.random()

    def articles(self) -> Iterator[tuple[Any, ...]]:
        self.published = []
        for i in range(1, self.size["articles"] + 1):
            at = self.when(self.start, self.now - timedelta(days=1))
            self.published.append(at)
            yield (
                i,
                f"bench-{i}",
                f"Bench article {i}",
                "",
                "markdown",
                "",
                "",
                "",
                "",
                "",
                "published",
                at,
                at,
                at,
                "",
                "",
                "",
            )

    def members(self) -> Iterator[tuple[Any, ...]]:
        n_articles = self.size["articles"]
        self.joined = []
        for i in range(1, self.size["members"] + 1):
            at = self.when(self.start, self.now - timedelta(hours=1))
            self.joined.append(at)
            source = self.rng.random() < 0.3
            yield (
                i,
                f"member{i}@bench.example.org",
                "x",
                None,
                False,
                at,
                at,
                self.rng.randint(1, n_articles) if source else None,
                (self.rng.choice(("banner", "banner", "banner", "notice")) if source else None),
            )

    def pledges_and_payments(self) -> None:
        """Patrons are the first members; each gets about payments/patrons monthly invoices
        (the total exact), ~8 % of renewals fail (most recovered), ~20 % end cancelled."""
        patrons, target = self.size["patrons"], self.size["payments"]
        counts = [target // patrons] * patrons
        counts[-1] += target - sum(counts)
        for i in range(0, patrons - 1, 2):
            shift = self.rng.randint(-min(20, counts[i] - 1), min(20, counts[i + 1] - 1))
            counts[i] += shift
            counts[i + 1] -= shift
        pledges, changes, payments = [], [], []
        self.paid_ids: dict[int, list[tuple[datetime, int]]] = {}  # pledge → (paid_at, id)
        change_id = payment_id = 0
        for pid, n in enumerate(counts, start=1):
            currency, amounts = CURRENCIES[self.rng.choice((0, 0, 0, 1, 1, 2, 3))]
            amount = self.rng.choice(amounts)
            cancelled = self.rng.random() < 0.2
            end = self.now - (
                self.rng.random() * 6 * MONTH
                if cancelled
                else timedelta(days=self.rng.uniform(0, 29))
            )
            started = end - (n - 1) * MONTH - timedelta(days=1)
            status = "active"
            change_id += 1
            changes.append((change_id, pid, "pending", "active", started, "webhook", amount))
            for k in range(n):
                payment_id += 1
                created = started + k * MONTH
                failed = k > 0 and self.rng.random() < 0.08
                paid = (
                    created + timedelta(days=self.rng.choice((2, 3, 5, 10))) if failed else created
                )
                if paid > self.now:
                    paid = None
                else:
                    self.paid_ids.setdefault(pid, []).append((paid, payment_id))
                payments.append(
                    (
                        payment_id,
                        pid,
                        f"in_b{payment_id}",
                        amount,
                        currency,
                        "paid" if paid else "failed",
                        0,
                        created,
                        paid,
                        1 if failed else 0,
                    )
                )
                if failed:
                    change_id += 1
                    changes.append(
                        (change_id, pid, "active", "past_due", created, "webhook", amount)
                    )
                    if paid:
                        change_id += 1
                        changes.append(
                            (change_id, pid, "past_due", "active", paid, "webhook", amount)
                        )
                    else:
                        status = "past_due"
            if cancelled and status == "active":
                change_id += 1
                changes.append((change_id, pid, "active", "canceled", end, "reader", amount))
                status = "canceled"
            source = self.rng.random() < 0.3
            pledges.append(
                (
                    pid,
                    pid,
                    amount,
                    currency,
                    status,
                    f"cus_b{pid}",
                    f"sub_b{pid}",
                    end + MONTH,
                    started - timedelta(minutes=5),
                    started,
                    end if status == "canceled" else None,
                    False,
                    self.rng.randint(1, self.size["articles"]) if source else None,
                    self.rng.choice(("banner", "notice")) if source else None,
                )
            )
        self.copy(
            "pledges",
            "id, user_id, amount, currency, status, stripe_customer_id, "
            "stripe_subscription_id, current_period_end, created_at, started_at, ended_at, "
            "cancel_at_period_end, source_article_id, source_prompt",
            iter(pledges),
        )
        self.copy(
            "pledge_status_changes",
            "id, pledge_id, from_status, to_status, changed_at, source, amount",
            iter(changes),
        )
        self.copy(
            "payments",
            "id, pledge_id, stripe_invoice_id, amount, currency, status, "
            "amount_refunded, created_at, paid_at, failure_notified_attempt",
            iter(payments),
        )

    def counters(self) -> Iterator[tuple[Any, ...]]:
        total = self.size["events"]
        cells = self.size["articles"] * DAYS_PER_ARTICLE
        per_cell = total / cells
        written = 0
        kinds = list(EVENT_SHARE.items())
        for article_id, published in enumerate(self.published, start=1):
            for day in range(DAYS_PER_ARTICLE):
                weight = 2.0 * (DAYS_PER_ARTICLE - day) / (DAYS_PER_ARTICLE + 1)
                for kind, share in kinds:
                    last = article_id == len(self.published) and day == DAYS_PER_ARTICLE - 1
                    count = (
                        total - written
                        if last and kind == kinds[-1][0]
                        else int(per_cell * weight * share * self.rng.uniform(0.8, 1.2))
                    )
                    if count <= 0:
                        continue
                    written += count
                    yield (article_id, (published + timedelta(days=day)).date(), kind, count)
        self.events_written = written

    def voting(self) -> None:
        rounds, topics, votes = [], [], []
        voters = max(1, self.size["patrons"] // 10)
        vote_id = topic_id = 0
        for r in range(1, self.size["rounds"] + 1):
            opens = self.now - (self.size["rounds"] - r + 1) * MONTH
            if r == self.size["rounds"]:  # the newest round is open
                opens = self.now - timedelta(days=7)
            rounds.append((r, f"Round {r}", "", opens, opens + timedelta(days=14), 3, False))
            first_topic = topic_id + 1
            for _t in range(5):
                topic_id += 1
                topics.append((topic_id, r, f"Topic {topic_id}", "", "in_round", ""))
            cast = opens + timedelta(days=1)
            for user in self.rng.sample(range(1, self.size["patrons"] + 1), voters):
                for topic in self.rng.sample(range(first_topic, topic_id + 1), 2):
                    vote_id += 1
                    votes.append((vote_id, user, topic, r, cast, self.rights_payment(user, cast)))
        self.copy(
            "rounds",
            "id, title, introduction, opens_at, closes_at, votes_per_patron, live_counts",
            iter(rounds),
        )
        self.copy(
            "topics", "id, round_id, title, description, status, decline_reason", iter(topics)
        )
        self.copy("votes", "id, user_id, topic_id, round_id, created_at, payment_id", iter(votes))

    def rights_payment(self, pledge_id: int, at: datetime) -> int | None:
        """The payment a vote cast at `at` records (the latest paid before it: patron i's
        pledge is pledge i), as the app records it; None (as before votes recorded it)
        unless BENCH_VOTE_PAYMENTS=1: voting's `counted()` reads `payment_id IN (every
        counting payment)`, which PostgreSQL runs as a scan of the payments per vote once
        they no longer fit in work_mem (over a minute for one round at full size)."""
        if os.environ.get("BENCH_VOTE_PAYMENTS", "") != "1":
            return None
        paid = [i for when, i in self.paid_ids.get(pledge_id, ()) if when <= at]
        return paid[-1] if paid else None

    def corrections(self) -> Iterator[tuple[Any, ...]]:
        for i in range(1, self.size["corrections"] + 1):
            status = self.rng.choice(("open", "resolved", "resolved", "declined"))
            yield (
                i,
                self.rng.randint(1, self.size["articles"]),
                "typo",
                "",
                "",
                status,
                self.when(self.start, self.now),
            )


def load(url: str, size: dict[str, int], now: datetime) -> dict[str, int]:
    from patrons.core.db import make_engine

    engine = make_engine(url)
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        loader = Loader(conn, size, now)
        loader.copy(
            "articles",
            "id, slug, title, summary, body_format, body_source, body_html, "
            "author_name, editor_name, lead_image_alt, status, published_at, updated_at, "
            "created_at, lead_image_caption, lead_image_credit, canonical_url",
            loader.articles(),
        )
        loader.copy(
            "users",
            "id, email, password_hash, display_name, is_staff, "
            "email_verified_at, created_at, source_article_id, source_prompt",
            loader.members(),
        )
        loader.pledges_and_payments()
        counter_rows = loader.copy(
            "daily_counts", "article_id, day, kind, count", loader.counters()
        )
        loader.voting()
        loader.copy(
            "correction_suggestions",
            "id, article_id, selection, context, comment, status, created_at",
            loader.corrections(),
        )
        with conn.cursor() as cur:
            for table in (
                "articles",
                "users",
                "pledges",
                "pledge_status_changes",
                "payments",
                "rounds",
                "topics",
                "votes",
                "correction_suggestions",
            ):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
        return {"daily_counts rows": counter_rows, "events": loader.events_written}
    finally:
        raw.close()
        engine.dispose()


# --- timing ------------------------------------------------------------------------------


def worker_jobs(settings: Any) -> None:
    """What `flask worker` keeps current (patrons/worker/jobs.py): update-reports (the rollup
    brought up to date) and close-rounds (each closed round's results frozen; none of these
    closed within the days its voters are mailed)."""
    from patrons.core import clock
    from patrons.core.db import session
    from patrons.reports import rollup
    from patrons.voting import closing

    rollup.update(session, clock.now(), settings.pledge_grace_days)
    session.commit()
    while closing.close_due_rounds(
        session, clock.now(), settings.pledge_grace_days, settings.site_url
    )["rounds"]:
        pass
    session.commit()


def time_dashboard(url: str, repeats: int) -> list[float]:
    """The worker's jobs done (`worker_jobs`), then the first request's time (cold
    templates) and each of the `repeats` requests after it."""
    from patrons import create_app
    from patrons.accounts import auth
    from patrons.core.config import Settings

    with tempfile.TemporaryDirectory() as instance:
        settings = Settings.from_env(
            {
                "PATRONS_ENV": "testing",
                "DATABASE_URL": url,
                "PATRONS_INSTANCE": instance,
                "SECRET_KEY": "bench-secret-key-that-is-long-enough-for-the-checks",
            }
        )
        app = create_app(settings)
        with app.app_context():
            from patrons.core.db import session

            auth.create_or_promote_staff(session, STAFF_EMAIL, STAFF_PASSWORD)
            session.commit()
            worker_jobs(settings)
        client = app.test_client()
        token = client.get("/csrf-token").get_json()["token"]
        answer = client.post(
            "/login", data={"email": STAFF_EMAIL, "password": STAFF_PASSWORD, "csrf_token": token}
        )
        if answer.status_code != 302:
            raise SystemExit(f"could not sign in as staff: {answer.status_code}")
        timings = []
        for _attempt in range(repeats + 1):
            started = time.perf_counter()
            response = client.get("/staff/reports")
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise SystemExit(f"/staff/reports answered {response.status_code}")
            timings.append(elapsed * 1000)
        app.extensions["db.engine"].dispose()
    return timings


def main() -> int:
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    if not url.startswith("postgresql"):
        print(
            "bench reports needs PostgreSQL (BENCH_DATABASE_URL=postgresql+psycopg://...)",
            file=sys.stderr,
        )
        return 2
    repeats = harness.env_int("BENCH_REPEATS", 7)
    scale = float(os.environ.get("BENCH_SCALE", "1") or 1)
    now = datetime.now(UTC)
    results: dict[str, Any] = {"environment": harness.environment(), "sizes": {}}
    medians = {}
    for label, factor in STEPS:
        size = sizes(factor * scale)
        reset(url)
        started = time.perf_counter()
        loaded = load(url, size, now)
        load_seconds = time.perf_counter() - started
        cold, *timings = time_dashboard(url, repeats)
        medians[label] = statistics.median(timings)
        print(
            f"{label:>5}: {size['members']:,} members, {size['patrons']:,} patrons, "
            f"{size['payments']:,} payments, {loaded['events']:,} events in "
            f"{loaded['daily_counts rows']:,} daily_counts rows; loaded in {load_seconds:.0f} s",
            flush=True,
        )
        print(
            f"       dashboard: median {medians[label]:.0f} ms "
            f"(min {min(timings):.0f}, max {max(timings):.0f}, {repeats} requests); "
            f"first request {cold:.0f} ms (cold templates; rollup built before)",
            flush=True,
        )
        results["sizes"][label] = {
            **size,
            **loaded,
            "timings_ms": timings,
            "first_request_ms": cold,
            "median_ms": medians[label],
            "load_seconds": load_seconds,
        }
    full, tenth = medians[STEPS[-1][0]], medians[STEPS[0][0]]
    ratio = full / tenth
    print(
        f"ratio 100 % / 10 %: {ratio:.2f} (linear growth would be 10; goal: under {GOAL_MS} ms "
        f"at full size: {'met' if full < GOAL_MS else 'NOT met'})"
    )
    results["ratio"] = ratio
    results["scale"] = scale
    what = "full size" if scale == 1 else f"BENCH_SCALE {scale:g} (no goal in ms)"
    harness.headline(
        f"GET /staff/reports median, {what} vs a tenth of it",
        full,
        "ms",
        tenth,
        goal=f"<= {GOAL_MS}" if scale == 1 else None,  # the goal is the full size's
        ratio_goal="< 10",
    )
    path = harness.write_result("reports", results)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
