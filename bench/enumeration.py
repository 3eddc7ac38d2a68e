"""Does an address with an account answer slower or faster than one without? (docs/security.md)

For each route that takes an address, /signup, /reset, /login/link (the emailed sign-in link)
and /login (a wrong password), the app is asked alternately about an address that has an
account and one that has none, many times, and the median times are compared. The goal is a
ratio within 10 % (0.90 to 1.10) for every route: the same work in both branches, one mail
queued in both (sent after the response, on the mail thread, as in production).

The app runs in-process (Flask's test client: no network, so the app's own time is what is
measured), at the production Argon2id cost (Settings' defaults), with the mail sent in the
background as in production; between requests (outside the timing) the mail thread is
waited for, the rate limits are reset (they stay on: they are just never reached) and the
known account's backoff is cleared, so every request takes the ordinary path.

    python -m bench enumeration      # or: make bench BENCH=enumeration

Settings (environment): BENCH_DATABASE_URL (default: a temporary SQLite file; a PostgreSQL
URL must name a scratch database: it is migrated and the accounts made are left there),
BENCH_ENUM_REQUESTS (60 timed requests per address kind and route), BENCH_ENUM_WARMUP (5).
"""

from __future__ import annotations

import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import harness
from bench.article import migrate

TARGET = 0.10  # the ratio's allowed distance from 1
PASSWORD = "a bench passphrase nobody will guess"  # noqa: S105  (a throwaway account)
WRONG = "not the password of this account"


@dataclass
class Result:
    route: str
    known_ms: float
    unknown_ms: float
    known_cpu_ms: float
    unknown_cpu_ms: float

    @property
    def ratio(self) -> float:
        return self.known_ms / self.unknown_ms

    @property
    def cpu_ratio(self) -> float:
        return self.known_cpu_ms / self.unknown_cpu_ms

    @property
    def ok(self) -> bool:
        return abs(self.ratio - 1) <= TARGET


def make_app(url: str, instance: Path) -> Any:  # the Flask app (typed loosely: bench code)
    from patrons import create_app
    from patrons.core.config import Settings

    settings = Settings.from_env({
        "PATRONS_ENV": "development", "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": url, "PATRONS_INSTANCE": str(instance),
        "SITE_URL": "http://127.0.0.1:5000",
    })  # fmt: skip
    app = create_app(settings)
    app.config["MAIL_SEND_INLINE"] = False  # after the response, on a thread: as in production
    return app


def arrange(app: Any, email: str) -> None:
    from patrons.accounts.passwords import hash_password
    from patrons.core import clock
    from patrons.models import User

    with app.app_context():
        db = app.extensions["db.sessionmaker"]()
        try:
            db.add(User(email=email, password_hash=hash_password(PASSWORD),
                        email_verified_at=clock.now(), created_at=clock.now()))  # fmt: skip
            db.commit()
        finally:
            db.close()


def between(app: Any, known: str) -> None:
    """Outside the timing: the last request's mail sent, limits and backoff cleared."""
    from sqlalchemy import update

    from patrons import mail
    from patrons.core import extensions
    from patrons.models import User

    mail.wait_for_background_sends(app, timeout=30)
    extensions.limiter.reset()
    with app.app_context():
        db = app.extensions["db.sessionmaker"]()
        try:
            values = {"failed_sign_ins": 0, "sign_in_blocked_until": None}
            db.execute(update(User).where(User.email == known).values(**values))
            db.commit()
        finally:
            db.close()


