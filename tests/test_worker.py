"""`flask --app patrons worker`: each job in one pass, rounds closed and mailed once with two
workers at once, a job that fails mid-batch losing nothing and doing nothing twice, the purges
keeping what must stay, the heartbeat, the periodic jobs' leases.

On PostgreSQL (TEST_DATABASE_URL) the two workers race for real row locks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import (
    AuditEvent,
    EmailToken,
    OutboundEmail,
    Round,
    ScheduledJob,
    StripeEvent,
    User,
    UserSession,
    Vote,
    WorkerHeartbeat,
)
from patrons.voting import closing
from patrons.worker import jobs, leases
from patrons.worker.loop import Worker
from tests.factories import make_patron, make_round, make_user


def fresh(db: Session) -> Session:
    db.rollback()
    db.expire_all()
    return db


def count(db: Session, model: type, *where: object) -> int:
    fresh(db)
    return db.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def closed_round_with_votes(db: Session, voters: int = 2, title: str = "Past round") -> Round:
    """A round that closed an hour ago, each voter (a patron) backing its first topic."""
    found = make_round(db, title=title, opens_in_days=-8, closes_in_days=-1 / 24,
                       topics=("Rivers", "Schools"))  # fmt: skip
    for _ in range(voters):
        patron = make_patron(db)
        db.add(Vote(user_id=patron.id, topic_id=found.topics[0].id, round_id=found.id,
                    created_at=found.closes_at - timedelta(days=1)))  # fmt: skip
    db.commit()
    return found


def results_mails(db: Session) -> list[OutboundEmail]:
    fresh(db)
    return list(db.scalars(select(OutboundEmail).where(OutboundEmail.kind == "round_results")))


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """The clock, movable: `at[0] += timedelta(...)`."""
    moment = [clock.now()]
    monkeypatch.setattr(clock, "now", lambda: moment[0])
    yield moment


# -- one pass ------------------------------------------------------------------------------


def test_one_pass_does_each_job(app: Flask, db: Session, tmp_path) -> None:
    found = closed_round_with_votes(db)
    now = clock.now()
    old = now - timedelta(days=400)
    user = make_user(db)
    db.add(AuditEvent(user_id=user.id, kind="test", created_at=old))
    db.commit()

    report = Worker(app, "w1").run_pass()

    assert report.failed == []
    assert set(report.ran) == {"send-mail", "close-rounds", "update-reports", "purge"}
    assert set(report.skipped) == {"stripe-events", "sync-stripe"}  # no Stripe configured
    mails = results_mails(db)
    voters = select(Vote.user_id).where(Vote.round_id == found.id)
    emails = db.scalars(select(User.email).where(User.id.in_(voters)))
    assert sorted(m.to_address for m in mails) == sorted(emails)
    assert {m.status for m in mails} == {"sent"}  # closed, then sent in the same pass
    assert "Rivers: 2 votes" in mails[0].text_body and "Past round" in mails[0].subject
    fresh(db)
    round_ = db.get(Round, found.id)
    assert round_ is not None and round_.results_mailed_at is not None
    assert round_.frozen_at is not None  # nobody opened the page: the worker froze the results
    assert [t.final_votes for t in round_.topics] == [2, 0]
    assert count(db, AuditEvent) == 0
    assert count(db, WorkerHeartbeat, WorkerHeartbeat.worker_id == "w1") == 1
    jobs_rows = {j.name: j for j in db.scalars(select(ScheduledJob))}
    assert set(jobs_rows) == {"update-reports", "purge"}
    assert all(j.claimed_by is None and j.next_run_at > now for j in jobs_rows.values())


def test_the_command_runs_once(app: Flask, db: Session) -> None:
    closed_round_with_votes(db, voters=1)
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["worker", "--once", "--worker-id", "cli"])
    assert result.exit_code == 0, result.output
    assert "close-rounds" in result.output and "purge" in result.output
    assert len(results_mails(db)) == 1
    assert count(db, WorkerHeartbeat, WorkerHeartbeat.worker_id == "cli") == 1


def test_only_runs_the_named_job(app: Flask, db: Session) -> None:
    closed_round_with_votes(db, voters=1)
    report = Worker(app, "w1", only=("purge",)).run_pass()
    assert report.ran == ["purge"]
    assert results_mails(db) == []


def test_an_open_round_is_left_alone_and_closed_at_its_end(app, db, at) -> None:
    found = make_round(db, closes_in_days=1, topics=("Rivers",))
    patron = make_patron(db)
    db.add(Vote(user_id=patron.id, topic_id=found.topics[0].id, round_id=found.id,
                created_at=clock.now()))  # fmt: skip
    db.commit()
    Worker(app, "w1").run_pass()
    assert results_mails(db) == []
    at[0] += timedelta(days=1, seconds=1)
    Worker(app, "w1").run_pass()
    assert [m.to_address for m in results_mails(db)] == [patron.email]


def test_a_round_closed_long_ago_is_frozen_without_mail(app, db) -> None:
    found = closed_round_with_votes(db)
    fresh(db)
    db.get(Round, found.id).closes_at = clock.now() - closing.MAIL_WITHIN - timedelta(hours=1)  # type: ignore[union-attr]
    db.commit()
    Worker(app, "w1").run_pass()
    assert results_mails(db) == []
    fresh(db)
    assert db.get(Round, found.id).results_mailed_at is not None  # type: ignore[union-attr]


# -- several workers at once ---------------------------------------------------------------


def test_two_workers_at_once_mail_each_round_once(app: Flask, db: Session) -> None:
    rounds = [closed_round_with_votes(db, voters=2, title=f"Round {i}") for i in range(4)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            barrier.wait()
            report = Worker(app, name).run_pass()
            assert report.failed == [], report
        except BaseException as exc:  # noqa: BLE001 (reported below, in the test's thread)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    mails = results_mails(db)
    assert len(mails) == 8  # 4 rounds × 2 voters, never twice
    assert len({(m.to_address, m.subject) for m in mails}) == 8
    assert {m.status for m in mails} == {"sent"}
    fresh(db)
    assert all(db.get(Round, r.id).results_mailed_at for r in rounds)  # type: ignore[union-attr]
    purge = db.get(ScheduledJob, "purge")
    assert purge is not None and purge.claimed_by is None  # one ran it, the other skipped it
    assert count(db, WorkerHeartbeat) == 2


def test_a_claimed_periodic_job_is_skipped_until_its_lease_runs_out(app, db, at) -> None:
    lease = timedelta(minutes=30)
    assert leases.claim(db, "purge", "dead", clock.now(), lease)  # a worker that then died
    report = Worker(app, "w1", only=("purge",)).run_pass()
    assert report.skipped == ["purge"]
    at[0] += lease + timedelta(seconds=1)
    assert Worker(app, "w1", only=("purge",)).run_pass().ran == ["purge"]
    assert Worker(app, "w2", only=("purge",)).run_pass().skipped == ["purge"]  # not due


# -- a failure mid-batch -------------------------------------------------------------------


def test_a_failure_mid_batch_loses_nothing_and_does_nothing_twice(app, db, monkeypatch) -> None:
    first = closed_round_with_votes(db, title="First")
    second = closed_round_with_votes(db, title="Second")
    real = closing.mail.queue_message
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:  # the second round's first voter: mid-batch
            raise RuntimeError("the worker dies here")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(closing.mail, "queue_message", flaky)
    report = Worker(app, "w1").run_pass()
    assert report.failed == ["close-rounds"]
    assert "purge" in report.ran  # the other jobs still ran
    assert sorted(m.subject for m in results_mails(db)) == ["The results of the round “First”"] * 2
    fresh(db)
    assert db.get(Round, second.id).results_mailed_at is None  # type: ignore[union-attr]  # rolled back whole

    monkeypatch.setattr(closing.mail, "queue_message", real)
    report = Worker(app, "w1").run_pass()
    assert report.failed == []
    subjects = sorted(m.subject for m in results_mails(db))
    assert (
        subjects
        == ["The results of the round “First”"] * 2 + ["The results of the round “Second”"] * 2
    )
    assert {m.status for m in results_mails(db)} == {"sent"}
    fresh(db)
    assert db.get(Round, first.id).results_mailed_at is not None  # type: ignore[union-attr]


def test_a_failed_periodic_job_is_tried_again_later(app, db, at, monkeypatch) -> None:
    def broken(*_args: object) -> dict[str, int]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(jobs.purges, "purge_all", broken)
    report = Worker(app, "w1", only=("purge",)).run_pass()
    assert report.failed == ["purge"]
    row = fresh(db).get(ScheduledJob, "purge")
    assert row is not None and row.claimed_by is None and "disk full" in (row.last_error or "")
    assert Worker(app, "w1", only=("purge",)).run_pass().skipped == ["purge"]
    at[0] += jobs.RETRY_AFTER_FAILURE
    monkeypatch.undo()
    monkeypatch.setattr(clock, "now", lambda: at[0])
    assert Worker(app, "w1", only=("purge",)).run_pass().ran == ["purge"]
    assert fresh(db).get(ScheduledJob, "purge").last_error is None  # type: ignore[union-attr]


# -- purges --------------------------------------------------------------------------------


def _mail(db: Session, status: str, age_days: int, body: str = "secret link") -> OutboundEmail:
    when = clock.now() - timedelta(days=age_days)
    message = OutboundEmail(to_address="r@example.org", subject="s", text_body=body,
                            html_body=f"<p>{body}</p>", kind="verify_email", status=status,
                            attempts=1, created_at=when, next_attempt_at=when,
                            sent_at=when if status == "sent" else None)  # fmt: skip
    db.add(message)
    return message


def _event(db: Session, ident: str, state: str, age_days: int) -> None:
    when = clock.now() - timedelta(days=age_days)
    db.add(StripeEvent(id=ident, type="invoice.paid", created=when, received_at=when,
                       object_id="in_1", state=state, attempts=1))  # fmt: skip


def test_purges_keep_what_must_stay(app: Flask, db: Session) -> None:
    now = clock.now()
    user = make_user(db)

    def session(token: str, expires: timedelta, revoked: timedelta | None = None) -> None:
        db.add(UserSession(user_id=user.id, token_hash=token * 64,
                           created_at=now - timedelta(days=40), last_seen_at=now,
                           expires_at=now + expires,
                           revoked_at=None if revoked is None else now + revoked))  # fmt: skip

    session("a", timedelta(days=1))  # live: kept
    session("b", -timedelta(minutes=1))  # expired: deleted
    session("c", timedelta(days=1), revoked=-timedelta(days=31))  # ended long ago: deleted
    session("d", timedelta(days=1), revoked=-timedelta(days=1))  # ended yesterday: kept

    def token(name: str, expires: timedelta, used: bool = False) -> None:
        db.add(EmailToken(user_id=user.id, purpose="verify", token_hash=name * 64, stamp="s",
                          created_at=now - timedelta(days=3), expires_at=now + expires,
                          used_at=now - timedelta(hours=1) if used else None))  # fmt: skip

    token("1", timedelta(hours=1))  # live: kept
    token("2", timedelta(hours=1), used=True)  # used, not yet expired: kept ("already used")
    token("3", -timedelta(hours=2))  # expired two hours ago: kept a day
    token("4", -timedelta(days=2), used=True)  # long expired: deleted
    token("5", -timedelta(days=2))  # long expired: deleted

    keep_days = app.config["SETTINGS"].mail_keep_days
    old_sent = _mail(db, "sent", keep_days + 1)
    new_sent = _mail(db, "sent", keep_days - 1)
    old_queued = _mail(db, "queued", keep_days + 1)  # still to be sent: never blanked
    old_failed = _mail(db, "failed", keep_days + 1)

    ev_days = app.config["SETTINGS"].stripe_events_keep_days
    _event(db, "evt_old_applied", "applied", ev_days + 1)
    _event(db, "evt_old_ignored", "ignored", ev_days + 1)
    _event(db, "evt_new_applied", "applied", ev_days - 1)
    _event(db, "evt_old_pending", "pending", ev_days + 1)
    _event(db, "evt_old_failed", "failed", ev_days + 1)
    db.add(AuditEvent(user_id=user.id, kind="old", created_at=now - timedelta(days=366)))
    db.add(AuditEvent(user_id=user.id, kind="new", created_at=now - timedelta(days=364)))
    db.add(WorkerHeartbeat(worker_id="gone", started_at=now - timedelta(days=30),
                           last_seen=now - timedelta(days=8)))  # fmt: skip
    db.commit()
    ids = {name: m.id for name, m in
           [("old_sent", old_sent), ("new_sent", new_sent), ("old_queued", old_queued),
            ("old_failed", old_failed)]}  # fmt: skip

    report = Worker(app, "w1", only=("purge",)).run_pass()
    assert report.ran == ["purge"]

    fresh(db)
    assert sorted(s.token_hash[0] for s in db.scalars(select(UserSession))) == ["a", "d"]
    assert sorted(t.token_hash[0] for t in db.scalars(select(EmailToken))) == ["1", "2", "3"]
    bodies = {name: db.get(OutboundEmail, i) for name, i in ids.items()}
    assert bodies["old_sent"].text_body == "" and bodies["old_sent"].html_body == ""  # type: ignore[union-attr]
    assert bodies["old_sent"].to_address == "r@example.org"  # type: ignore[union-attr]  # the row stays
    assert bodies["old_failed"].text_body == ""  # type: ignore[union-attr]
    assert bodies["new_sent"].text_body == "secret link"  # type: ignore[union-attr]
    assert bodies["old_queued"].text_body == "secret link"  # type: ignore[union-attr]
    assert sorted(db.scalars(select(StripeEvent.id))) == [
        "evt_new_applied", "evt_old_failed", "evt_old_pending"
    ]  # fmt: skip
    assert [a.kind for a in db.scalars(select(AuditEvent))] == ["new"]
    assert sorted(db.scalars(select(WorkerHeartbeat.worker_id))) == ["w1"]


def test_a_purged_event_is_not_applied_twice_within_the_window(app, db) -> None:
    """The inbox refuses a redelivery by the event's id: the purge keeps the row past
    Stripe's retries and resends."""
    from patrons.worker import purges

    settings = app.config["SETTINGS"]
    assert settings.stripe_events_keep_days >= 30
    _event(db, "evt_recent", "applied", 29)
    db.commit()
    assert purges.stripe_events(db, settings, clock.now()) == 0


