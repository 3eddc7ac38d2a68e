"""Password sign-ins at the production Argon2id cost, and a worker's memory under a burst.

1. Sign-ins per second: client threads each sign in again and again (a fresh browser each
   time: GET /csrf-token, POST /login with the right password; a 302 counts) against the
   real app under gunicorn, and against a baseline under the same gunicorn settings: a bare
   Flask app whose two routes are a fixed token and one Argon2id verify at the same cost
   (no database, session, CSRF, throttle or hashing pool). The ratio app/baseline is what
   everything around the hash costs; the hash itself is most of a sign-in.
2. Memory: one gunicorn worker with 64 threads (so 50 requests are in it at once, as in
   the threaded dev server) gets 50 failed sign-ins at the same moment, each for its own
   address from its own client address (X-Forwarded-For behind PROXY_HOPS=1, so no limit
   refuses any before its hash). Its peak RSS (VmHWM) is set against its idle RSS, with the
   hashing pool as configured (PASSWORD_HASH_CONCURRENCY, default min(CPUs, 4)) and with it
   opened to 50, which is what an unbounded server does.

    python -m bench login            # or: make bench BENCH=login

Settings (environment): BENCH_DATABASE_URL (default: a temporary SQLite file; a PostgreSQL
URL must name a scratch database: accounts are added and removed after), BENCH_WORKERS (2),
BENCH_THREADS (4), BENCH_WORKER_CLASS, BENCH_CONNECTIONS (8 client threads),
BENCH_DURATION (10 s per side and round), BENCH_ROUNDS (3), BENCH_BURST (50).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import tempfile
import threading
import time
import urllib.parse
from dataclasses import replace
from pathlib import Path

from bench import harness
from bench.article import migrate, server_env

PASSWORD = "bench sign-in passphrase"  # noqa: S105  (throwaway accounts, deleted after)
EMAIL = "bench-login-{run}-{n}@example.org"
BASELINE_READY = "/baseline/token"


def baseline_app():  # type: ignore[no-untyped-def]
    """gunicorn 'bench.login:baseline_app()': a token route and one Argon2id verify."""
    from argon2 import PasswordHasher
    from argon2.exceptions import VerifyMismatchError
    from flask import Flask, request

    hasher = PasswordHasher()  # argon2-cffi's defaults: the cost the app runs at in production
    stored = hasher.hash(PASSWORD)
    app = Flask("bench_login_baseline")

    @app.get(BASELINE_READY)
    def token() -> str:
        return json.dumps({"token": "fixed"})

    @app.post("/baseline/login")
    def login():  # type: ignore[no-untyped-def]
        try:
            hasher.verify(stored, request.form.get("password", ""))
        except VerifyMismatchError:
            return "no", 400
        return "", 302, {"Location": "/"}

    return app


def _request(port: int, method: str, path: str, ip: str, cookies: dict[str, str],
             form: dict[str, str] | None = None) -> tuple[int, bytes]:  # fmt: skip
    conn = http.client.HTTPConnection(harness.HOST, port, timeout=120)
    headers = {"X-Forwarded-For": ip, "User-Agent": "patrons-bench"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        for header in response.msg.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, response.read()
    finally:
        conn.close()


def sign_in(port: int, email: str, password: str, ip: str, baseline: bool = False) -> int:
    """One fresh browser's sign-in: the token, then the form. The POST's status."""
    cookies: dict[str, str] = {}
    token_path, login_path = (BASELINE_READY, "/baseline/login") if baseline else (
        "/csrf-token", "/login")  # fmt: skip
    _, body = _request(port, "GET", token_path, ip, cookies)
    token = json.loads(body)["token"]
    form = {"email": email, "password": password, "csrf_token": token}
    return _request(port, "POST", login_path, ip, cookies, form)[0]


def create_accounts(url: str, run: str, count: int) -> None:
    from sqlalchemy.orm import Session

    from patrons.accounts.passwords import hash_password
    from patrons.core.db import make_engine
    from patrons.models import User

    stored = hash_password(PASSWORD)  # outside an app: Settings' defaults, production's cost
    engine = make_engine(url)
    with Session(engine) as db:
        db.add_all(User(email=EMAIL.format(run=run, n=n), password_hash=stored)
                   for n in range(count))  # fmt: skip
        db.commit()
    engine.dispose()


def remove_accounts(url: str, run: str) -> None:
    from sqlalchemy import delete

    from patrons.core.db import make_engine
    from patrons.models import User

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(delete(User).where(User.email.like(EMAIL.format(run=run, n="%"))))
    engine.dispose()


def sign_ins_per_second(port: int, run: str, clients: int, seconds: int, baseline: bool) -> float:
    done, statuses, stop_at = [0] * clients, set(), time.monotonic() + seconds

    def client(n: int) -> None:
        email = EMAIL.format(run=run, n=n)
        while time.monotonic() < stop_at:
            status = sign_in(port, email, PASSWORD, f"10.0.{n}.1", baseline)
            statuses.add(status)
            done[n] += status == 302

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if statuses != {302}:
        raise harness.ServerError(f"sign-ins answered {sorted(statuses)}, not only 302")
    return sum(done) / (time.monotonic() - started)


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise harness.ServerError(f"no {field} for pid {pid}")


def burst(url: str, tmpdir: Path, size: int, concurrency: int | None) -> tuple[float, float, float]:
    """Idle RSS, peak RSS (MiB) and seconds of `size` failed sign-ins at once, one worker."""
    env = server_env(url, tmpdir / "instance", "http://127.0.0.1")
    env["PROXY_HOPS"] = "1"
    if concurrency is not None:
        env["PASSWORD_HASH_CONCURRENCY"] = str(concurrency)
    one = replace(harness.GunicornSettings.from_env(), workers=1, worker_class="gthread",
                  threads=size + 14)  # fmt: skip
    name = f"burst-{concurrency or 'default'}"
    with harness.gunicorn(name, "bench.wsgi:article_app()", one, env, tmpdir,
                          ready_path="/healthz") as server:  # fmt: skip
        sign_in(server.port, "warm-up@example.org", "a wrong password", "10.9.9.9")
        (worker,) = server.worker_pids()
        idle = vm_kib(worker, "VmRSS") / 1024
        start, statuses = threading.Barrier(size), []

        def failing(n: int) -> None:
            start.wait(60)
            email = f"nobody-{n}@example.org"
            statuses.append(sign_in(server.port, email, "a wrong password", f"10.8.{n}.1"))

        threads = [threading.Thread(target=failing, args=(n,)) for n in range(size)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.monotonic() - began
        peak = vm_kib(worker, "VmHWM") / 1024
    if set(statuses) != {400}:
        raise harness.ServerError(f"the burst answered {sorted(set(statuses))}, not only 400")
    return idle, peak, took


def main() -> int:
    settings = harness.GunicornSettings.from_env()
    clients = harness.env_int("BENCH_CONNECTIONS", 8)
    seconds = harness.env_int("BENCH_DURATION", 10)
    rounds = harness.env_int("BENCH_ROUNDS", 3)
    size = harness.env_int("BENCH_BURST", 50)
    run = secrets.token_hex(3)
    with harness.sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "instance").mkdir()
        url = os.environ.get("BENCH_DATABASE_URL", "").strip() or f"sqlite:///{tmpdir}/bench.db"
        print(f"Database: {url.split('@')[-1]}; servers: gunicorn, {settings.describe()}; "
              f"{clients} clients, {seconds} s per side, {rounds} rounds")  # fmt: skip
        try:
            migrate(url)
            create_accounts(url, run, clients)
            env = server_env(url, tmpdir / "instance", "http://127.0.0.1")
            env["PROXY_HOPS"] = "1"
            app_rates, base_rates = [], []
            with (
                harness.gunicorn("login", "bench.wsgi:article_app()", settings, env, tmpdir,
                                 ready_path="/healthz") as app_server,
                harness.gunicorn("baseline", "bench.login:baseline_app()", settings, env,
                                 tmpdir, ready_path=BASELINE_READY) as base_server,
            ):  # fmt: skip
                for n in range(rounds):
                    sides = [(app_server, False, app_rates), (base_server, True, base_rates)]
                    for server, baseline, rates in sides if n % 2 == 0 else sides[::-1]:
                        rates.append(sign_ins_per_second(server.port, run, clients, seconds,
                                                         baseline))  # fmt: skip
                    print(f"  round {n + 1}/{rounds}: app {app_rates[-1]:.1f}/s, "
                          f"baseline {base_rates[-1]:.1f}/s")  # fmt: skip
            bounded = burst(url, tmpdir, size, None)
            unbounded = burst(url, tmpdir, size, size)
        except (KeyboardInterrupt, harness.ServerError) as exc:
            return harness.stopped(exc)
        finally:
            remove_accounts(url, run)
    app_rate, base_rate = harness.median(app_rates), harness.median(base_rates)
    ratio = app_rate / base_rate
    print(f"\nsign-ins/s (median of {rounds}): app {app_rate:.1f}, baseline (bare Argon2id "
          f"verify route) {base_rate:.1f}; ratio app/baseline {ratio:.2f}")  # fmt: skip
    pool = os.cpu_count() or 1
    for label, (idle, peak, took) in (
        (f"hashing pool as configured (min(CPUs, 4) = {min(pool, 4)})", bounded),
        (f"pool opened to {size} (unbounded)", unbounded),
    ):
        print(f"{size} failed sign-ins at once, {label}: worker RSS idle {idle:.0f} MiB, "
              f"peak {peak:.0f} MiB (ratio {peak / idle:.2f}), {took:.1f} s")  # fmt: skip
    harness.headline("sign-ins/s vs a bare Argon2id verify route", app_rate, "/s", base_rate)
    idle, peak, _took = bounded
    harness.headline(f"worker peak RSS, {size} failed sign-ins at once (pool as configured) "
                     "vs idle", peak, "MiB", idle)  # fmt: skip
    path = harness.write_result("login", {
        "environment": harness.environment(), "clients": clients, "seconds": seconds,
        "app_sign_ins_per_second": app_rates, "baseline_sign_ins_per_second": base_rates,
        "ratio": ratio, "burst": size,
        "bounded_idle_peak_seconds": bounded, "unbounded_idle_peak_seconds": unbounded,
    })  # fmt: skip
    print(f"Saved {path.relative_to(harness.ROOT)}")
    return 0
