"""Outgoing email: rendered and queued in the caller's transaction, sent after the commit
(queue.py; the sending in sending.py, transports.py and, right after a request, soon.py).

A message is a row (`OutboundEmail`) added to the same transaction as what it is about, so a
sign-up that rolls back mails nothing and one that commits always has its mail.

Sending (`send_pending`) takes one due row at a time. A single statement claims it,
`UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING ...`, counting
the attempt and pushing `next_attempt_at` ahead by a lease, and is committed at once: no
transaction stays open while the mail server is talking. Two senders never claim the same
row: PostgreSQL skips rows another sender holds, and SQLite runs one writer at a time, so
the statement alone is atomic there and senders simply take turns. Each outcome (sent, or
the error and the next try after a growing backoff) is committed on its own, so one failure
never loses another message. A sender that dies mid-send leaves its row to be tried again
when the lease runs out: delivery is at least once, never silently lost.

Backends: SMTP when MAIL_URL is smtp:// or smtps://; a folder of .eml files when it is
file:///folder (production requires one of these); unset, in development, the console log and
`instance/outbox/*.eml`.

Immediate delivery: views call `send_soon()` after `db.commit()`. It hands the ids of the
messages this session queued to one background thread per process (started when needed,
gone when idle) that sends them with a short SMTP timeout, in an app context and a session
of its own. The request neither waits for the mail server nor sees its errors; anything that
could not go stays queued for the worker (`flask --app patrons worker`), which
also does every retry. Only this request's messages, not the whole queue, so the work a
request triggers stays small and retries keep their backoff. In tests (`app.testing`) the
same work runs inline, so a test sees the outcome at once and no thread outlives its test;
`app.config["MAIL_SEND_INLINE"]` overrides that choice.
"""

from patrons.mail.queue import queue_message
from patrons.mail.sending import (
    BACKOFF,
    ERROR_LENGTH,
    MAX_ATTEMPTS,
    SendReport,
    backoff,
    describe_error,
    send_pending,
)
from patrons.mail.soon import send_soon, wait_for_background_sends
from patrons.mail.transports import SmtpTarget, make_transport, parse_mail_url

__all__ = [
    "BACKOFF", "ERROR_LENGTH", "MAX_ATTEMPTS", "SendReport", "SmtpTarget", "backoff",
    "describe_error", "make_transport", "parse_mail_url", "queue_message", "send_pending",
    "send_soon", "wait_for_background_sends",
]  # fmt: skip
