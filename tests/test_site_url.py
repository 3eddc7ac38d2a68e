"""Every absolute link from SITE_URL, never from the request (docs/security.md, Host-header
abuse): no page, redirect, cached article or mail a request causes names the host that
request claimed, in `Host` or, behind a trusted proxy (PROXY_HOPS), `X-Forwarded-Host`.

The forged requests go to every GET route of `app.url_map` (tests/test_access_matrix.py's
world and fillers) as a reader who is signed out, signed in and staff, on an app that trusts
no proxy and on one that trusts one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from patrons.models import OutboundEmail
from tests.factories import (
    PASSWORD,
    make_article,
    make_patron,
    make_round,
    make_staff,
    make_user,
)
from tests.helpers import extra_app, settings_from
from tests.test_access_matrix import World, methods, routes, url_for_rule
from tests.test_access_matrix import world as world  # noqa: PLC0414  (the fixture, reused)

SITE_URL = "http://patrons.test"  # tests.conftest.make_settings
FORGED_HOST = "evil.example"
FORWARDED_HOST = "forwarded.evil.example"
EVIL = re.compile(r"evil\.example", re.IGNORECASE)
FORWARDED = {
    "X-Forwarded-Host": FORWARDED_HOST,
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "8443",
    "X-Forwarded-For": "198.51.100.9",
    "Forwarded": f"host={FORWARDED_HOST};proto=https",
}


def forged(client: FlaskClient) -> dict[str, Any]:
    """A request to the forged host, with forged X-Forwarded-* headers, and the Referer an
    HTTPS form post needs (Flask-WTF compares it with the host the app believes)."""
    proxied = client.application.config["SETTINGS"].proxy_hops > 0
    believed = FORWARDED_HOST if proxied else FORGED_HOST
    headers = {**FORWARDED, "Referer": f"https://{believed}/"}
    return {"base_url": f"https://{FORGED_HOST}", "headers": headers}


NEW_PASSWORD = "plum-orbit-glacier-fen-41"  # long and uncommon: accepted by every check


@pytest.fixture(params=[0, 1], ids=["no proxy", "one trusted proxy"])
def site(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app as deployed directly, and behind one proxy whose X-Forwarded-* it believes."""
    settings = settings_from(database_url, tmp_path / "instance", PROXY_HOPS=str(request.param))
    with extra_app(settings) as app:
        yield app


def forged_get(client: FlaskClient, url: str) -> TestResponse:
    return client.get(url, **forged(client))


def forged_post(client: FlaskClient, url: str, **data: str) -> TestResponse:
    token = forged_get(client, "/csrf-token").get_json()["token"]
    return client.post(url, data={"csrf_token": token, **data}, **forged(client))


