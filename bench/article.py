"""Anonymous article page vs a bare Flask route, both under gunicorn, loaded with wrk.

The anonymous article page is cached (Flask-Caching), so once warm it should cost little
more than a bare route: the target is article requests/s >= 0.8 x bare requests/s.

Two more sides on the article server, reported against the anonymous article of the same
run (no pass/fail): `signed-in`, the same article for a signed-in patron (the cached shared
parts, the reader's session and entitlement: two SQL statements), and `front`, the anonymous
front page `/` (cached like the article, answered before Flask).

    python -m bench article          # or: make bench

Settings (environment): BENCH_DATABASE_URL (default: a temporary SQLite file; a
PostgreSQL URL must name a scratch database: ~50 articles are added, and removed after),
BENCH_WORKERS (2), BENCH_WORKER_CLASS (gthread | sync), BENCH_THREADS (4),
BENCH_WRK_THREADS (2), BENCH_CONNECTIONS (16), BENCH_DURATION (10 s), BENCH_WARMUP (2 s),
BENCH_ROUNDS (3: the servers are loaded in turn, alternating which goes first),
BENCH_REDIS_URL (unset: the in-process SimpleCache; set: REDIS_URL for the article server,
so the page cache and rate-limit storage are in Redis; use a scratch Redis database).

Besides requests/s, the table shows the gunicorn workers' CPU time per request (from
/proc), which a busy machine disturbs far less than throughput: use it as a cross-check.
"""

from __future__ import annotations

import os
import random
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench import harness
from bench.wsgi import BARE_BODY, BARE_PATH

TARGET_RATIO = 0.8
ARTICLE_COUNT = 50
WORDS_PER_ARTICLE = 1000

TAGS = (
    "Water", "Energy", "Courts", "Schools", "City Hall", "Health", "Housing", "Transport",
    "Farming", "Elections", "Climate", "Labour", "Culture", "Border towns",
)  # fmt: skip
PLACES = (
    "the river district", "the old rail yards", "the northern steppe", "the regional court",
    "the city council", "the eastern suburbs", "the grain terminal", "the mining towns",
)  # fmt: skip
SUBJECTS = (
    "residents", "the ministry", "local officials", "teachers", "farmers", "the utility",
    "contractors", "nurses", "the mayor's office", "drivers", "the auditors", "families",
)  # fmt: skip
VERBS = (
    "say", "argue", "have warned", "told the Courier", "admitted", "wrote in a letter",
    "confirmed", "complained", "estimate", "pointed out", "have asked", "insist",
)  # fmt: skip
CLAUSES = (
    "the tender was rewritten twice before anyone outside the department saw it",
    "the pipes under the market square have not been replaced since the 1970s",
    "the budget for the repairs was spent on consultants instead",
    "nobody has explained why the deadline moved again last spring",
    "the figures published in March do not match the ones shown to the council",
    "the clinic now opens only three days a week",
    "rents along the tram line rose by a third in two years",
    "the inspection reports were never made public",
    "a second contractor was hired without a new tender",
    "the water was tested only after the complaints reached the newspaper",
    "the new timetable leaves the night shift without a bus home",
    "half of the promised classrooms still have no heating",
    "the court has postponed the hearing for the fourth time",
    "the subsidy reached fewer than one farm in ten",
)  # fmt: skip
HEADINGS = (
    "What the documents show", "Who decided", "Where the money went", "What residents say",
    "What happens next", "A pattern of delays", "The official response", "How we reported this",
)  # fmt: skip
TITLE_PATTERNS = (
    "Why {place} is still waiting for {thing}",
    "{Subject} question the deal for {thing} in {place}",
    "Inside the plan for {thing} that nobody wanted to pay for",
    "How {place} lost {thing}",
    "The promise of {thing}, two years on",
)  # fmt: skip
THINGS = (
    "clean water", "a new school", "the tram extension", "flood defences", "the clinic",
    "heating", "a fair tender", "the bus depot", "the grain subsidy", "public housing",
)  # fmt: skip


