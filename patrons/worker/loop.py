"""The worker's passes: heartbeat, then each job in turn, a failure logged and the rest run."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import FrameType

import click
from flask import Flask

from patrons.core import clock
from patrons.core.config import ConfigError, Settings
from patrons.pledges.billing import gateway
from patrons.worker import leases
from patrons.worker.jobs import JOBS, RETRY_AFTER_FAILURE, Context, Job

log = logging.getLogger("patrons.worker")


@dataclass
class PassReport:
    ran: list[str] = field(default_factory=list)  # the jobs this worker ran
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not due, claimed elsewhere, or no Stripe


@dataclass
class Worker:
    app: Flask
    worker_id: str = field(default_factory=leases.default_worker_id)
    only: tuple[str, ...] = ()  # job names; empty: all
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.started_at = clock.now()

    def jobs(self) -> Iterable[Job]:
        return [job for job in JOBS if not self.only or job.name in self.only]

    def run_pass(self) -> PassReport:
        """Everything due, once, in an app context and a session of its own."""
        report = PassReport()
        with self.app.app_context():
            db = self.app.extensions["db.sessionmaker"]()
            settings: Settings = self.app.config["SETTINGS"]
            try:
                leases.beat(db, self.worker_id, self.started_at, clock.now())
                ctx = Context(self.app, db, settings, self.stopping)
                for job in self.jobs():
                    if self.stopping.is_set():
                        break
                    self._run_job(job, ctx, report)
                leases.beat(db, self.worker_id, self.started_at, clock.now())
            finally:
                db.close()  # a worker keeps no objects (or connection) between passes
        return report

    def _run_job(self, job: Job, ctx: Context, report: PassReport) -> None:
        if job.needs_stripe and gateway(self.app) is None:
            report.skipped.append(job.name)
            return
        db = ctx.db
        if job.every is not None and not leases.claim(
            db, job.name, self.worker_id, clock.now(), job.lease
        ):
            report.skipped.append(job.name)
            return
        try:
            line = job.run(ctx)
        except ConfigError:
            db.rollback()
            raise  # a setting to fix (e.g. MAIL_URL): stop and say so
        except Exception as exc:  # logged; the next pass (or the retry) does it again
            db.rollback()
            log.exception("worker %s: job %s failed", self.worker_id, job.name)
            report.failed.append(job.name)
            if job.every is not None:
                now = clock.now()
                leases.finish(db, job.name, self.worker_id, now,
                              now + min(job.every, RETRY_AFTER_FAILURE),
                              f"{type(exc).__name__}: {exc}")  # fmt: skip
            return
        report.ran.append(job.name)
        if line:
            log.info("%s: %s", job.name, line)
        if job.every is not None:
            now = clock.now()
            leases.finish(db, job.name, self.worker_id, now, now + job.every)

    def run(self, *, once: bool, interval: float) -> None:
        """Pass after pass, `interval` seconds apart, until `stop()` (SIGTERM, SIGINT)."""
        while not self.stopping.is_set():
            try:
                self.run_pass()
            except ConfigError:
                raise
            except Exception:  # e.g. the database away: log, wait, try again
                log.exception("worker %s: the pass failed; trying again", self.worker_id)
            if once:
                return
            self.stopping.wait(interval)

    def stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if not self.stopping.is_set():
            log.info("worker %s: stopping after the current job", self.worker_id)
        self.stopping.set()

    def handle_signals(self) -> None:
        """SIGTERM and SIGINT finish the job under way, then stop (main thread only)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)


def echo_report(report: PassReport) -> None:
    click.echo(f"ran: {', '.join(report.ran) or 'nothing'}"
               + (f"; failed: {', '.join(report.failed)}" if report.failed else ""))  # fmt: skip