# -- the heartbeat -------------------------------------------------------------------------


def test_heartbeat_written_each_pass(app, db, at) -> None:
    w = Worker(app, "beater")
    w.run_pass()
    first = fresh(db).get(WorkerHeartbeat, "beater")
    assert first is not None
    seen = first.last_seen
    at[0] += timedelta(seconds=30)
    w.run_pass()
    again = fresh(db).get(WorkerHeartbeat, "beater")
    assert again is not None and again.last_seen > seen and again.started_at == first.started_at


def test_stop_finishes_and_leaves_the_loop(app, db) -> None:
    w = Worker(app, "stopper")
    passes = {"n": 0}
    real = w.run_pass

    def counted() -> object:
        passes["n"] += 1
        result = real()
        w.stop()  # as SIGTERM would, during a pass
        return result

    w.run_pass = counted  # type: ignore[method-assign]
    w.run(once=False, interval=3600)  # returns at once: the stop ends the wait
    assert passes["n"] == 1


def test_heartbeat_age_for_readyz(app, db, at) -> None:
    from patrons.worker_status import worker_heartbeat_age

    assert worker_heartbeat_age(fresh(db)) is None  # no worker yet
    Worker(app, "w1").run_pass()
    at[0] += timedelta(seconds=42)
    assert worker_heartbeat_age(fresh(db)) == pytest.approx(42, abs=1)
    Worker(app, "w2").run_pass()
    assert worker_heartbeat_age(fresh(db)) == pytest.approx(0, abs=1)  # the newest counts


def test_sigterm_stops_the_process_cleanly(app, db, database_url, tmp_path) -> None:
    """The real command in a process of its own: it beats, then SIGTERM ends it with 0."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import TEST_SECRET

    env = {**os.environ, "PATRONS_ENV": "testing", "SECRET_KEY": TEST_SECRET,
           "DATABASE_URL": database_url, "PATRONS_INSTANCE": str(tmp_path / "instance"),
           "PASSWORD_HASH_MEMORY_COST": "64", "PASSWORD_HASH_TIME_COST": "1",
           "PASSWORD_HASH_PARALLELISM": "1"}  # fmt: skip
    flask = [sys.executable, "-m", "flask", "--app", "patrons", "worker"]
    command = [*flask, "--interval", "0.2", "--worker-id", "proc"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while count(db, WorkerHeartbeat, WorkerHeartbeat.worker_id == "proc") == 0:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "Stopped." in out