def _sentence(rng: random.Random) -> str:
    subject = rng.choice(SUBJECTS)
    text = f"{subject.capitalize()} {rng.choice(VERBS)} that {rng.choice(CLAUSES)}"
    if rng.random() < 0.35:
        text += f", and that in {rng.choice(PLACES)} {rng.choice(CLAUSES)}"
    if rng.random() < 0.1:
        text += f" ([records](https://example.org/records/{rng.randint(100, 999)}))"
    elif rng.random() < 0.1:
        text = text.replace(subject.capitalize(), f"*{subject.capitalize()}*", 1)
    return text + "."


def article_body(rng: random.Random, words: int = WORDS_PER_ARTICLE) -> str:
    """About `words` words of Markdown: paragraphs, subheadings, a quote and a list."""
    blocks: list[str] = []
    count = 0
    paragraph_no = 0
    while count < words:
        if paragraph_no and paragraph_no % 4 == 0:
            blocks.append(f"## {rng.choice(HEADINGS)}")
        if paragraph_no == 3:
            blocks.append(f"> {_sentence(rng)} {_sentence(rng)}")
        elif paragraph_no == 6:
            blocks.append("\n".join(f"- {_sentence(rng)}" for _ in range(4)))
        else:
            blocks.append(" ".join(_sentence(rng) for _ in range(rng.randint(3, 6))))
        count += len(blocks[-1].split())
        paragraph_no += 1
    return "\n\n".join(blocks)


def _title(rng: random.Random) -> str:
    subject = rng.choice(SUBJECTS)
    return rng.choice(TITLE_PATTERNS).format(
        place=rng.choice(PLACES),
        thing=rng.choice(THINGS),
        subject=subject,
        Subject=subject.capitalize(),
    )


# --- setup -----------------------------------------------------------------------------


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(toml_file=str(harness.ROOT / "pyproject.toml"))
    cfg.attributes["database_url"] = url
    command.upgrade(cfg, "head")


