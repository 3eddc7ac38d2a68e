"""64 patrons voting and withdrawing at once through `/topics/<id>/vote|withdraw` on PostgreSQL.

The app runs under gunicorn as in production (bench/wsgi.py). Each patron is one client
thread with its own signed-in session; it backs and withdraws topics of one open round in a
random order, only ever sending what is valid for it (a vote within the budget, a withdrawal
of a vote it holds), so it knows exactly which votes it should hold at the end. The database
must then hold exactly those rows: the rows lost (expected, not there) and the rows
duplicated (there twice, or there without being expected) are printed and must be 0.

The baseline is a bare Flask app under the same gunicorn settings whose routes do the same
writes with none of the rules: one `INSERT ... ON CONFLICT DO NOTHING` or `DELETE` on a
scratch table, no session, CSRF, patron check or lock. The ratio shows what the rules cost.

    python -m bench votes            # or: make bench BENCH=votes

Settings (environment): BENCH_DATABASE_URL, else TEST_DATABASE_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/patrons_bench (a scratch database: it is
migrated, and the rows a run adds are deleted after it). BENCH_PATRONS (64), BENCH_OPS (40
votes and withdrawals per patron: under the app's per-patron limit of 60 a minute),
BENCH_TOPICS (8), BENCH_ROUNDS (3), BENCH_WORKERS / BENCH_THREADS / BENCH_WORKER_CLASS.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import secrets
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from bench import harness
from bench.article import migrate, server_env

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/patrons_bench"
READY_PATH = "/baseline/ready"
BASELINE_TABLE = "bench_votes_baseline"
PASSWORD = "bench voting passphrase"  # noqa: S105  (throwaway accounts, deleted after)
BUDGET = 3


# --- the baseline server ---------------------------------------------------------------


def baseline_app():  # type: ignore[no-untyped-def]
    """gunicorn 'bench.votes:baseline_app()': the same writes without the rules."""
    from flask import Flask
    from sqlalchemy import text

    from patrons.core.db import make_engine

    app = Flask("bench_votes_baseline")
    engine = make_engine(os.environ["DATABASE_URL"])
    insert = text(f"INSERT INTO {BASELINE_TABLE} (user_id, topic_id) VALUES (:u, :t) "  # noqa: S608
                  "ON CONFLICT DO NOTHING")  # fmt: skip
    remove = text(f"DELETE FROM {BASELINE_TABLE} WHERE user_id = :u AND topic_id = :t")  # noqa: S608

    @app.get(READY_PATH)
    def ready() -> str:
        return "ok"

    @app.post("/baseline/<int:user_id>/<int:topic_id>/<any(vote, withdraw):action>")
    def write(user_id: int, topic_id: int, action: str):  # type: ignore[no-untyped-def]
        with engine.begin() as conn:
            conn.execute(insert if action == "vote" else remove, {"u": user_id, "t": topic_id})
        return "", 303, {"Location": "/topics"}

    return app


# --- arranging -------------------------------------------------------------------------


@dataclass
class Arranged:
    round_id: int
    topic_ids: list[int]
    users: list[tuple[int, str]]  # id, email


def arrange(url: str, run_id: str, n: int, patrons: int, topics: int) -> Arranged:
    """An open round with `topics` topics, and `patrons` active patrons with a paid invoice."""
    from datetime import timedelta

    from sqlalchemy.orm import Session

    from patrons.accounts.passwords import hash_password
    from patrons.core import clock
    from patrons.core.db import make_engine
    from patrons.models import Payment, Pledge, Round, Topic, User

    now, password_hash = clock.now(), hash_password(PASSWORD)
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            found = Round(title=f"bench {run_id}-{n}", opens_at=now - timedelta(hours=1),
                          closes_at=now + timedelta(days=1), votes_per_patron=BUDGET)  # fmt: skip
            db.add(found)
            db.flush()
            topic_rows = [Topic(round_id=found.id, title=f"bench topic {k}", status="in_round")
                          for k in range(topics)]  # fmt: skip
            db.add_all(topic_rows)
            users = []
            for k in range(patrons):
                user = User(email=f"bench-votes-{run_id}-{n}-{k}@example.org",
                            password_hash=password_hash, email_verified_at=now)  # fmt: skip
                db.add(user)
                db.flush()
                pledge = Pledge(user_id=user.id, amount=500, currency="EUR", status="active",
                                stripe_subscription_id=f"sub_bench_{run_id}_{n}_{k}",
                                current_period_end=now + timedelta(days=20),
                                created_at=now)  # fmt: skip
                db.add(pledge)
                db.flush()
                db.add(Payment(pledge_id=pledge.id, stripe_invoice_id=f"in_bench_{run_id}_{n}_{k}",
                               amount=500, currency="EUR", status="paid", created_at=now,
                               paid_at=now))  # fmt: skip
                users.append((user.id, user.email))
            db.commit()
            return Arranged(found.id, [t.id for t in topic_rows], users)
    finally:
        engine.dispose()


def plan(arranged: Arranged, ops: int, seed: int) -> tuple[dict[int, list[tuple[int, str]]], set]:
    """Each patron's valid sequence of (topic, action), and the votes it leaves."""
    rng = random.Random(seed)
    plans: dict[int, list[tuple[int, str]]] = {}
    final: set[tuple[int, int]] = set()
    for user_id, _email in arranged.users:
        held: set[int] = set()
        steps = []
        for _ in range(ops):
            if held and (len(held) >= BUDGET or rng.random() < 0.4):
                topic = rng.choice(sorted(held))
                held.discard(topic)
                steps.append((topic, "withdraw"))
            else:
                topic = rng.choice([t for t in arranged.topic_ids if t not in held])
                held.add(topic)
                steps.append((topic, "vote"))
        plans[user_id] = steps
        final |= {(user_id, t) for t in held}
    return plans, final


