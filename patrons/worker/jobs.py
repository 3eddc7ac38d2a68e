"""The worker's jobs: what each does, how often, and how it is shared between workers.

`every=None`: run on every pass, by every worker, without a lease; the rows the job works on
are claimed one by one (mail, Stripe events, rounds). Otherwise the job runs when its
`scheduled_jobs` row is due and this worker claimed it (leases.py), at most once per `every`
across all workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask
from sqlalchemy.orm import Session

from patrons import mail
from patrons.core import clock
from patrons.core.config import Settings
from patrons.pledges import inbox
from patrons.pledges.billing import gateway
from patrons.pledges.cli import sync_once
from patrons.reports import rollup
from patrons.voting import closing
from patrons.worker import purges

MAIL_BATCH = 100  # messages per batch; a full batch means more may be due: go on at once


@dataclass(frozen=True)
class Context:
    app: Flask
    db: Session
    settings: Settings
    stopping: threading.Event


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Context], str]  # a line for the log ("" when there was nothing to do)
    every: timedelta | None = None
    lease: timedelta = timedelta(minutes=30)  # longer than a run may take
    needs_stripe: bool = False


def send_mail(ctx: Context) -> str:
    total = mail.SendReport()
    while not ctx.stopping.is_set():
        report = mail.send_pending(ctx.db, ctx.settings, limit=MAIL_BATCH)
        total = mail.SendReport(total.sent + report.sent, total.deferred + report.deferred,
                                total.failed + report.failed)  # fmt: skip
        if report.total < MAIL_BATCH:
            break
    return total.summary() if total.total else ""


def apply_stripe_events(ctx: Context) -> str:
    gw = gateway(ctx.app)
    assert gw is not None  # needs_stripe
    counts = inbox.apply_due(ctx.db, gw, grace_days=ctx.settings.pledge_grace_days)
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def close_rounds(ctx: Context) -> str:
    s = ctx.settings
    done = closing.close_due_rounds(ctx.db, clock.now(), s.pledge_grace_days, s.site_url)
    if not done["rounds"]:
        return ""
    mail.send_soon(ctx.db)  # no-op outside a request's thread pool; the mail job sends them
    return f"{done['rounds']} rounds closed, {done['mails']} results mails queued"


def sync_stripe(ctx: Context) -> str:
    gw = gateway(ctx.app)
    assert gw is not None  # needs_stripe
    changes = sync_once(gw)
    return f"sync: {len(changes)} changes" + "".join(f"\n  {line}" for line in changes)


def update_reports(ctx: Context) -> str:
    done = rollup.update(ctx.db, clock.now(), ctx.settings.pledge_grace_days)
    ctx.db.commit()
    return f"reports rollup: {done.rows} rows added" if done.rows else ""


def purge(ctx: Context) -> str:
    done = purges.purge_all(ctx.db, ctx.settings, clock.now())
    return ", ".join(f"{n} {name}" for name, n in done.items() if n)


JOBS: tuple[Job, ...] = (
    Job("send-mail", send_mail),
    Job("stripe-events", apply_stripe_events, needs_stripe=True),
    Job("close-rounds", close_rounds),
    Job(
        "sync-stripe",
        sync_stripe,
        every=timedelta(hours=24),
        lease=timedelta(hours=1),
        needs_stripe=True,
    ),  # fmt: skip
    Job("update-reports", update_reports, every=timedelta(hours=1)),
    Job("purge", purge, every=timedelta(hours=1)),
)
JOB_NAMES = tuple(job.name for job in JOBS)
RETRY_AFTER_FAILURE = timedelta(minutes=5)  # a periodic job that failed is tried again then