def measure(
    app: Any, route: str, send: Callable[[Any, str], int], known: str, requests: int, warmup: int
) -> Result:
    """Median seconds of `send(client, address)` for the known address and for new ones,
    interleaved (the order alternates each round) so a busy machine hits both alike."""
    client = app.test_client()
    send(client, f"warm-{secrets.token_hex(4)}@example.org")  # the CSRF token, untimed
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    cpu: dict[str, list[float]] = {"known": [], "unknown": []}
    statuses: dict[str, set[int]] = {"known": set(), "unknown": set()}
    for n in range(warmup + requests):
        for which in ("known", "unknown") if n % 2 else ("unknown", "known"):
            email = known if which == "known" else f"new-{secrets.token_hex(6)}@example.org"
            between(app, known)
            start, start_cpu = time.perf_counter(), time.thread_time()
            status = send(client, email)
            elapsed, used = time.perf_counter() - start, time.thread_time() - start_cpu
            statuses[which].add(status)
            if n >= warmup:
                times[which].append(elapsed)
                cpu[which].append(used)
    between(app, known)
    if statuses["known"] != statuses["unknown"]:
        print(f"  {route}: different statuses! known {statuses['known']}, "
              f"unknown {statuses['unknown']}")  # fmt: skip
    ms = {which: statistics.median(times[which]) * 1000 for which in times}
    cpu_ms = {which: statistics.median(cpu[which]) * 1000 for which in cpu}
    return Result(route, ms["known"], ms["unknown"], cpu_ms["known"], cpu_ms["unknown"])


def poster(path: str, **fields: str) -> Callable[[Any, str], int]:
    """A POST of the route's form (the CSRF token fetched once per client, untimed)."""
    tokens: dict[int, str] = {}

    def send(client: Any, email: str) -> int:
        if id(client) not in tokens:
            tokens[id(client)] = client.get("/csrf-token").get_json()["token"]
        data = {"email": email, "csrf_token": tokens[id(client)], **fields}
        return int(client.post(path, data=data).status_code)

    return send


ROUTES = {
    "/signup": poster("/signup", password=PASSWORD + " too", display_name=""),
    "/reset": poster("/reset"),
    "/login/link": poster("/login/link"),
    "/login (wrong password)": poster("/login", password=WRONG),
}


def main() -> int:
    import os

    requests = harness.env_int("BENCH_ENUM_REQUESTS", 60)
    warmup = harness.env_int("BENCH_ENUM_WARMUP", 5)
    external = os.environ.get("BENCH_DATABASE_URL", "").strip()
    print(f"In-process (Flask test client), production Argon2id cost, mail on its thread; "
          f"{requests} timed requests per kind of address and route (+{warmup} warm-up), "
          f"database: {'BENCH_DATABASE_URL' if external else 'SQLite (temporary)'}")  # fmt: skip
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-enum-") as tmp:
        url = external or f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        app = make_app(url, Path(tmp) / "instance")
        known = f"known-{secrets.token_hex(4)}@example.org"
        arrange(app, known)
        try:
            for route, send in ROUTES.items():
                result = measure(app, route, send, known, requests, warmup)
                results.append(result)
                print(f"  {route:<24} account {result.known_ms:7.2f} ms  "
                      f"none {result.unknown_ms:7.2f} ms  ratio {result.ratio:5.3f} "
                      f"{'ok' if result.ok else 'OUTSIDE 10 %':<12} (CPU of the request: "
                      f"{result.known_cpu_ms:.2f} / {result.unknown_cpu_ms:.2f} ms, "
                      f"ratio {result.cpu_ratio:5.3f})", flush=True)  # fmt: skip
        except KeyboardInterrupt:
            return 130
        finally:
            app.extensions["db.engine"].dispose()
    within = f"{1 - TARGET:.2f}..{1 + TARGET:.2f}"
    for r in results:
        harness.headline(f"{r.route}: median with an account vs without", r.known_ms, "ms",
                         r.unknown_ms, ratio_goal=within)  # fmt: skip
    path = harness.write_result("enumeration", {
        "environment": harness.environment(), "requests": requests, "warmup": warmup,
        "results": [{"route": r.route, "known_ms": r.known_ms, "unknown_ms": r.unknown_ms,
                     "ratio": r.ratio, "ok": r.ok, "known_cpu_ms": r.known_cpu_ms,
                     "unknown_cpu_ms": r.unknown_cpu_ms, "cpu_ratio": r.cpu_ratio}
                    for r in results],
    })  # fmt: skip
    print(f"Goal: every ratio within {TARGET:.0%} of 1. Results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
