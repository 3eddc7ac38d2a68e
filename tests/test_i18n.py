"""Translation: every user-facing string goes through gettext, and the catalogue is current.

`make translations` re-extracts the strings and refreshes the English catalogue; these tests
fail when someone adds or changes a string without running it, or adds unwrapped text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask import Flask, render_template
from flask.testing import FlaskClient
from flask_babel import force_locale, get_translations

from patrons.core import extensions
from tests.conftest import csrf_token

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "patrons" / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
ENGLISH_PO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
ENGLISH_MO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.mo"
TEMPLATES = ROOT / "templates"
# as in the Makefile's `translations` target: pybabel's default would skip templates/_partials
IGNORE_DIRS = ".* __pycache__ node_modules instance"


def _read_po(path: Path) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh)


def _key(value: object) -> object:
    """A message id or string as one hashable value (plural forms come as lists from .mo)."""
    return tuple(value) if isinstance(value, list | tuple) else value


def _ids(catalog: Catalog) -> set[object]:
    return {_key(message.id) for message in catalog if message.id}


# -- (a) the catalogue is current ------------------------------------------------------------


def test_the_makefile_extracts_as_this_test_does() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "-F $(TRANSLATIONS)/babel.cfg -k _l" in makefile
    assert f'--ignore-dirs="{IGNORE_DIRS}"' in makefile


def test_the_catalogue_holds_exactly_the_strings_in_the_source(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", str(TRANSLATIONS / "babel.cfg"), "-k", "_l",
         f"--ignore-dirs={IGNORE_DIRS}", "-o", str(fresh), str(ROOT)]
    )  # fmt: skip
    extracted = _ids(_read_po(fresh))
    assert len(extracted) > 200  # templates, _partials, emails and Python all found
    hint = "run `make translations`"
    assert _ids(_read_po(TEMPLATE)) == extracted, hint
    assert _ids(_read_po(ENGLISH_PO)) == extracted, hint


def test_templates_in_partials_and_emails_are_extracted() -> None:
    locations = {path for message in _read_po(TEMPLATE) for path, _ in message.locations}
    for expected in (
        "templates/_partials/footer.html",
        "templates/emails/verify_email.txt",
        "templates/emails/verify_email.html",
        "patrons/accounts/forms.py",
    ):
        assert expected in locations


# -- (b) English is complete and compiled ----------------------------------------------------


def test_every_english_message_is_its_msgid() -> None:
    english = _read_po(ENGLISH_PO)
    assert not english.fuzzy
    for message in english:
        if message.id:
            assert message.string, message.id
            assert message.string == message.id
            assert "fuzzy" not in message.flags, message.id
    assert not english.obsolete


def test_the_compiled_catalogue_matches_the_po_file() -> None:
    with ENGLISH_MO.open("rb") as fh:
        compiled = read_mo(fh)
    english = _read_po(ENGLISH_PO)
    assert _ids(compiled) == _ids(english), "run `make translations` (pybabel compile)"
    strings = {_key(m.id): _key(m.string) for m in compiled if m.id}
    for message in english:
        if message.id:
            assert strings[_key(message.id)] == _key(message.string), message.id


def test_flask_babel_loads_the_english_catalogue(app: Flask) -> None:
    with app.test_request_context():
        translations = get_translations()
        assert "Skip to content" in translations._catalog  # noqa: SLF001  (the loaded .mo)


# -- (c) no unwrapped text in templates ------------------------------------------------------

# Text that is the same in every language
ALLOWED_TEXT = {"Bluesky", "Facebook", "X", "Telegram"}
CHECKED_ATTRIBUTES = ("aria-label", "title", "alt", "placeholder")
_TRANS = re.compile(r"{%-?\s*trans\b.*?{%-?\s*endtrans\s*-?%}", re.S)
_CLASS_BLOCK = re.compile(r"{%-?\s*block \w+_class\s*-?%}.*?{%-?\s*endblock", re.S)  # CSS classes
_JINJA = re.compile(r"{#.*?#}|{{.*?}}|{%.*?%}", re.S)
_LETTER = re.compile(r"[^\W\d_]")
_PATH = re.compile(r"/[\w/.-]*")


def _without_translated_text(source: str) -> str:
    return _JINJA.sub(" ", _TRANS.sub(" ", _CLASS_BLOCK.sub(" ", source)))


class _TextFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in CHECKED_ATTRIBUTES and value:
                self._check(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._check(data)

    def _check(self, text: str) -> None:
        text = " ".join(text.split())
        if _PATH.fullmatch(text):
            return  # e.g. /articles/ before a slug
        if _LETTER.search(text) and text not in ALLOWED_TEXT:
            self.found.append(text)


def _untranslated(path: Path) -> list[str]:
    source = _without_translated_text(path.read_text())
    if path.suffix == ".txt":
        return [line for line in source.splitlines() if _LETTER.search(line)]
    finder = _TextFinder()
    finder.feed(source)
    finder.close()
    return finder.found


TEMPLATE_FILES = sorted(
    p for p in TEMPLATES.rglob("*") if p.suffix in (".html", ".txt") and p.is_file()
)


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_template_text_goes_through_gettext(path: Path) -> None:
    assert _untranslated(path) == []


def test_the_text_finder_finds_unwrapped_text(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        '<p>{{ _("Fine") }}</p><p>{% trans %}Also <b>fine</b>{% endtrans %}</p>'
        '<p>Not wrapped</p><a aria-label="Bare label">X</a><style>p { color: red }</style>'
    )
    assert _untranslated(page) == ["Not wrapped", "Bare label"]


# -- (d) strings really go through gettext at render time ------------------------------------

PSEUDO_LOCALE = "eo"  # any real locale Babel knows; the catalogue below is made up


@pytest.fixture
def pseudo_app(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    """The app with a made-up catalogue in which every message reads «‹msgid›»."""
    pseudo = Catalog(locale=PSEUDO_LOCALE, fuzzy=False)
    for message in _read_po(ENGLISH_PO):
        if isinstance(message.id, tuple):  # (singular, plural): one string for each
            pseudo.add(message.id, tuple(f"‹{i}›" for i in message.id), flags=message.flags)
        elif message.id:
            pseudo.add(message.id, f"‹{message.id}›", flags=message.flags)
    target = tmp_path / "translations" / PSEUDO_LOCALE / "LC_MESSAGES" / "messages.mo"
    target.parent.mkdir(parents=True)
    with target.open("wb") as fh:
        write_mo(fh, pseudo)
    config = app.extensions["babel"]
    saved = config.translation_directories, config.locale_selector
    config.translation_directories = [str(tmp_path / "translations")]
    config.locale_selector = lambda: PSEUDO_LOCALE
    with app.app_context():  # the domain is made on first use, from the current app
        cache = extensions.babel.domain_instance.cache  # shared by every app in this process
    cache.pop((PSEUDO_LOCALE, "messages"), None)
    yield app
    config.translation_directories, config.locale_selector = saved
    cache.pop((PSEUDO_LOCALE, "messages"), None)


def test_pages_render_translated_text(pseudo_app: Flask) -> None:
    client = pseudo_app.test_client()
    body = client.get("/login").get_data(as_text=True)
    assert "‹Skip to content›" in body  # base.html
    assert "‹Privacy and cookies›" in body  # a partial
    assert "<title>‹Sign in› ·" in body  # a block
    assert "‹Email›</label>" in body  # a WTForms label (lazy_gettext)
    assert "‹Keep me signed in on this device›" in body
    assert '‹New here? <a href="/signup">Create an account</a>.›' in body  # trans block


def test_messages_from_python_are_translated(pseudo_app: Flask) -> None:
    client = pseudo_app.test_client()
    data = {"email": "", "password": "x", "csrf_token": csrf_token(client)}
    body = client.post("/login", data=data).get_data(as_text=True)
    assert "‹Enter your email address.›" in body  # a validator message
    data = {"email": "nobody@example.org", "password": "wrong", "csrf_token": csrf_token(client)}
    body = client.post("/login", data=data).get_data(as_text=True)
    assert "‹That email and password do not match an account.›" in body  # flash()
    body = client.get("/no-such-page").get_data(as_text=True)
    assert "‹We could not find that page." in body  # the error page
    assert "<h1>‹Not Found›</h1>" in body


def test_emails_are_translated(pseudo_app: Flask) -> None:
    values = {"site_name": "The Courier", "site_url": "http://patrons.test", "subject": "S",
              "link": "http://patrons.test/verify?token=t", "hours": 48}  # fmt: skip
    with pseudo_app.test_request_context():
        text = render_template("emails/verify_email.txt", **values)
        html = render_template("emails/verify_email.html", **values)
    assert "‹Thank you for signing up at The Courier." in text
    assert "‹The link expires in 48 hours.›" in text
    assert ">‹Confirm my email address›</a>" in html
    assert '‹Sent by The Courier, <a href="http://patrons.test">http://patrons.test</a>›' in html


def test_variables_in_translated_text_are_escaped(pseudo_app: Flask) -> None:
    with pseudo_app.test_request_context():
        values = {"site_name": "<b>A&B</b>", "site_url": "http://x.test", "subject": "S",
                  "link": "http://x.test/v", "hours": 1}  # fmt: skip
        html = render_template("emails/verify_email.html", **values)
    assert "signing up at &lt;b&gt;A&amp;B&lt;/b&gt;." in html
    assert "<b>A&B</b>" not in html


def test_force_locale_switches_templates_within_a_request(pseudo_app: Flask) -> None:
    """web.py keeps the templates' translations per request; force_locale must still work."""
    with pseudo_app.test_request_context():
        assert render_template("errors/error.html", code=1, title="T", message="").count("‹") > 0
        with force_locale("en"):
            english = render_template("errors/error.html", code=1, title="T", message="")
        again = render_template("errors/error.html", code=1, title="T", message="")
    assert "‹" not in english
    assert "Go to the latest articles" in english
    assert "‹Go to the latest articles›" in again


def test_english_is_the_default(client: FlaskClient) -> None:
    body = client.get("/login").get_data(as_text=True)
    assert "‹" not in body
    assert "<title>Sign in ·" in body
