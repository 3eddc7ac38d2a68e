"""deploy/nginx.conf in front of Gunicorn run with deploy/gunicorn.conf.py, both as shipped
(only the documented placeholders filled in): the proxy headers reach the app, anonymous
article pages come from nginx's cache, a request with the session cookie never does and is
never stored, static files come from disk.

Debian's nginx (/usr/sbin/nginx) is needed: without it the module is skipped, unless
REQUIRE_NGINX=1 (.ci/run installs nginx and sets it), when it fails instead."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template
from urllib.parse import urlencode

import pytest

from patrons.demo import DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD
from tests.deploy.servers import ROOT, app_env, free_port, gunicorn, migrate_and_seed

NGINX = Path("/usr/sbin/nginx")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not NGINX.exists() and os.environ.get("REQUIRE_NGINX") != "1",
        reason="needs Debian's nginx (apt-get install nginx), or REQUIRE_NGINX=1 to fail",
    ),
]
PLACEHOLDERS = (
    "SERVER_NAME",
    "HTTP_PORT",
    "HTTPS_PORT",
    "TLS_CERTIFICATE",
    "TLS_CERTIFICATE_KEY",
    "UPSTREAM",
    "STATIC_ROOT",
    "CACHE_DIR",
)
ARTICLE = "/articles/bilyi-brid-ferry-returns"  # demo articles (patrons/demo/articles/)
OTHER_ARTICLE = "/articles/grain-cooperative-rail"
THIRD_ARTICLE = "/articles/how-we-correct-mistakes"
FOURTH_ARTICLE = "/articles/sosnivka-library-generator"
MARKER = "nginx-only.txt"  # in nginx's static folder only: the app would answer 404
# the main configuration Debian's /etc/nginx/nginx.conf would be, in a temporary folder
MAIN_CONF = """
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 128; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/patrons.conf;
}}
"""


@dataclass
class Stack:
    https_port: int
    http_port: int
    certificate: Path
    static_root: Path

    def fetch(
        self,
        path: str,
        cookie: str | None = None,
        source: str = "127.0.0.1",
        method: str = "GET",
        form: dict[str, str] | None = None,
        **headers: str,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """A request over TLS from `source` (any 127.x address is this machine's)."""
        context = ssl.create_default_context(cafile=str(self.certificate))
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.https_port, context=context, source_address=(source, 0), timeout=30
        )
        sent = {"Host": "patrons.test", **{k.replace("_", "-"): v for k, v in headers.items()}}
        if cookie:
            sent["Cookie"] = cookie
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()