# --- signing in and sending ------------------------------------------------------------


def _cookie(headers: list[tuple[str, str]]) -> str:
    """The session cookie from Set-Cookie, sent back by hand: production marks it Secure,
    and the bench talks plain HTTP on loopback."""
    for name, value in headers:
        if name.lower() == "set-cookie" and "session=" in value:
            return value.split(";", 1)[0]
    raise harness.ServerError("no session cookie in the answer")


def _token(conn: http.client.HTTPConnection, cookie: str) -> tuple[str, str]:
    conn.request("GET", "/csrf-token", headers={"Cookie": cookie} if cookie else {})
    response = conn.getresponse()
    body = response.read().decode()
    cookie = (
        _cookie(response.getheaders())
        if "set-cookie" in str(response.getheaders()).lower()
        else cookie
    )
    match = re.search(r'"token":\s*"([^"]+)"', body)
    if match is None:
        raise harness.ServerError(f"no CSRF token: {body[:200]}")
    return match.group(1), cookie


def sign_in(port: int, email: str) -> tuple[str, str]:
    """(cookie, CSRF token) of a signed-in session."""
    conn = http.client.HTTPConnection(harness.HOST, port, timeout=60)
    try:
        token, cookie = _token(conn, "")
        body = urllib.parse.urlencode({"email": email, "password": PASSWORD, "csrf_token": token})
        conn.request("POST", "/login", body=body, headers={
            "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        response = conn.getresponse()
        response.read()
        if response.status != 302:
            raise harness.ServerError(f"sign-in of {email} answered {response.status}")
        cookie = _cookie(response.getheaders())
        token, cookie = _token(conn, cookie)
        return cookie, token
    finally:
        conn.close()


@dataclass
class Run:
    name: str
    requests: int = 0
    seconds: float = 0.0
    codes: dict[int, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")

    @property
    def errors(self) -> int:
        return sum(count for code, count in self.codes.items() if code != 303)


def send_all(name: str, port: int, plans: dict[int, list[tuple[int, str]]],
             sessions: dict[int, tuple[str, str]] | None) -> Run:  # fmt: skip
    """One thread per patron, all released together; the app's or the baseline's routes."""
    run, lock = Run(name), threading.Lock()
    barrier = threading.Barrier(len(plans) + 1)

    def patron(user_id: int, steps: list[tuple[int, str]]) -> None:
        conn = http.client.HTTPConnection(harness.HOST, port, timeout=60)
        codes: dict[int, int] = {}
        barrier.wait()
        for topic_id, action in steps:
            if sessions is None:
                path, body, headers = f"/baseline/{user_id}/{topic_id}/{action}", "", {}
            else:
                cookie, token = sessions[user_id]
                path, body = (
                    f"/topics/{topic_id}/{action}",
                    f"csrf_token={urllib.parse.quote(token)}",
                )
                headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            codes[response.status] = codes.get(response.status, 0) + 1
        conn.close()
        with lock:
            for code, count in codes.items():
                run.codes[code] = run.codes.get(code, 0) + count
            run.requests += len(steps)

    threads = [threading.Thread(target=patron, args=item) for item in plans.items()]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - started
    return run


def check(
    url: str, arranged: Arranged, expected: set[tuple[int, int]], table: str
) -> tuple[int, int]:
    """(rows lost, rows duplicated or unexpected) for this round's patrons."""
    from sqlalchemy import text

    from patrons.core.db import make_engine

    ids = ",".join(str(u) for u, _ in arranged.users)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT user_id, topic_id FROM {table} "  # noqa: S608
                                     f"WHERE user_id IN ({ids})")).all()  # fmt: skip
    finally:
        engine.dispose()
    found = [(r[0], r[1]) for r in rows]
    lost = len(expected - set(found))
    extra = len(found) - len(set(found)) + len(set(found) - expected)
    return lost, extra


def cleanup(url: str, arranged: list[Arranged], create: bool = False) -> None:
    """Create the baseline's scratch table, or delete everything this run added."""
    from sqlalchemy import delete, select, text

    from patrons.core.db import make_engine
    from patrons.models import Payment, Pledge, Round, Topic, User, Vote

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if create:
                conn.execute(text(f"CREATE TABLE IF NOT EXISTS {BASELINE_TABLE} (user_id integer, "
                                  "topic_id integer, PRIMARY KEY (user_id, topic_id))")
                             )  # fmt: skip
                return
            for batch in arranged:
                users = [u for u, _ in batch.users]
                pledges = select(Pledge.id).where(Pledge.user_id.in_(users))
                for statement in (
                    delete(Vote).where(Vote.round_id == batch.round_id),
                    delete(Topic).where(Topic.round_id == batch.round_id),
                    delete(Round).where(Round.id == batch.round_id),
                    delete(Payment).where(Payment.pledge_id.in_(pledges)),
                    delete(Pledge).where(Pledge.user_id.in_(users)),
                    delete(User).where(User.id.in_(users)),
                ):
                    conn.execute(statement)
            conn.execute(text(f"DROP TABLE IF EXISTS {BASELINE_TABLE}"))
    finally:
        engine.dispose()


def main() -> int:
    gunicorn_settings = harness.GunicornSettings.from_env()
    patrons = harness.env_int("BENCH_PATRONS", 64)
    ops = harness.env_int("BENCH_OPS", 40)
    topics = harness.env_int("BENCH_TOPICS", 8)
    rounds = harness.env_int("BENCH_ROUNDS", 3)
    source = next(
        (n for n in ("BENCH_DATABASE_URL", "TEST_DATABASE_URL") if os.environ.get(n)), None
    )
    url = os.environ[source].strip() if source else DEFAULT_DATABASE_URL
    print(f"Database: {source or 'default'} ({url.split('@')[-1]}); this run adds rows and "
          "deletes them after")  # fmt: skip
    print(f"Servers: gunicorn, {gunicorn_settings.describe()}; {patrons} patrons at once, "
          f"{ops} votes/withdrawals each, {topics} topics, budget {BUDGET}; "
          f"{rounds} rounds")  # fmt: skip
    run_id, arranged = secrets.token_hex(3), []
    app_runs: list[Run] = []
    base_runs: list[Run] = []
    lost = extra = base_lost = base_extra = 0
    with harness.sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "instance").mkdir()
        try:
            migrate(url)
            cleanup(url, [], create=True)
            env = server_env(url, tmpdir / "instance", "http://127.0.0.1")
            with (
                harness.gunicorn("votes", "bench.wsgi:article_app()", gunicorn_settings, env,
                                 tmpdir, ready_path="/healthz") as app_server,
                harness.gunicorn("baseline", "bench.votes:baseline_app()", gunicorn_settings,
                                 env, tmpdir, ready_path=READY_PATH) as base_server,
            ):  # fmt: skip
                for n in range(rounds):
                    batch = arrange(url, run_id, n, patrons, topics)
                    arranged.append(batch)
                    plans, expected = plan(batch, ops, seed=n)
                    sessions = {uid: sign_in(app_server.port, email) for uid, email in batch.users}
                    app_runs.append(send_all("app", app_server.port, plans, sessions))
                    base_runs.append(send_all("baseline", base_server.port, plans, None))
                    found = check(url, batch, expected, "votes")
                    base_found = check(url, batch, expected, BASELINE_TABLE)
                    lost, extra = lost + found[0], extra + found[1]
                    base_lost, base_extra = base_lost + base_found[0], base_extra + base_found[1]
                    print(f"  round {n + 1}/{rounds}: app {app_runs[-1].per_second:,.0f}/s "
                          f"{app_runs[-1].codes}, baseline {base_runs[-1].per_second:,.0f}/s "
                          f"{base_runs[-1].codes}")  # fmt: skip
        except (KeyboardInterrupt, harness.ServerError) as exc:
            return harness.stopped(exc)
        finally:
            cleanup(url, arranged)
    app_rate = harness.median([r.per_second for r in app_runs])
    base_rate = harness.median([r.per_second for r in base_runs])
    errors = sum(r.errors for r in app_runs)
    print(f"\nvotes and withdrawals/s (median of {rounds}): app {app_rate:,.0f}, "
          f"baseline {base_rate:,.0f}; ratio app/baseline {app_rate / base_rate:.2f}")  # fmt: skip
    print(f"rows lost: {lost}; rows duplicated: {extra}; non-303 answers: {errors} "
          f"(baseline: lost {base_lost}, duplicated {base_extra})")  # fmt: skip
    harness.headline("votes and withdrawals/s vs bare writes", app_rate, "/s", base_rate)
    harness.headline("rows lost + duplicated + non-303 answers", lost + extra + errors,
                     goal="== 0")  # fmt: skip
    harness.write_result("votes", {
        "environment": harness.environment(), "patrons": patrons, "ops": ops, "topics": topics,
        "app_per_second": app_rate, "baseline_per_second": base_rate, "rows_lost": lost,
        "rows_duplicated": extra, "errors": errors,
        "runs": [r.__dict__ | {"per_second": r.per_second} for r in app_runs + base_runs],
    })  # fmt: skip
    return 0 if lost == extra == errors == 0 else 1
