"""One background thread per app and process that works through ids handed to it after a
request's commit (mail to send, Stripe events to apply), started when there is work and gone
when there is none. What it cannot finish stays in the database for the worker commands."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from flask import Flask

_Id = TypeVar("_Id")
_lock = threading.Lock()


class BackgroundRunner(Generic[_Id]):
    def __init__(
        self, app: Flask, work: Callable[[Flask, list[_Id]], None], name: str, log: logging.Logger
    ) -> None:
        self.app = app
        self.work = work
        self.name = name
        self.log = log
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.pending: list[_Id] = []
        self.thread: threading.Thread | None = None

    def submit(self, ids: list[_Id]) -> None:
        with self.lock:
            self.pending.extend(ids)
            if self.thread is None:
                # not a daemon: a process shutting down finishes the work in hand (bounded by
                # its timeouts) instead of leaving it for a lease to run out
                self.thread = threading.Thread(target=self._run, name=self.name)
                self.thread.start()

    def _run(self) -> None:
        while True:
            with self.lock:
                ids, self.pending = self.pending, []
                if not ids:
                    self.thread = None
                    return
            try:
                self.work(self.app, ids)
            except Exception:
                self.log.exception("%s: background work failed; it stays for the worker", self.name)

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


def runner(
    app: Flask, key: str, work: Callable[[Flask, list[_Id]], None], log: logging.Logger
) -> BackgroundRunner[_Id]:
    """The app's runner under `key` in app.extensions (a forked process starts its own)."""
    with _lock:
        found: BackgroundRunner[_Id] | None = app.extensions.get(key)
        if found is None or found.pid != os.getpid():
            found = app.extensions[key] = BackgroundRunner(app, work, key, log)
        return found


def wait_for(app: Flask, key: str, timeout: float | None = None) -> bool:
    """Wait for the runner under `key` to finish (tests, shutdown); False if still busy."""
    found: BackgroundRunner[object] | None = app.extensions.get(key)
    return found.wait(timeout) if found is not None else True