def create_articles(url: str, run_id: str) -> tuple[str, str, list[int]]:
    """~50 published articles with ~1,000-word bodies and tags; one slug, its title, the ids."""
    from sqlalchemy.orm import Session

    from patrons.articles import service
    from patrons.core import clock
    from patrons.core.db import make_engine

    rng = random.Random(20261126)  # the same articles every run
    now = clock.now()
    engine = make_engine(url)
    ids: list[int] = []
    try:
        with Session(engine) as db:
            articles = []
            for n in range(ARTICLE_COUNT):
                title = _title(rng)
                draft = service.ArticleDraft(
                    title=title,
                    slug=f"{service.slugify(title, 90)}-{n + 1}-{run_id}",
                    body_source=article_body(rng),
                    summary=_sentence(rng),
                    author_name=rng.choice(("Aigerim Sultanova", "Daniyar Bekov", "Mira Osei")),
                    editor_name="The Courier desk",
                    tags=tuple(rng.sample(TAGS, rng.randint(2, 4))),
                    published_at=now - timedelta(days=ARTICLE_COUNT - n, hours=rng.randint(0, 20)),
                )
                article = service.save_article(db, draft)
                service.publish(article)
                db.flush()
                articles.append(article)
            db.commit()
            ids = [a.id for a in articles]
            chosen = articles[ARTICLE_COUNT // 2]
            return chosen.slug, chosen.title, ids
    finally:
        engine.dispose()


def delete_articles(url: str, ids: list[int], patron_email: str = "") -> None:
    from sqlalchemy import delete
    from sqlalchemy.orm import Session

    from patrons.core.db import make_engine
    from patrons.models import Article, User

    engine = make_engine(url)
    try:
        with Session(engine) as db:
            db.execute(delete(Article).where(Article.id.in_(ids)))
            if patron_email:  # its sessions, pledge and payment go with it (ON DELETE CASCADE)
                db.execute(delete(User).where(User.email == patron_email))
            db.commit()
    finally:
        engine.dispose()


PATRON_PASSWORD = "bench patron password, long enough"  # noqa: S105  (a scratch account)
BENCH_USER_AGENT = "patrons-bench"  # wrk sends it too: Flask-Login's session protection


def create_patron(url: str, run_id: str) -> str:
    """A member with an active, paid pledge (an active patron); returns the email."""
    from sqlalchemy.orm import Session

    from patrons.accounts.passwords import hash_password
    from patrons.core import clock
    from patrons.core.db import make_engine
    from patrons.models import Payment, Pledge, User

    email = f"bench-patron-{run_id}@example.org"
    now = clock.now()
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            user = User(email=email, password_hash=hash_password(PATRON_PASSWORD))
            db.add(user)
            db.flush()
            pledge = Pledge(
                user_id=user.id, amount=500, currency="EUR", status="active",
                stripe_customer_id=f"cus_bench{run_id}",
                stripe_subscription_id=f"sub_bench{run_id}",
                current_period_end=now + timedelta(days=20), created_at=now,
            )  # fmt: skip
            db.add(pledge)
            db.flush()
            db.add(
                Payment(
                    pledge_id=pledge.id, stripe_invoice_id=f"in_bench{run_id}", amount=500,
                    currency="EUR", status="paid", created_at=now, paid_at=now,
                )
            )  # fmt: skip
            db.commit()
    finally:
        engine.dispose()
    return email


def _request(
    url: str, cookie: str = "", data: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request without following redirects; the session cookie sent by hand (its
    production name, __Host-session, is Secure: no cookie jar sends it over plain HTTP)."""
    import http.client
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    headers = {"User-Agent": BENCH_USER_AGENT}
    if cookie:
        headers["Cookie"] = cookie
    body = None
    if data is not None:
        body = urlencode(data)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request("POST" if data is not None else "GET", parts.path, body, headers)
        response = conn.getresponse()
        got = {k.lower(): v for k, v in response.getheaders() if k.lower() != "set-cookie"}
        cookies = [v for k, v in response.getheaders() if k.lower() == "set-cookie"]
        if cookies:
            got["set-cookie"] = cookies[-1]
        return response.status, got, response.read()
    finally:
        conn.close()


def sign_in(server: harness.Server, email: str, article_path: str, title: str) -> str:
    """The Cookie header of a signed-in session, checked on the article page."""
    import json

    def cookie_of(headers: dict[str, str], before: str) -> str:
        found = headers.get("set-cookie", "")
        return found.split(";", 1)[0] if found else before

    status, headers, body = _request(server.url("/csrf-token"))
    cookie = cookie_of(headers, "")
    token = json.loads(body)["token"]
    form = {"email": email, "password": PATRON_PASSWORD, "csrf_token": token}
    status, headers, body = _request(server.url("/login"), cookie, form)
    if status != 302:
        raise harness.ServerError(f"signing in answered {status}:\n{body[:500]!r}")
    cookie = cookie_of(headers, cookie)
    for _ in range(2):  # the first page may store a CSRF token in the session
        status, headers, body = _request(server.url(article_path), cookie)
        cookie = cookie_of(headers, cookie)
    from markupsafe import escape

    if status != 200 or str(escape(title)).encode() not in body:
        raise harness.ServerError(f"the signed-in article answered {status}")
    if b"Thank you for being a patron" not in body or "set-cookie" in headers:
        raise harness.ServerError("the signed-in article is not the patron's, or sets a cookie")
    return cookie


def server_env(
    database_url: str, instance: Path, site_url: str, redis_url: str = ""
) -> dict[str, str]:
    """Production settings; nothing inherited that could change what the app does."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        PATRONS_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        DATABASE_URL=database_url,
        PATRONS_INSTANCE=str(instance),
        SITE_URL=site_url,
        # production refuses to start without MAIL_URL: a folder, chosen on purpose
        MAIL_URL=(instance / "outbox").resolve().as_uri(),
        PYTHONDONTWRITEBYTECODE="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


# --- measuring -------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    server: harness.Server
    path: str
    body_bytes: int
    runs: list[harness.WrkResult]
    headers: tuple[str, ...] = ()  # extra request headers (the signed-in side's cookie)

    def rps(self) -> float:
        return harness.median([r.requests_per_second for r in self.runs])

    def p99(self) -> float:
        return harness.median([r.p99_ms for r in self.runs])

    def cpu_us(self) -> float:
        return harness.median([r.cpu_us_per_request for r in self.runs])

    def errors(self) -> int:
        return sum(r.errors for r in self.runs)

    def spread(self) -> float:
        """Slowest round's requests/s over the fastest's: 1.0 is perfectly steady."""
        values = [r.requests_per_second for r in self.runs]
        return min(values) / max(values) if values and max(values) else 0.0


def check_article(server: harness.Server, path: str, title: str) -> int:
    status, body = harness.http_get(server.url(path))
    if status != 200:
        raise harness.ServerError(f"GET {path} answered {status}:\n{server.log_tail()}")
    from markupsafe import escape

    if str(escape(title)).encode() not in body:
        raise harness.ServerError(f"GET {path} answered 200 but without the article's title")
    return len(body)


def run_wrk(wrk: str, settings: harness.WrkSettings, side: Side, seconds: int) -> harness.WrkResult:
    """harness.run_wrk, with the side's extra headers (wrk -H) when it has any."""
    if not side.headers:
        return harness.run_wrk(wrk, settings, side.server, side.path, seconds)
    import subprocess

    url = side.server.url(side.path)
    cmd = settings.command(wrk, url, seconds)
    extra = [arg for header in side.headers for arg in ("-H", header)]
    cmd = [*cmd[:-1], *extra, cmd[-1]]  # the URL stays last
    cpu_before = side.server.workers_cpu_seconds()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    cpu_used = side.server.workers_cpu_seconds() - cpu_before
    if done.returncode != 0:
        raise harness.ServerError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = harness.parse_wrk(url, done.stdout)
    result.worker_cpu_seconds = round(cpu_used, 3)
    return result


def measure(wrk: str, sides: list[Side], rounds: int, settings: harness.WrkSettings) -> None:
    for side in sides:
        print(f"  warm-up {side.name}: {settings.warmup}s", flush=True)
        run_wrk(wrk, settings, side, settings.warmup)
    for n in range(rounds):
        order = sides if n % 2 == 0 else list(reversed(sides))
        for side in order:
            r = run_wrk(wrk, settings, side, settings.duration)
            side.runs.append(r)
            print(
                f"  round {n + 1}/{rounds} {side.name:<9} {r.requests_per_second:>9.1f} req/s"
                f"  p99 {r.p99_ms:>7.2f} ms  worker CPU {r.cpu_us_per_request:>5.0f} us/req"
                f"  errors {r.errors}",
                flush=True,
            )


def report(
    article: Side, bare: Side, rss: dict[str, list[float]], config: dict, load: list[float]
) -> dict[str, object]:
    ratio = article.rps() / bare.rps() if bare.rps() else 0.0
    cpu_ratio = bare.cpu_us() / article.cpu_us() if article.cpu_us() else 0.0
    valid = article.errors() == 0 and bare.errors() == 0
    passed = valid and ratio >= TARGET_RATIO

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    rows = [
        ("requests/s (median of rounds)", f"{article.rps():.1f}", f"{bare.rps():.1f}"),
        ("p99 latency ms (median)", f"{article.p99():.2f}", f"{bare.p99():.2f}"),
        ("worker CPU us/request (median)", f"{article.cpu_us():.0f}", f"{bare.cpu_us():.0f}"),
        ("worker RSS MiB (mean)", f"{mean(rss['article']):.1f}", f"{mean(rss['bare']):.1f}"),
        (
            "worker RSS MiB (each)",
            " ".join(f"{m:.1f}" for m in rss["article"]),
            " ".join(f"{m:.1f}" for m in rss["bare"]),
        ),
        ("response body bytes", str(article.body_bytes), str(bare.body_bytes)),
        ("round spread (slowest/fastest)", f"{article.spread():.2f}", f"{bare.spread():.2f}"),
        ("errors (non-2xx + socket)", str(article.errors()), str(bare.errors())),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    print(f"Article page vs bare Flask route  ({config['gunicorn']}; {config['wrk']})")
    print(f"{'':<{width}}  {'article':>16}  {'bare':>16}")
    for label, a, b in rows:
        print(f"{label:<{width}}  {a:>16}  {b:>16}")
    print(f"{'ratio article/bare (req/s)':<{width}}  {ratio:>16.3f}   target >= {TARGET_RATIO}")
    print(f"{'cross-check bare/article (CPU)':<{width}}  {cpu_ratio:>16.3f}")
    cpus = os.cpu_count() or 1
    # before: other work on the machine (after includes this run's own load)
    noisy = load[0] > cpus / 2 or min(article.spread(), bare.spread()) < 0.75
    print(
        f"load average {load[0]:.1f} before, {load[1]:.1f} after, on {cpus} CPUs"
        + (
            "  <- busy machine: requests/s are noisy, trust the CPU cross-check more"
            if noisy
            else ""
        )
    )
    print()
    bar = "=" * 76
    print(bar)
    print(f"{'PASS' if passed else 'FAIL'}: article/bare = {ratio:.3f} (target >= {TARGET_RATIO})")
    if not valid:
        print("      some requests failed: the numbers are not valid")
    elif not passed:
        print("      the cached anonymous article page is slower than the target allows")
    if valid and (ratio >= TARGET_RATIO) != (cpu_ratio >= TARGET_RATIO):
        print(
            f"      the CPU cross-check ({cpu_ratio:.3f}) disagrees: run again on a quiet machine"
        )
    print(bar)
    return {
        "passed": passed,
        "valid": valid,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "noisy": noisy,
        "load_average": load,
    }


def report_more(article: Side, more: list[Side]) -> dict[str, dict[str, float]]:
    """The signed-in article and the front page against the anonymous article: no target."""
    print()
    print("Other pages of the same server, against the anonymous article of this run")
    head = f"{'':<10} {'req/s':>9} {'x anon':>7} {'p99 ms':>8} {'CPU us/req':>11} {'errors':>7}"
    print(head)
    figures: dict[str, dict[str, float]] = {}
    for side in [article, *more]:
        ratio = side.rps() / article.rps() if article.rps() else float("nan")
        print(
            f"{side.name:<10} {side.rps():>9.1f} {ratio:>7.3f} {side.p99():>8.2f}"
            f" {side.cpu_us():>11.0f} {side.errors():>7}"
        )
        figures[side.name] = {
            "requests_per_second": side.rps(),
            "ratio_to_anonymous_article": ratio,
            "p99_ms": side.p99(),
            "cpu_us_per_request": side.cpu_us(),
            "errors": side.errors(),
        }
    return figures


def main() -> int:
    wrk = harness.find_wrk()
    if wrk is None:
        print(harness.WRK_MISSING, file=sys.stderr)
        return 2
    gunicorn_settings = harness.GunicornSettings.from_env()
    wrk_settings = harness.WrkSettings.from_env()
    rounds = harness.env_int("BENCH_ROUNDS", 3)
    external_url = os.environ.get("BENCH_DATABASE_URL", "").strip()
    redis_url = os.environ.get("BENCH_REDIS_URL", "").strip()
    config = {
        "gunicorn": gunicorn_settings.describe(),
        "wrk": (
            f"wrk -t{wrk_settings.threads} -c{wrk_settings.connections} "
            f"-d{wrk_settings.duration}s x {rounds} rounds, {wrk_settings.warmup}s warm-up"
        ),
        "cache": "Redis (BENCH_REDIS_URL)" if redis_url else "SimpleCache (in-process)",
        "database": "BENCH_DATABASE_URL" if external_url else "SQLite (temporary)",
    }
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    ids: list[int] = []
    patron_email = ""
    with harness.sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmpdir = Path(tmp)
        instance = tmpdir / "instance"
        instance.mkdir()
        database_url = external_url or f"sqlite:///{tmpdir / 'bench.db'}"
        try:
            print(f"Database: {config['database']}; page cache: {config['cache']}")
            migrate(database_url)
            run_id = secrets.token_hex(3)
            slug, title, ids = create_articles(database_url, run_id)
            patron_email = create_patron(database_url, run_id)
            article_path = f"/articles/{slug}"
            print(f"Created {len(ids)} articles; measuring {article_path}")
            print(f"Servers: gunicorn, {config['gunicorn']}; load: {config['wrk']}")
            env = server_env(database_url, instance, "http://127.0.0.1")
            with (
                harness.gunicorn(
                    "article",
                    "bench.wsgi:article_app()",
                    gunicorn_settings,
                    server_env(database_url, instance, "http://127.0.0.1", redis_url),
                    tmpdir,
                    ready_path=article_path,
                ) as article_server,
                harness.gunicorn(
                    "bare", "bench.wsgi:bare_app()", gunicorn_settings, env, tmpdir, BARE_PATH
                ) as bare_server,
            ):
                body_bytes = check_article(article_server, article_path, title)
                article = Side("article", article_server, article_path, body_bytes, [])
                bare = Side("bare", bare_server, BARE_PATH, len(BARE_BODY.encode()), [])
                cookie = sign_in(article_server, patron_email, article_path, title)
                signed_in = Side(
                    "signed-in", article_server, article_path, 0, [],
                    headers=(f"Cookie: {cookie}", f"User-Agent: {BENCH_USER_AGENT}"),
                )  # fmt: skip
                status, front_body = harness.http_get(article_server.url("/"))
                if status != 200:
                    raise harness.ServerError(f"GET / answered {status}")
                front = Side("front", article_server, "/", len(front_body), [])
                measure(wrk, [article, bare, signed_in, front], rounds, wrk_settings)
                rss = {
                    "article": harness.workers_rss(article_server),
                    "bare": harness.workers_rss(bare_server),
                }
        except (KeyboardInterrupt, harness.ServerError) as exc:
            return harness.stopped(exc)
        finally:
            if external_url and ids:
                delete_articles(database_url, ids, patron_email)
    summary = report(article, bare, rss, config, [load_before, os.getloadavg()[0]])
    more = report_more(article, [signed_in, front])
    harness.headline("anonymous article req/s vs a bare route", article.rps(), "/s", bare.rps(),
                     ratio_goal=f">= {TARGET_RATIO}")  # fmt: skip
    for side in (signed_in, front):
        harness.headline(f"{side.name} req/s vs the anonymous article", side.rps(), "/s",
                         article.rps())  # fmt: skip
    path = harness.write_result(
        "article",
        {
            "benchmark": "article",
            "target_ratio": TARGET_RATIO,
            **summary,
            "config": {
                **config,
                "gunicorn_settings": vars(gunicorn_settings),
                "wrk_settings": vars(wrk_settings),
                "rounds": rounds,
                "patrons_env": "production",
            },
            "article": side_result(article, rss["article"]),
            "bare": side_result(bare, rss["bare"]),
            "signed_in": side_result(signed_in, rss["article"]),
            "front": side_result(front, rss["article"]),
            "against_anonymous_article": more,
            "environment": harness.environment(),
            "elapsed_seconds": round(time.monotonic() - started, 1),
        },
    )
    print(f"Result written to {path.relative_to(harness.ROOT)}")
    return 0


def side_result(side: Side, rss: list[float]) -> dict[str, object]:
    return {
        "path": side.path,
        "body_bytes": side.body_bytes,
        "requests_per_second": side.rps(),
        "p99_ms": side.p99(),
        "cpu_us_per_request": side.cpu_us(),
        "worker_rss_mib": rss,
        "runs": side.runs,
    }
