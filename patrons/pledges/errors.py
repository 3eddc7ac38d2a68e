"""PledgeError, what the pledge services answer when they refuse, and the refusals several of
them share: Stripe said no or did not answer (`as_pledge_errors`), another window holds the
pledge (`busy`), another request is setting it up right now (`in_progress`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask_babel import gettext as _

from patrons.pledges.stripe_objects import CardError, GatewayError, Unreachable

RETRY_AFTER_SECONDS = 60  # Stripe did not answer: the reader is asked to try again in a minute
PROCESSING = 202  # the status of `in_progress`: not a refusal, the page asks again shortly


class PledgeError(Exception):
    """What went wrong, in words for the reader, the HTTP status to answer with, and when to
    try again (`Retry-After`, in seconds) if that is worth saying."""

    def __init__(self, message: str, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


def failure(exc: GatewayError) -> PledgeError:
    """What the reader is told when Stripe said no: a card's refusal in Stripe's words (which
    Stripe translates), anything else in ours."""
    if isinstance(exc, CardError):
        return PledgeError(exc.message, 402)
    if isinstance(exc, Unreachable):
        return PledgeError(
            _(
                "The payment service is not answering just now. Nothing was "
                "charged; please try again in a minute."
            ),
            503,
            RETRY_AFTER_SECONDS,
        )
    return PledgeError(
        _("The payment service did not answer as expected. Nothing was charged; please try "
          "again in a moment."),
        502,
    )  # fmt: skip


@contextmanager
def as_pledge_errors() -> Iterator[None]:
    """Inside the block, a GatewayError becomes the PledgeError the reader is shown."""
    try:
        yield
    except GatewayError as exc:
        raise failure(exc) from exc


def busy() -> PledgeError:
    return PledgeError(
        _("Your pledge is being set up in another window. Wait a moment, then reload this page."),
        409,
    )


def in_progress() -> PledgeError:
    """Another request is calling Stripe for this pledge right now: not an error, the page
    asks again in a moment (static/js/pledge.js)."""
    return PledgeError(_("Your pledge is being set up. One moment…"), PROCESSING)


def unknown_to_stripe() -> PledgeError:
    return PledgeError(_("The payment service does not know this pledge any more."), 409)