def sign_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    response = forged_post(client, "/login", email=email, password=PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client


def leaks(response: TestResponse) -> list[str]:
    """Where the response names a forged host: a header, or the body."""
    found = [f"{name}: {value}" for name, value in response.headers if EVIL.search(value)]
    body = response.get_data(as_text=True)
    found += [body[max(0, m.start() - 60) : m.end() + 20] for m in EVIL.finditer(body)]
    return found


def test_no_page_names_the_forged_host(site: Flask, world: World) -> None:
    """Every GET route, signed out, as a member and as staff: nothing in any header or body
    (canonical and share links, the feed, redirects) comes from Host or X-Forwarded-Host.
    (`world` is made in the same database through the suite's other app.)"""
    found = world
    clients = {
        "anonymous": site.test_client(),
        "member": sign_in(site, found.emails["member"]),
        "staff": sign_in(site, found.emails["staff"]),
    }
    problems, checked = [], 0
    for rule in routes(site):
        if "GET" not in methods(rule):
            continue
        url = url_for_rule(site, rule, found)
        # a rule ending in a slash is also asked for without it: werkzeug's redirect to it
        urls = [url, url.rstrip("/")] if url.endswith("/") and url != "/" else [url]
        for role, client in clients.items():
            for asked in urls:
                response = forged_get(client, asked)
                checked += 1
                if response.status_code >= 500:
                    problems.append(f"{role} {asked}: {response.status_code}")
                problems += [f"{role} {asked}: {leak}" for leak in leaks(response)]
                location = response.headers.get("Location", "")
                if location.startswith(("http:", "https:", "//")):
                    problems.append(f"{role} {asked}: absolute redirect {location}")
    assert checked >= 60
    assert problems == []


def test_article_links_come_from_site_url_and_the_cache_keeps_no_forged_host(
    site: Flask,
) -> None:
    session = site.extensions["db.sessionmaker"]()
    try:
        make_article(session, title="Ferry returns", slug="ferry-returns")
    finally:
        session.close()
    first = forged_get(site.test_client(), "/articles/ferry-returns")  # rendered and cached
    cached = site.test_client().get("/articles/ferry-returns")  # the fast path's copy
    for response in (first, cached):
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert leaks(response) == []
        canonical = f"{SITE_URL}/articles/ferry-returns"
        assert f'<link rel="canonical" href="{canonical}">' in html
        assert f'<meta property="og:url" content="{canonical}">' in html
        shared = quote(canonical, safe="/")  # as Jinja's urlencode writes it
        assert f"sharer.php?u={shared}" in html and f"share/url?url={shared}" in html
    assert first.get_data() == cached.get_data()


def test_feed_links_come_from_site_url(site: Flask) -> None:
    session = site.extensions["db.sessionmaker"]()
    try:
        make_article(session, slug="ferry-returns")
    finally:
        session.close()
    response = forged_get(site.test_client(), "/feed.atom")
    xml = response.get_data(as_text=True)
    assert leaks(response) == []
    assert f"<id>{SITE_URL}/</id>" in xml
    assert f'href="{SITE_URL}/feed.atom"' in xml
    assert f"<id>{SITE_URL}/articles/ferry-returns</id>" in xml


@pytest.mark.parametrize("role", ["anonymous", "staff"])
def test_the_staff_trailing_slash_redirect_is_a_path(site: Flask, role: str) -> None:
    """Werkzeug answers /staff with a 308 to /staff/ built from the Host header; the answer
    is now the path alone, which the browser resolves against the address it asked for."""
    client = site.test_client()
    if role == "staff":
        session = site.extensions["db.sessionmaker"]()
        try:
            email = make_staff(session).email
        finally:
            session.close()
        client = sign_in(site, email)
    response = forged_get(client, "/staff")
    assert response.status_code == 308
    assert response.headers["Location"] == "/staff/"


def mails(db: Session) -> list[OutboundEmail]:
    db.rollback()
    return list(db.scalars(select(OutboundEmail).order_by(OutboundEmail.id)))


def test_mails_sent_from_requests_link_to_site_url(site: Flask) -> None:
    """Sign-up (new and taken address), resend, reset (known and unknown), sign-in link,
    email change and "topic covered", each asked for with a forged host: every mail's links
    start from SITE_URL and none names the forged host."""
    session = site.extensions["db.sessionmaker"]()
    try:
        member = make_user(session, email="member@example.org")
        unverified = make_user(session, email="waiting@example.org", email_verified_at=None)
        patron, staff = make_patron(session), make_staff(session)
        article = make_article(session, slug="the-river-report")
        found = make_round(session, topics=("Rivers",))
        ids = SimpleNamespace(round=found.id, topic=found.topics[0].id)
        emails = SimpleNamespace(member=member.email, waiting=unverified.email,
                                 patron=patron.email, staff=staff.email)  # fmt: skip
    finally:
        session.close()
    anonymous = site.test_client()
    for url, data in (
        ("/signup", {"email": "new.reader@example.org", "password": NEW_PASSWORD}),
        ("/signup", {"email": emails.member, "password": NEW_PASSWORD}),
        ("/verify/resend", {"email": emails.waiting}),
        ("/reset", {"email": emails.member}),
        ("/reset", {"email": "nobody@example.org"}),
        ("/login/link", {"email": emails.member}),
    ):
        assert forged_post(anonymous, url, **data).status_code < 500, url
    reader = sign_in(site, emails.member)
    changed = forged_post(reader, "/account/email", new_email="moved@example.org",
                          password=PASSWORD)  # fmt: skip
    assert changed.status_code < 400
    voter = sign_in(site, emails.patron)
    assert forged_post(voter, f"/topics/{ids.topic}/vote").status_code == 303
    editor = sign_in(site, emails.staff)
    for url, data in (
        (f"/staff/voting/rounds/{ids.round}/close", {}),
        (f"/staff/voting/topics/{ids.topic}/status", {"status": "chosen"}),
        (f"/staff/voting/topics/{ids.topic}/articles", {"article": article.slug}),
        (f"/staff/voting/topics/{ids.topic}/status", {"status": "covered"}),
    ):
        assert forged_post(editor, url, **data).status_code == 303, url
    session = site.extensions["db.sessionmaker"]()
    try:
        queued = mails(session)
    finally:
        session.close()
    kinds = {m.kind for m in queued}
    assert {"verify_email", "reset_password", "sign_in_link", "topic_covered"} <= kinds, kinds
    problems = []
    for message in queued:
        for body in (message.text_body, message.html_body):
            problems += [f"{message.kind}: {m.group()}" for m in EVIL.finditer(body)]
            if SITE_URL not in body:
                problems.append(f"{message.kind}: no {SITE_URL} link")
    assert problems == []


ROOT = Path(__file__).resolve().parent.parent


def make_dry_run(*args: str, **env: str) -> list[str]:
    """The commands `make run` would run (make -n: printed, none run)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    environ = {k: v for k, v in os.environ.items() if k not in ("SITE_URL", "PORT")}
    done = subprocess.run(  # noqa: S603  (fixed arguments)
        ["make", "-n", *args], cwd=ROOT, env={**environ, **env},
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    ("env", "site_url"),
    [
        ({"PORT": "5077"}, "http://127.0.0.1:5077"),
        ({}, "http://127.0.0.1:5000"),
        ({"PORT": "5077", "SITE_URL": "https://news.example.org"}, "https://news.example.org"),
    ],
    ids=["PORT=5077", "default", "SITE_URL given"],
)
def test_make_run_gives_the_server_workers_and_demo_the_site_url(
    env: dict[str, str], site_url: str
) -> None:
    port = env.get("PORT", "5000")
    lines = make_dry_run("run", **env)
    flask = [line for line in lines if "flask --app patrons" in line]
    started = {c: [ln for ln in flask if f"patrons {c} " in ln] for c in ("run", "worker")}
    assert started["run"] and started["worker"] and any("seed-demo" in ln for ln in flask)
    for line in flask:
        assert f"SITE_URL='{site_url}'" in line, line
    assert all(f"--port {port}" in line for line in started["run"])
    webhook = [line for line in lines if "--webhook-url" in line]
    assert webhook and f"http://127.0.0.1:{port}/stripe/webhook" in webhook[0]
