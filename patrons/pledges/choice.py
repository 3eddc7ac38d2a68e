"""What the support and pledge pages send, checked: the amount a reader chose (against the
configured options, `PLEDGE_AMOUNTS`, passed in as Settings), the plan the page showed, the
id of one try at entering a card, and the SetupIntent the browser confirmed.

The amount and the plan are always chosen here, from the validated (currency, amount) and the
configured options; nothing the browser sends names a price (docs/security.md, threat 10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _

from patrons.core.config import Settings
from patrons.core.money import CurrencyOption, money, parse_major_units
from patrons.pledges.errors import PledgeError
from patrons.pledges.stripe_objects import plan_id

_ATTEMPT = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class Choice:
    currency: str
    amount: int  # minor units

    @property
    def plan(self) -> str:
        return plan_id(self.currency, self.amount)


def currency_option(settings: Settings, currency: Any) -> CurrencyOption | None:
    code = currency.strip().upper() if isinstance(currency, str) else ""
    return next((o for o in settings.pledge_options if o.code == code), None)


def parse_choice(
    settings: Settings, currency: Any, amount: Any, other_amount: Any = None
) -> Choice:
    """The (currency, amount) a reader picked: `amount` in minor units (a suggested amount, or
    "other"), `other_amount` in major units. PledgeError (400) unless it is within the options."""
    option = currency_option(settings, currency)
    if option is None:
        raise PledgeError(_("Choose one of the currencies offered."))
    value = _minor_units(amount, other_amount)
    if not option.allows(value):
        raise PledgeError(
            _(
                "A monthly pledge in %(currency)s is between %(min)s and %(max)s.",
                currency=option.code,
                min=money(option.minimum, option.code),
                max=money(option.maximum, option.code),
            )
        )
    return Choice(option.code, value)


def _minor_units(amount: Any, other_amount: Any) -> int:
    if isinstance(amount, int) and not isinstance(amount, bool):
        return amount
    if amount in (None, "", "other"):
        if isinstance(other_amount, str) and not other_amount.isascii():
            # "٥" or "５" are digits to Python's int() and regex \d, never to us: an amount is
            # ASCII digits with "." or "," before the cents (docs/security.md, amounts)
            raise PledgeError(_("Type the amount with the digits 0 to 9, like 5 or 7.50."))
        value = parse_major_units(other_amount)
        if value is None:
            raise PledgeError(_("Enter an amount, like 5 or 7.50."))
        return value
    text = amount.strip() if isinstance(amount, str) else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise PledgeError(_("Choose one of the amounts, or enter your own."))
    return int(text)


def check_plan(choice: Choice, posted_plan: Any) -> None:
    """A plan id the page sent must be the one this choice gives (threat 10)."""
    if posted_plan not in (None, "") and posted_plan != choice.plan:
        raise PledgeError(_("That plan is not one we offer. Choose an amount on this page."))


def check_attempt(attempt: Any) -> str:
    """The page's id for one try at entering a card (idempotency of that try's SetupIntent)."""
    if not isinstance(attempt, str) or not _ATTEMPT.match(attempt):
        raise PledgeError(_("The page sent an incomplete request. Reload it and try again."))
    return attempt


def check_setup_intent(value: Any) -> str:
    """The id of the SetupIntent the browser confirmed, as far as its form goes (whose it is
    and whether it succeeded are Stripe's to say: starting.confirmed_card)."""
    if not isinstance(value, str) or not value.startswith("seti_") or len(value) > 255:
        raise PledgeError(_("The card was not confirmed. Please enter it again."))
    return value
