"""Right after the request: send what the request queued, off the request, in one
background thread per process (inline in tests). What cannot go stays for the worker."""

from __future__ import annotations

import logging
import os
import threading
import time

from flask import Flask, current_app, g
from sqlalchemy import inspect
from sqlalchemy.orm import Session

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


class _BackgroundSender:
    """One thread per app and process, started when there is work and gone when there is none."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.pending: list[int] = []
        self.thread: threading.Thread | None = None

    def submit(self, ids: list[int]) -> None:
        with self.lock:
            self.pending.extend(ids)
            if self.thread is None:
                # not a daemon: a worker shutting down finishes the message in hand (bounded
                # by the SMTP timeout) instead of leaving it for the lease to run out
                self.thread = threading.Thread(target=self._run, name="patrons-mail")
                self.thread.start()

    def _run(self) -> None:
        while True:
            with self.lock:
                ids, self.pending = self.pending, []
                if not ids:
                    self.thread = None
                    return
            try:
                _send_ids(self.app, ids)
            except Exception:
                log.exception("sending right away failed; the messages stay queued for send-mail")

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.lock:
                thread = self.thread
            if thread is None:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            thread.join(left)  # a submit meanwhile may have started another: look again


_senders_lock = threading.Lock()


def _background_sender(app: Flask) -> _BackgroundSender:
    with _senders_lock:
        sender = app.extensions.get(_SENDER)
        if sender is None or sender.pid != os.getpid():  # a forked worker starts its own
            sender = app.extensions[_SENDER] = _BackgroundSender(app)
        return sender


def wait_for_background_sends(app: Flask, timeout: float | None = None) -> bool:
    """Wait for `send_soon`'s thread to finish (tests, shutdown); False if it is still busy."""
    sender = app.extensions.get(_SENDER)
    return sender.wait(timeout) if sender is not None else True
