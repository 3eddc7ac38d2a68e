"""PledgeError, what the pledge services answer when they refuse, and the refusals several of
them share: Stripe said no (`as_pledge_errors`), another window holds the pledge (`busy`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask_babel import gettext as _

from patrons.pledges.stripe_objects import CardError, GatewayError


class PledgeError(Exception):
    """What went wrong, in words for the reader, and the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def failure(exc: GatewayError) -> PledgeError:
    """What the reader is told when Stripe said no: a card's refusal in Stripe's words (which
    Stripe translates), anything else in ours."""
    if isinstance(exc, CardError):
        return PledgeError(exc.message, 402)
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


def unknown_to_stripe() -> PledgeError:
    return PledgeError(_("The payment service does not know this pledge any more."), 409)
