"""Shared test helpers: an "is this HTML inert?" checker, extra apps, cookie parsing."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from patrons import create_app
from patrons.core.config import Settings
from tests.conftest import TEST_SECRET, empty_tables

ON_POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")
# the largest id an INTEGER column holds on PostgreSQL (SQLite's limit is 2**63 - 1)
MAX_INT4 = 2**31 - 1

# attributes a browser reads as a URL it may navigate to, load or run (not `cite`: browsers
# never follow it; test_sanitize checks it separately)
URL_ATTRIBUTES = frozenset(
    {
        "href",
        "src",
        "action",
        "formaction",
        "xlink:href",
        "background",
        "poster",
        "data",
        "lowsrc",
        "dynsrc",
        "codebase",
        "ping",
        "longdesc",
        "manifest",
        "icon",
    }
)
DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:", "livescript:")
# elements that never come from content on this site
FORBIDDEN_TAGS = frozenset(
    {
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "base",
        "svg",
        "math",
        "style",
        "portal",
        "param",
        "isindex",
        "xml",
        "import",
        "bgsound",
        "xss",
    }
)
SITE_LINK_RELS = frozenset({"stylesheet", "alternate", "canonical", "icon", "self"})
RAW_TAG = re.compile(
    r"<\s*(script|iframe|frame|frameset|object|embed|applet|base|svg|math|style|portal)\b", re.I
)
OWN_SCRIPT = re.compile(r'<script src="/static/js/[\w.-]+\.js(\?v=[0-9a-f]+)?"( async| defer)?>')
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))


def browser_url(value: str) -> str:
    """A URL attribute as a browser's URL parser sees its scheme (WHATWG URL standard):
    leading/trailing C0 controls and spaces stripped, tabs and newlines removed anywhere,
    lower-cased. The parser already decoded character references (&#106; and friends)."""
    value = value.strip(_C0_OR_SPACE)
    value = re.sub(r"[\t\n\r]", "", value)
    return value.lower()


def is_dangerous_url(value: str) -> bool:
    return browser_url(value).startswith(DANGEROUS_SCHEMES)


def _is_site_path(value: str | None) -> bool:
    if value is None or value == "":
        return True
    normal = browser_url(value)
    return normal.startswith("/") and not normal.startswith(("//", "/\\"))


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.forms = 0
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)
        if tag == "script":
            self.in_script = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script and data.strip():
            self.problems.append(f"inline script content {data.strip()[:80]!r}")

    def _check(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        where = f"<{tag} {' '.join(f'{k}={v!r}' for k, v in attrs)}>"[:200]
        if tag == "script":
            self.in_script = True
            src = found.get("src")
            if src is None or not browser_url(src).startswith("/static/"):
                self.problems.append(f"script element {where}")
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"forbidden element {where}")
        if tag == "meta" and "http-equiv" in found:
            self.problems.append(f"meta http-equiv {where}")
        if tag == "link":
            rels = set((found.get("rel") or "").lower().split())
            if not rels or not rels <= SITE_LINK_RELS:
                self.problems.append(f"link with rel {rels} {where}")
            if "stylesheet" in rels and not _is_site_path(found.get("href")):
                self.problems.append(f"stylesheet from elsewhere {where}")
        if tag == "form":
            self.forms += 1
            if not _is_site_path(found.get("action")):
                self.problems.append(f"form posting elsewhere {where}")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name} in {where}")
            if name == "srcdoc":
                self.problems.append(f"srcdoc in {where}")
            if name == "style":
                self.problems.append(f"style attribute in {where}")
            if name in URL_ATTRIBUTES and value and is_dangerous_url(value):
                self.problems.append(f"dangerous URL in {name} of {where}")


@dataclass(frozen=True)
class Inspection:
    problems: list[str]
    forms: int


def inspect_html(html: str) -> Inspection:
    """What in `html` could run script or send the reader elsewhere: [] when inert.

    Parsed with the stdlib HTMLParser, plus a raw scan for tag openings the parser might read
    differently from a browser (anything escaped by the templates starts with &lt;, not <)."""
    checker = _Checker()
    checker.feed(html)
    checker.close()
    problems = list(checker.problems)
    for match in RAW_TAG.finditer(html):
        if not OWN_SCRIPT.match(html, match.start()):
            problems.append(f"raw tag opening {html[match.start() : match.start() + 80]!r}")
    return Inspection(problems, checker.forms)


def assert_inert(html: str, label: str = "", forms: int | None = None) -> None:
    found = inspect_html(html)
    assert found.problems == [], f"{label}: active content in output: {found.problems}"
    if forms is not None:
        assert found.forms == forms, f"{label}: {found.forms} forms, expected {forms}"


@pytest.fixture(name="db")
def fresh_db(app: Flask) -> Iterator[Session]:
    """conftest's `db` without an app context held open for the whole test.

    conftest's fixture pushes one app context for the test, and Flask reuses a pushed app
    context for every request made meanwhile: all requests then share one `g` (the CSRF token
    of the first client, the request's database session, g.public_page). Import this fixture
    (`from tests.helpers import fresh_db`) to give each request its own context, as in
    production."""
    session = app.extensions["db.sessionmaker"]()
    yield session
    session.close()


def settings_from(database_url: str, instance: Path, **env: str) -> Settings:
    """Settings built the way the app builds them (from an environment), with extra variables."""
    environ = {
        "PATRONS_ENV": "testing",
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": database_url,
        "PATRONS_INSTANCE": str(instance),
        "SITE_URL": "http://patrons.test",
        **env,
    }
    if environ["PATRONS_ENV"].strip().lower() == "production":  # production refuses no MAIL_URL
        environ.setdefault("MAIL_URL", "smtp://mail.patrons.test:587")
    return Settings.from_env(environ)


@contextmanager
def extra_app(settings: Settings, empty: bool = True) -> Iterator[Flask]:
    """An app of its own (for other settings); its tables are emptied and its pool closed after."""
    app = create_app(settings)
    try:
        yield app
    finally:
        if empty:
            empty_tables(app)
        app.extensions["db.engine"].dispose()


def set_cookies(response: TestResponse) -> dict[str, str]:
    """name -> the whole Set-Cookie header of each cookie the response sets."""
    found = {}
    for header in response.headers.getlist("Set-Cookie"):
        name = header.split("=", 1)[0].strip()
        found[name] = header
    return found


def cookie_flags(header: str) -> dict[str, str]:
    """The attributes of one Set-Cookie header, lower-cased names: {'httponly': '', ...}."""
    flags = {}
    for part in header.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        flags[name.lower()] = value
    return flags


def csp_directives(response: TestResponse) -> dict[str, list[str]]:
    policy = response.headers.get("Content-Security-Policy", "")
    directives: dict[str, list[str]] = {}
    for item in policy.split(";"):
        words = item.split()
        if words:
            directives[words[0]] = words[1:]
    return directives
