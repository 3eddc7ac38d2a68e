"""`POST /stripe/webhook`: verify, store, acknowledge; the effects come after (inbox.py).

The order of the checks is the defence (docs/security.md, section 5: threats 1-9, 15 and 41):
1. a body over 64 KiB → 413, before anything reads it;
2. the signature on the raw bytes, with a strict reading of the header and of the body
   (`Gateway.parse_event`: 300 s tolerance both ways, JSON numbers in range, `livemode` a
   boolean) → 400 on failure;
3. an event of the other mode (test vs live) → 400;
4. an event of a connected account (`account`) → 200, nothing stored: this newsroom's
   pledges live in its own account;
5. a type this app does not handle → 200, nothing stored.

Then the event id and the ids it names go into the inbox (one row per event id: a redelivery
stores nothing) and the answer is 200, before any call to Stripe or any business logic, so
Stripe never waits on us and never times out on a slow Stripe read. The event is applied
right after the commit on a background thread, and by `flask stripe-worker` if that fails.

No session cookie is ever set on these responses, and CSRF does not apply: the signature is
the authentication (this is the only CSRF-exempt route).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar, cast

from flask import Blueprint, Response, current_app, g, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from patrons.core import clock
from patrons.core.db import session as db
from patrons.core.extensions import csrf
from patrons.core.signals import webhook_handled
from patrons.pledges import inbox
from patrons.pledges.applying import HANDLED_EVENTS
from patrons.pledges.billing import gateway
from patrons.pledges.stripe_objects import BadEvent, Event, SignatureError

bp = Blueprint("stripe", __name__)
log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 64 * 1024  # Stripe's events are a few KiB; anything larger is not one


def _plain(status: int, text: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain",
                    headers={"Cache-Control": "no-store"})  # fmt: skip


_View = TypeVar("_View", bound=Callable[..., ResponseReturnValue])


def _signed_by_stripe(view: _View) -> _View:
    """Exempt from CSRF, because Stripe's signature is this route's authentication (Flask-WTF's
    `csrf.exempt`, typed: Flask-WTF ships no type information)."""
    return cast(_View, csrf.exempt(view))


def _read_body() -> bytes | None:
    """The raw body, or None if it is larger than any event."""
    if (request.content_length or 0) > MAX_EVENT_BYTES:
        return None
    request.max_content_length = MAX_EVENT_BYTES  # also a cap on a body without a length
    try:
        return request.get_data(cache=False)
    except RequestEntityTooLarge:
        return None


@bp.post("/stripe/webhook")
@_signed_by_stripe
def webhook() -> Response:
    """Every refusal is logged at WARNING with its reason (never the payload or the secret)
    and every answer is counted (core/signals.py → patrons/metrics.py)."""
    g.public_page = True  # no session cookie is read into or written onto this response
    payload = _read_body()
    if payload is None:
        log.warning("stripe webhook: refused, body over %d bytes (Content-Length %s)",
                    MAX_EVENT_BYTES, request.content_length)  # fmt: skip
        return _answer(413, "Too large.", "unknown", "too_large")
    gw = gateway()
    if gw is None:
        log.warning("stripe webhook: refused, Stripe is not configured")
        return _answer(400, "Not configured.", "unknown", "not_configured")
    try:
        event = gw.parse_event(payload, request.headers.get("Stripe-Signature"))
    except BadEvent as exc:  # (a kind of SignatureError: first)
        log.warning("stripe webhook: refused, signed but unreadable event (%s)", exc)
        return _answer(400, "Unreadable event.", "unknown", "unreadable")
    except SignatureError as exc:
        log.warning("stripe webhook: refused, bad signature (%s)", exc)
        return _answer(400, "Invalid signature.", "unknown", "bad_signature")
    refusal = _refusal(event, gw.livemode)
    if refusal is not None:
        return refusal
    is_new = inbox.store(db, event, clock.now())
    db.commit()
    inbox.apply_soon(current_app._get_current_object(), event.id)  # type: ignore[attr-defined]  # the proxy's documented accessor
    if is_new:
        return _answer(200, "Received.", event.type, "received")
    return _answer(200, "Duplicate.", event.type, "duplicate")


def _answer(status: int, text: str, event_type: str, outcome: str) -> Response:
    webhook_handled.send(None, type=event_type, outcome=outcome)
    return _plain(status, text)


def _refusal(event: Event, livemode: bool) -> Response | None:
    """The answer for an event this deployment does not store, if it is one."""
    kind = event.type if event.type in HANDLED_EVENTS else "other"
    if event.livemode != livemode:
        log.warning("stripe webhook: refused, event %s is livemode=%s, this deployment is "
                    "livemode=%s", event.id, event.livemode, livemode)  # fmt: skip
        return _answer(400, "Environment mismatch.", kind, "wrong_mode")
    if event.account is not None:
        log.info("stripe webhook: event %s of connected account %s ignored", event.id,
                 event.account)  # fmt: skip
        return _answer(200, "Ignored (connected account).", kind, "ignored")
    if event.type not in HANDLED_EVENTS:
        log.debug("stripe webhook: event %s of unhandled type %s ignored", event.id, event.type)
        return _answer(200, "Ignored.", kind, "ignored")
    return None
