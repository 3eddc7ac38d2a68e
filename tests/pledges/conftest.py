"""localstripe on a free loopback port for the whole session (started by the project's own
launcher, `python -m patrons.fakestripe`), emptied before each test that uses it; an app
whose settings point at it; and signing helpers for webhook payloads.

Elsewhere nothing needs starting by hand: localstripe is a dev dependency in pyproject.toml.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from patrons.config import Settings
from tests.conftest import make_settings

WEBHOOK_SECRET = "whsec_test_patrons"
SECRET_KEY = "sk_test_patrons"
PUBLISHABLE_KEY = "pk_test_patrons"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "patrons.fakestripe", "--port", str(port),
         "--webhook-delay", "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/v1/balance", auth=(SECRET_KEY, ""), timeout=0.5)
            break
        except requests.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise RuntimeError(f"localstripe did not start: {err}") from None
            time.sleep(0.05)
    yield url
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def localstripe(localstripe_url: str) -> str:
    """localstripe, emptied (its webhook registrations survive; tests re-register theirs)."""
    requests.delete(f"{localstripe_url}/_config/data", timeout=5).raise_for_status()
    return localstripe_url


def stripe_settings(database_url: str, instance: Path, api_base: str, **kw: object) -> Settings:
    return make_settings(
        database_url,
        instance,
        stripe_secret_key=SECRET_KEY,
        stripe_publishable_key=PUBLISHABLE_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=api_base,
        **kw,
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path, localstripe: str) -> Settings:
    """Every test in tests/pledges/ runs against an empty localstripe."""
    return stripe_settings(database_url, tmp_path / "instance", localstripe)


def sign(payload: str | bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header made by the SDK's own helper."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    if timestamp is None:
        return stripe.WebhookSignature.generate_signature_header(text, secret)
    return stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=timestamp)


def event_payload(event_id: str, event_type: str, obj: dict[str, Any], **extra: Any) -> str:
    body = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "data": {"object": obj},
        **extra,
    }
    return json.dumps(body)
