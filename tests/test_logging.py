"""Logs an operator can read (patrons/core/logs.py): LOG_LEVEL and LOG_FORMAT, a request id on
every line of a request and on every response, one access line per request that never holds
a query string, an email or a token; every webhook refusal, failed event application and mail
failure logged with its reason."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from patrons import create_app
from patrons.core import clock
from patrons.core.config import ConfigError, Settings
from patrons.core.logs import configure
from patrons.mail import sending
from patrons.models import OutboundEmail
from patrons.pledges import inbox
from patrons.pledges.billing import gateway
from patrons.pledges.stripe_objects import Event
from tests.conftest import empty_tables, login, make_settings
from tests.factories import PASSWORD, make_article, make_user
from tests.pledges.conftest import event_payload, sign, stripe_settings

_made: list[Flask] = []


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Each test configures logging its own way; put the root logger back afterwards, and
    leave the database as empty as the other tests expect it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    while _made:
        made = _made.pop()
        empty_tables(made)
        made.extensions["db.engine"].dispose()


def _app(database_url: str, tmp_path: Path, **env: str) -> Flask:
    settings = Settings.from_env(
        {
            "PATRONS_ENV": "testing",
            "SECRET_KEY": "x" * 40,
            "DATABASE_URL": database_url,
            "PATRONS_INSTANCE": str(tmp_path / "instance"),
            **env,
        },
        password_hash_time_cost=1,
        password_hash_memory_cost=64,
        password_hash_parallelism=1,
    )
    app = create_app(settings)
    _made.append(app)
    return app


def _json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def _access(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "patrons.access"]


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL must be one of"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be text, json or none"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be at least 16"),
        ({"SENTRY_DSN": "not a dsn"}, "SENTRY_DSN must look like"),
    ],
)
def test_bad_settings_stop_the_start_with_a_clear_message(env: dict[str, str], message: str):
    base = {"PATRONS_ENV": "testing", "SECRET_KEY": "x" * 40, "DATABASE_URL": "sqlite://"}
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({**base, **env})


def test_defaults_text_in_development_json_in_production_none_in_tests():
    dev = Settings.from_env({"PATRONS_ENV": "testing", "SECRET_KEY": "x" * 40,
                             "DATABASE_URL": "sqlite://"})  # fmt: skip
    assert (dev.log_level, dev.log_format) == ("INFO", "none")  # tests: pytest captures
    dev = Settings.from_env({"PATRONS_ENV": "development", "SECRET_KEY": "x" * 40,
                             "DATABASE_URL": "sqlite://"})  # fmt: skip
    assert (dev.log_level, dev.log_format) == ("INFO", "text")
    prod = Settings.from_env(
        {
            "PATRONS_ENV": "production",
            "SECRET_KEY": "x" * 40,
            "DATABASE_URL": "sqlite://",
            "MAIL_URL": "smtp://127.0.0.1:25",
            "LOG_LEVEL": "warning",
        }  # fmt: skip
    )
    assert (prod.log_level, prod.log_format) == ("WARNING", "json")


# -- formats and request ids -----------------------------------------------------------------
# (buffered=True: like gunicorn, the test client then closes the response, which is when the
# access line is written; unbuffered, it closes it only when the test does)


def test_json_lines_carry_time_level_logger_and_the_request_id(database_url, tmp_path, capsys):
    app = _app(database_url, tmp_path, LOG_FORMAT="json")

    @app.get("/_log_something")
    def log_something() -> str:
        logging.getLogger("patrons.somewhere").warning("inside the view")
        return "ok"

    capsys.readouterr()
    response = app.test_client().get(
        "/_log_something?email=reader@example.org&token=abc", buffered=True
    )
    rid = response.headers["X-Request-ID"]
    assert len(rid) == 32
    lines = _json_lines(capsys.readouterr().err)
    inside = [line for line in lines if line["message"] == "inside the view"]
    assert len(inside) == 1
    assert inside[0]["level"] == "WARNING" and inside[0]["logger"] == "patrons.somewhere"
    assert inside[0]["request_id"] == rid
    assert inside[0]["time"].endswith("Z") and "T" in inside[0]["time"]
    [access] = _access(lines)
    assert access["request_id"] == rid
    assert access["method"] == "GET" and access["path"] == "/_log_something"
    assert access["route"] == "/_log_something" and access["status"] == 200
    assert access["signed_in"] is False and access["duration_ms"] >= 0
    everything = json.dumps(lines)
    assert "reader@example.org" not in everything and "token=abc" not in everything


def test_text_lines_name_the_level_logger_and_request_id(database_url, tmp_path, capsys):
    app = _app(database_url, tmp_path, LOG_FORMAT="text")
    capsys.readouterr()
    response = app.test_client().get(
        "/healthz", headers={"X-Request-ID": "proxy-42.a_b"}, buffered=True
    )
    assert response.headers["X-Request-ID"] == "proxy-42.a_b"
    [line] = [x for x in capsys.readouterr().err.splitlines() if "patrons.access" in x]
    stamp, level, name, rid, rest = line.split(" ", 4)
    assert stamp.endswith("Z") and level == "INFO" and name == "patrons.access"
    assert rid == "[proxy-42.a_b]"
    assert rest.startswith("GET /healthz route=/healthz status=200 duration_ms=")
    assert rest.endswith("signed_in=no")


@pytest.mark.parametrize("given", ["x" * 65, "has space", "tab\there", "semi;colon", "", "é"])
def test_an_insane_request_id_is_replaced(app, client, given):
    response = client.get("/healthz", headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] != given
    assert len(response.headers["X-Request-ID"]) == 32


def test_every_response_has_a_request_id_even_a_404_and_an_error(app, client):
    assert client.get("/no/such/page").headers["X-Request-ID"]
    assert client.post("/stripe/webhook", data=b"{}").headers["X-Request-ID"]


def test_a_signed_in_request_says_so_without_naming_anyone(database_url, tmp_path, capsys):
    app = _app(database_url, tmp_path, LOG_FORMAT="json")
    db = app.extensions["db.sessionmaker"]()
    make_user(db, email="someone.private@example.org")
    db.close()
    client = app.test_client()
    login(client, "someone.private@example.org", PASSWORD)
    capsys.readouterr()
    client.get("/account", buffered=True)
    err = capsys.readouterr().err
    [access] = [a for a in _access(_json_lines(err)) if a["path"] == "/account"]
    assert access["signed_in"] is True
    assert "someone.private" not in err


def test_the_article_fast_path_gets_an_access_line_and_a_request_id(database_url, tmp_path, capsys):
    app = _app(database_url, tmp_path, LOG_FORMAT="json")
    db = app.extensions["db.sessionmaker"]()
    article = make_article(db, title="Logged either way")
    db.close()
    client = app.test_client()
    client.get(f"/articles/{article.slug}")  # Flask renders and caches it
    assert app.extensions["article_fast_path"]._cached_page(
        {"REQUEST_METHOD": "GET", "PATH_INFO": f"/articles/{article.slug}"}
    )
    capsys.readouterr()
    response = client.get(
        f"/articles/{article.slug}", headers={"X-Request-ID": "edge-1"}, buffered=True
    )
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "edge-1"
    [access] = _access(_json_lines(capsys.readouterr().err))
    assert access["route"] == "/articles/<slug>" and access["request_id"] == "edge-1"
    assert access["path"] == f"/articles/{article.slug}" and access["status"] == 200


def test_an_unprintable_path_cannot_forge_a_line(database_url, tmp_path, capsys):
    app = _app(database_url, tmp_path, LOG_FORMAT="text")
    capsys.readouterr()
    app.test_client().get("/nothing%0a2026-01-01T00:00:00Z INFO forged", buffered=True)
    lines = [x for x in capsys.readouterr().err.splitlines() if "forged" in x]
    assert len(lines) == 1 and "\\n" in lines[0] and "route=-" in lines[0]


def test_caplog_still_sees_records_after_configure(caplog):
    configure("INFO", "json")
    configure("DEBUG", "text")  # called again (each create_app): still one handler of ours
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_patrons", False)]
    assert len(ours) == 1
    with caplog.at_level(logging.WARNING, logger="patrons.anything"):
        logging.getLogger("patrons.anything").warning("seen by caplog")
    assert [r.getMessage() for r in caplog.records] == ["seen by caplog"]


# -- webhook refusals, failed applications, mail failures ------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stripe_app(database_url: str, tmp_path: Path) -> Flask:
    """Stripe configured, but nothing listens where its API should be: refusals need no call."""
    base = f"http://127.0.0.1:{_closed_port()}"
    app = create_app(stripe_settings(database_url, tmp_path / "instance", base, stripe_timeout=1))
    _made.append(app)
    return app


def _post(app: Flask, body: bytes | str, signature: str | None) -> Any:
    headers = {"Stripe-Signature": signature} if signature is not None else {}
    return app.test_client().post("/stripe/webhook", data=body, headers=headers,
                                  content_type="application/json")  # fmt: skip


def _refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "patrons.pledges.webhooks"]


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("no signature", 400, "bad signature (missing Stripe-Signature header)"),
        ("wrong secret", 400, "bad signature (no v1 signature matches)"),
        ("too big", 413, "body over 65536 bytes"),
        ("signed but not JSON", 400, "signed but unreadable event (not JSON"),
        ("live event here", 400, "is livemode=True, this deployment is livemode=False"),
    ],
)
def test_every_webhook_refusal_is_a_warning_with_its_reason(
    stripe_app, caplog, case, status, reason
):
    payload = event_payload("evt_logged", "invoice.paid", {"id": "in_1", "object": "invoice"})
    signature: str | None = sign(payload)
    if case == "no signature":
        signature = None
    elif case == "wrong secret":
        signature = sign(payload, secret="whsec_" + "0" * 32)
    elif case == "too big":
        payload = " " * (64 * 1024 + 1)
    elif case == "signed but not JSON":
        payload = "{not json"
        signature = sign(payload)
    elif case == "live event here":
        payload = event_payload("evt_live", "invoice.paid", {"id": "in_1", "object": "invoice"},
                                livemode=True)  # fmt: skip
        signature = sign(payload)
    with caplog.at_level(logging.INFO, logger="patrons.pledges.webhooks"):
        assert _post(stripe_app, payload, signature).status_code == status
    [record] = _refusals(caplog)
    assert record.levelno == logging.WARNING
    assert "refused" in record.getMessage() and reason in record.getMessage()
    secret = stripe_app.config["SETTINGS"].stripe_webhook_secret
    assert secret not in caplog.text and '"object": "invoice"' not in caplog.text


def test_a_webhook_without_stripe_configured_is_a_warning(app, caplog):
    with caplog.at_level(logging.INFO, logger="patrons.pledges.webhooks"):
        assert _post(app, "{}", "t=1,v1=" + "0" * 64).status_code == 400
    [record] = _refusals(caplog)
    assert record.levelno == logging.WARNING and "not configured" in record.getMessage()


def test_a_failed_event_application_is_a_warning_with_its_reason(stripe_app, caplog):
    db: Session = stripe_app.extensions["db.sessionmaker"]()
    event = Event("evt_unapplied", "invoice.paid", clock.now(), False,
                  {"id": "in_nowhere", "object": "invoice"})  # fmt: skip
    inbox.store(db, event, clock.now())
    db.commit()
    with stripe_app.app_context(), caplog.at_level(logging.INFO, logger="patrons.pledges.inbox"):
        gw = gateway(stripe_app)
        assert inbox.apply_due(db, gw, grace_days=7) == {"pending": 1}
    db.close()
    [record] = [r for r in caplog.records if r.name == "patrons.pledges.inbox"]
    assert record.levelno == logging.WARNING
    assert "evt_unapplied" in record.getMessage() and "trying again later" in record.getMessage()
    assert "not answering" in record.getMessage() or "connect" in record.getMessage().lower()


def test_a_mail_failure_is_a_warning_with_its_reason(database_url, tmp_path, caplog):
    port = _closed_port()
    settings = make_settings(database_url, tmp_path / "instance",
                             mail_url=f"smtp://127.0.0.1:{port}")  # fmt: skip
    app = create_app(settings)
    _made.append(app)
    db: Session = app.extensions["db.sessionmaker"]()
    now = clock.now()
    db.add(OutboundEmail(to_address="reader@example.org", subject="Hello", text_body="Hello",
                         html_body="<p>Hello</p>", kind="test", created_at=now,
                         next_attempt_at=now))  # fmt: skip
    db.commit()
    with app.app_context(), caplog.at_level(logging.WARNING, logger="patrons.mail"):
        report = sending.send_pending(db, settings, timeout=1)
    db.close()
    assert report.deferred == 1
    [record] = [r for r in caplog.records if r.name == "patrons.mail"]
    assert record.levelno == logging.WARNING and "not sent" in record.getMessage()
    assert "Error" in record.getMessage()  # the exception's class: the reason