def cookies_set(headers: http.client.HTTPMessage, jar: dict[str, str]) -> str:
    """The Cookie header a browser would send next, after these Set-Cookie headers."""
    for line in headers.get_all("Set-Cookie") or []:
        name, _, value = line.split(";", 1)[0].partition("=")
        jar[name.strip()] = value
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def render_site_conf(values: dict[str, str]) -> str:
    """What `envsubst '$SERVER_NAME …'` makes of deploy/nginx.conf (README): the eight
    placeholders, and nothing else."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    assert set(values) == set(PLACEHOLDERS)
    return Template(text).safe_substitute(values)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=patrons.test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:patrons.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("nginx")
    env = app_env(f"sqlite:///{tmp / 'patrons.db'}", tmp / "instance", PROXY_HOPS="1")
    migrate_and_seed(env)
    static_root = tmp / "static"
    shutil.copytree(ROOT / "patrons" / "static", static_root)
    (static_root / MARKER).write_text("served by nginx\n")
    cert, key = self_signed_certificate(tmp)
    https_port, http_port = free_port(), free_port()
    with gunicorn(env, tmp / "gunicorn.log", "tests.deploy.probe_app:create()") as upstream:
        site = render_site_conf(
            {
                "SERVER_NAME": "patrons.test",
                "HTTP_PORT": str(http_port),
                "HTTPS_PORT": str(https_port),
                "TLS_CERTIFICATE": str(cert),
                "TLS_CERTIFICATE_KEY": str(key),
                "UPSTREAM": upstream.removeprefix("http://"),
                "STATIC_ROOT": str(static_root),
                "CACHE_DIR": str(tmp / "cache"),
            }
        )
        (tmp / "patrons.conf").write_text(site)
        # pytest's folders are private to root: nginx's workers run as root to read them
        user = "user root;" if os.geteuid() == 0 else ""
        (tmp / "nginx.conf").write_text(MAIN_CONF.format(tmp=tmp, user=user))
        command = [str(NGINX), "-e", str(tmp / "error.log"), "-p", str(tmp), "-c"]
        check = subprocess.run([*command, str(tmp / "nginx.conf"), "-t"], capture_output=True)
        assert check.returncode == 0, check.stderr.decode()
        nginx = subprocess.Popen([*command, str(tmp / "nginx.conf"), "-g", "daemon off;"])
        try:
            result = Stack(https_port, http_port, cert, static_root)
            _wait_for_nginx(result, nginx)
            yield result
        finally:
            nginx.terminate()
            nginx.wait(timeout=30)


def _wait_for_nginx(stack: Stack, nginx: subprocess.Popen[bytes]) -> None:
    for _ in range(100):
        if nginx.poll() is not None:
            raise AssertionError("nginx exited")
        try:
            stack.fetch("/healthz")
            return
        except OSError:
            subprocess.run(["sleep", "0.1"], check=True)
    raise AssertionError("nginx did not answer")


def test_the_app_sees_the_reader_address_and_https_from_the_proxy_headers(stack: Stack) -> None:
    status, _, body = stack.fetch("/_probe", source="127.0.0.2")
    assert status == 200
    seen = json.loads(body)
    # nginx connects from 127.0.0.1; the reader came from 127.0.0.2 over TLS
    assert seen == {"remote_addr": "127.0.0.2", "scheme": "https", "host": "patrons.test"}


def test_an_address_the_reader_claims_is_not_believed(stack: Stack) -> None:
    _, _, body = stack.fetch("/_probe", source="127.0.0.3", X_Forwarded_For="203.0.113.9")
    assert json.loads(body)["remote_addr"] == "127.0.0.3"


def test_an_anonymous_article_page_is_a_cache_hit_the_second_time(stack: Stack) -> None:
    statuses = []
    for _ in range(2):
        status, headers, body = stack.fetch(ARTICLE)
        assert status == 200
        statuses.append(headers["X-Cache-Status"])
    assert statuses[0] in ("MISS", "EXPIRED", "HIT")  # HIT if another test asked before
    assert statuses[1] == "HIT"
    assert b"Sign out" not in body


def test_each_answer_carries_its_own_request_id_even_from_the_cache(stack: Stack) -> None:
    ids = []
    for _ in range(3):
        status, headers, _ = stack.fetch(FOURTH_ARTICLE)
        assert status == 200
        ids.append(headers["X-Request-ID"])
    assert headers["X-Cache-Status"] == "HIT"
    assert len(set(ids)) == 3  # not the id of the request that filled the cache
    assert all(len(one) == 32 for one in ids)  # nginx's $request_id: 32 hex digits
    status, headers, _ = stack.fetch("/_probe")
    assert len(headers.get_all("X-Request-ID") or []) == 1  # the app's copy hidden


@pytest.mark.parametrize("cookie", ["session=anything", "__Host-session=x", "a=1; session=y"])
def test_a_request_with_the_session_cookie_is_never_answered_from_the_cache(
    stack: Stack, cookie: str
) -> None:
    stack.fetch(OTHER_ARTICLE)
    assert stack.fetch(OTHER_ARTICLE)[1]["X-Cache-Status"] == "HIT"  # it is there to serve
    status, headers, _ = stack.fetch(OTHER_ARTICLE, cookie=cookie)
    assert status == 200
    assert headers["X-Cache-Status"] == "BYPASS"


def test_the_answer_to_a_request_with_the_session_cookie_is_never_stored(stack: Stack) -> None:
    status, headers, _ = stack.fetch(THIRD_ARTICLE, cookie="session=anything")
    assert (status, headers["X-Cache-Status"]) == (200, "BYPASS")
    # had that answer been stored, the next anonymous request would be a HIT
    assert stack.fetch(THIRD_ARTICLE)[1]["X-Cache-Status"] == "MISS"


def test_a_signed_in_reader_gets_their_own_page_not_the_cached_one(stack: Stack) -> None:
    stack.fetch(ARTICLE)
    assert stack.fetch(ARTICLE)[1]["X-Cache-Status"] == "HIT"
    jar: dict[str, str] = {}
    _, headers, body = stack.fetch("/csrf-token")
    cookie = cookies_set(headers, jar)
    credentials = {"email": DEMO_STAFF_EMAIL, "password": DEMO_STAFF_PASSWORD}
    form = {**credentials, "csrf_token": json.loads(body)["token"]}
    # over https Flask-WTF also wants a Referer of this site (the app knows it is https)
    referer = "https://patrons.test/login"
    status, headers, body = stack.fetch(
        "/login", cookie=cookie, method="POST", form=form, Referer=referer
    )
    assert status == 302, body[:500]
    cookie = cookies_set(headers, jar)
    status, headers, body = stack.fetch(ARTICLE, cookie=cookie)
    assert status == 200
    assert headers["X-Cache-Status"] == "BYPASS"
    assert b"Sign out" in body
    assert "no-store" in headers["Cache-Control"]
    # and the cached anonymous copy is still the anonymous one
    status, headers, body = stack.fetch(ARTICLE)
    assert (headers["X-Cache-Status"], b"Sign out" in body) == ("HIT", False)


@pytest.mark.parametrize("path", ["/login", "/support", "/csrf-token"])
def test_pages_the_app_marks_private_are_never_cached(stack: Stack, path: str) -> None:
    for _ in range(2):
        status, headers, _ = stack.fetch(path)
        assert status == 200
        assert headers["X-Cache-Status"] != "HIT"


def test_static_files_are_served_by_nginx_from_disk(stack: Stack) -> None:
    status, headers, body = stack.fetch("/static/" + MARKER)
    assert (status, body) == (200, b"served by nginx\n")  # the app has no such file
    assert "X-Cache-Status" not in headers  # not through the proxy location
    css = next((stack.static_root / "css").glob("*.css"))
    status, headers, body = stack.fetch(f"/static/css/{css.name}?v=0123456789ab")
    assert status == 200
    assert body == css.read_bytes()
    assert headers["Content-Type"].startswith("text/css")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=315360000" in headers["Cache-Control"]  # fingerprinted: kept for good


def test_plain_http_is_sent_to_https(stack: Stack) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=30)
    try:
        conn.request("GET", ARTICLE + "?x=1", headers={"Host": "patrons.test"})
        response = conn.getresponse()
        assert response.status == 301
        assert response.headers["Location"] == f"https://patrons.test{ARTICLE}?x=1"
    finally:
        conn.close()
