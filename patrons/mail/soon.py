"""Right after the request: send what the request queued, off the request, in one
background thread per process (inline in tests). What cannot go stays for the worker."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from patrons.core import background
from patrons.mail.queue import QUEUED
from patrons.mail.sending import send_pending

log = logging.getLogger("patrons.mail")  # one logger for the whole mail package

SOON_SMTP_TIMEOUT = 5.0  # send_soon: a slow server leaves the message to the worker sooner
_SENDER = "patrons.mail.sender"  # app.extensions key: the background sender


def send_soon(db: Session | None = None) -> None:
    """After the view's commit: send what `db` (the request's session) queued, off the request.

    Never raises and never waits for the mail server (except inline, in tests).
    """
    try:
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # the proxy's documented accessor
        session = db if db is not None else g.get("db_session")
        queued = session.info.pop(QUEUED, []) if session is not None else []
        states = (inspect(message) for message in queued)
        ids = [state.identity[0] for state in states if state.persistent and state.identity]
        if not ids:
            return
        if app.config.get("MAIL_SEND_INLINE", app.testing):
            _send_ids(app, ids)
        else:
            _background_sender(app).submit(ids)
    except Exception:
        log.exception("sending right away failed; the messages stay queued for send-mail")


def _send_ids(app: Flask, ids: list[int]) -> None:
    with app.app_context():
        session = app.extensions["db.sessionmaker"]()
        try:
            settings = app.config["SETTINGS"]
            send_pending(session, settings, len(ids), ids=ids, timeout=SOON_SMTP_TIMEOUT)
        finally:
            session.close()


def _background_sender(app: Flask) -> background.BackgroundRunner[int]:
    return background.runner(app, _SENDER, _send_ids, log)


def wait_for_background_sends(app: Flask, timeout: float | None = None) -> bool:
    """Wait for `send_soon`'s thread to finish (tests, shutdown); False if it is still busy."""
    return background.wait_for(app, _SENDER, timeout)
