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
    g.public_page = True  # no session cookie is read into or written onto this response
    payload = _read_body()
    if payload is None:
        return _plain(413, "Too large.")
    gw = gateway()
    if gw is None:
        log.warning("stripe webhook: Stripe is not configured; event refused")
        return _plain(400, "Not configured.")
    try:
        event = gw.parse_event(payload, request.headers.get("Stripe-Signature"))
    except BadEvent as exc:  # (a kind of SignatureError: first)
        log.warning("stripe webhook: signed but unreadable event refused (%s)", exc)
        return _plain(400, "Unreadable event.")
    except SignatureError as exc:
        log.info("stripe webhook: refused (%s)", exc)
        return _plain(400, "Invalid signature.")
    refusal = _refusal(event, gw.livemode)
    if refusal is not None:
        return refusal
    is_new = inbox.store(db, event, clock.now())
    db.commit()
    inbox.apply_soon(current_app._get_current_object(), event.id)  # type: ignore[attr-defined]  # the proxy's documented accessor
    return _plain(200, "Received." if is_new else "Duplicate.")


def _refusal(event: Event, livemode: bool) -> Response | None:
    """The answer for an event this deployment does not store, if it is one."""
    if event.livemode != livemode:
        log.warning("stripe webhook: event %s is livemode=%s, this deployment is livemode=%s",
                    event.id, event.livemode, livemode)  # fmt: skip
        return _plain(400, "Environment mismatch.")
    if event.account is not None:
        log.info("stripe webhook: event %s of connected account %s ignored", event.id,
                 event.account)  # fmt: skip
        return _plain(200, "Ignored (connected account).")
    if event.type not in HANDLED_EVENTS:
        return _plain(200, "Ignored.")
    return None
