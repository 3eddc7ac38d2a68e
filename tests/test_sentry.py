"""Error reporting (patrons/core/error_reporting.py): nothing at all without SENTRY_DSN; with
it, an error's event carries no cookie, query string, form data, email or secret header.

The DSN tests run in a subprocess: sentry-sdk's integrations patch Flask for the whole
process, and the other tests must not run under them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from patrons.core.error_reporting import FILTERED, scrub_event

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, database_url: str, tmp_path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), database_url, str(tmp_path / "instance")],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_without_a_dsn_sentry_is_never_imported(database_url, tmp_path):
    out = _run(
        """
        import sys
        from pathlib import Path
        from patrons import create_app
        from tests.conftest import make_settings
        app = create_app(make_settings(sys.argv[1], Path(sys.argv[2])))
        app.test_client().get("/healthz")
        print("sentry_sdk" in sys.modules)
        """,
        database_url,
        tmp_path,
    )
    assert out.strip() == "False"


def test_with_a_dsn_a_view_error_is_sent_and_scrubbed(database_url, tmp_path):
    """A view that fails: the event is really made and sent (to a transport that keeps it, so
    nothing leaves the machine; the DSN names a closed port on loopback), with the request's
    path but none of its cookies, query string, Authorization header or email addresses (the
    breadcrumb of a log line and the exception's message name one)."""
    out = _run(
        """
        import json, sys
        from pathlib import Path
        import sentry_sdk
        from sentry_sdk.transport import Transport
        from patrons import create_app
        from tests.conftest import make_settings

        class Keep(Transport):
            def __init__(self, options=None):
                super().__init__(options)
                self.events = []
            def capture_envelope(self, envelope):
                for item in envelope.items:
                    if item.type == "event":
                        self.events.append(item.payload.json)

        app = create_app(make_settings(sys.argv[1], Path(sys.argv[2]),
                                       sentry_dsn="http://publickey@127.0.0.1:9/1"))
        kept = Keep()
        sentry_sdk.get_client().transport = kept

        @app.get("/_boom")
        def boom():
            import logging
            logging.getLogger("patrons.test").warning("mail to reader@example.org failed")
            raise RuntimeError("kaboom for reader@example.org")

        client = app.test_client()
        client.set_cookie("session", "secret-session-cookie")
        r = client.get("/_boom?token=secret-query-token",
                       headers={"Authorization": "Bearer secret-auth-header"})
        sentry_sdk.flush()
        print(json.dumps({"status": r.status_code, "events": kept.events}))
        """,
        database_url,
        tmp_path,
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == 500
    errors = [e for e in result["events"] if e.get("exception")]
    assert errors, "the error was reported"
    event = errors[0]
    assert "kaboom" in json.dumps(event["exception"])
    assert event["request"]["url"].endswith("/_boom")
    text = json.dumps(result["events"])
    assert "mail to [email] failed" in text  # the breadcrumb is there, scrubbed
    for secret in ("secret-session-cookie", "secret-query-token", "secret-auth-header",
                   "reader@example.org"):  # fmt: skip
        assert secret not in text, secret


def test_scrub_event_on_a_sample_event():
    event = {
        "request": {
            "url": "https://news.example/reset?token=abc",
            "query_string": "token=abc",
            "cookies": {"session": "s"},
            "data": {"email": "a@example.org"},
            "headers": {"Authorization": "Bearer t", "Cookie": "session=s",
                        "User-Agent": "curl", "Stripe-Signature": "t=1,v1=f"},  # fmt: skip
            "env": {"REMOTE_ADDR": "198.51.100.1"},
        },
        "user": {"id": "7", "email": "a@example.org", "ip_address": "198.51.100.1"},
        "breadcrumbs": {"values": [
            {"message": "email 3 to a@example.org not sent", "data": {}},
            {"data": {"url": "https://api.example/x?key=1", "http.query": "key=1"}},
        ]},
        "logentry": {"message": "to %s", "params": ["a@example.org"]},
        "exception": {"values": [{"type": "ValueError", "value": "bad a@example.org"}]},
    }  # fmt: skip
    scrubbed = scrub_event(event, {})
    request = scrubbed["request"]
    assert "cookies" not in request and "data" not in request and "query_string" not in request
    assert request["url"] == "https://news.example/reset"
    assert request["headers"]["Authorization"] == FILTERED
    assert request["headers"]["Cookie"] == FILTERED
    assert request["headers"]["Stripe-Signature"] == FILTERED
    assert request["headers"]["User-Agent"] == "curl"
    assert "REMOTE_ADDR" not in request["env"]
    assert scrubbed["user"] == {"id": "7"}
    text = json.dumps(scrubbed)
    assert "a@example.org" not in text and "key=1" not in text and "198.51.100.1" not in text
