"""The mail queue's one entry point: render a message and add it to the caller's transaction.

A sign-up that rolls back mails nothing; one that commits always has its mail. Sending is
sending.py's job (the worker), or soon.py's right after the request.
"""

from __future__ import annotations

from flask import render_template
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import OutboundEmail

QUEUED = "patrons.mail.queued"  # session.info key: messages queued on that session


def queue_message(
    db: Session, to: str, template: str, subject: str, **context: object
) -> OutboundEmail:
    """Render emails/<template>.txt and .html and add the message to `db`; the caller commits.

    Templates get the site's name and address from the app's template context (web.py), so
    this reads no settings itself."""
    to = to.strip()
    if "@" not in to or any(c.isspace() or not c.isprintable() for c in to):
        raise ValueError(f"not an email address: {to!r}")  # a header value must stay one line
    subject = " ".join(subject.split())[:255]
    values = {"subject": subject, **context}  # site_name, site_url: web.py's context processor
    now = clock.now()
    message = OutboundEmail(
        to_address=to,
        subject=subject,
        text_body=render_template(f"emails/{template}.txt", **values),
        html_body=render_template(f"emails/{template}.html", **values),
        kind=template,
        status="queued",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    db.add(message)
    db.info.setdefault(QUEUED, []).append(message)
    return message
