"""What the pledge pages and the account page read besides the views' own values: the template
globals (amount formats, the reader's pledge; registered by `register(app)`), the choice a
reader made before signing in (a cookie), and what the card form's script is given.
"""

from __future__ import annotations

from typing import Any, cast

from flask import current_app, request
from flask_babel import get_locale
from flask_login import current_user
from werkzeug.wrappers import Response

from patrons.core.config import Settings
from patrons.core.db import session as db
from patrons.core.money import amount_label, major_units, money
from patrons.models import User
from patrons.pledges.choice import Choice, parse_choice
from patrons.pledges.errors import PledgeError
from patrons.pledges.queries import current_pledge

# What a reader chose before signing up or in ("EUR:500"): a cookie of its own, because
# signing in starts a new session (session fixation) and the mailed confirmation link
# carries no `next`. It only preselects the choice, which is validated again every time.
CHOICE_COOKIE = "pledge_choice"
CHOICE_DAYS = 7


def pledge_helpers() -> dict[str, Any]:
    """Template globals (an app context processor); amounts in the page's locale."""
    locale = str(get_locale() or "en")
    return {
        "money": lambda amount, currency: money(amount, currency, locale),
        "pledge_summary": _pledge_summary,
        "amount_label": lambda amount, option: amount_label(amount, option, locale),
        "major_units": major_units,
    }


def _pledge_summary() -> dict[str, Any]:
    """For the account page: the reader's pledge, and a choice made before signing up."""
    if not current_user.is_authenticated:
        return {}
    settings = cast(Settings, current_app.config["SETTINGS"])
    return {
        "pledge": current_pledge(db, cast(User, current_user).id),
        "choice": remembered_choice(settings, request.cookies),
    }


def remember_choice(response: Response, choice: Choice, *, secure: bool) -> None:
    response.set_cookie(
        CHOICE_COOKIE, f"{choice.currency}:{choice.amount}", max_age=CHOICE_DAYS * 86400,
        httponly=True, samesite="Lax", secure=secure,
    )  # fmt: skip


def forget_choice(response: Response) -> None:
    response.delete_cookie(CHOICE_COOKIE)


def remembered_choice(settings: Settings, cookies: Any) -> Choice | None:
    """The choice in the cookie, if it is still one of the options."""
    currency, _sep, amount = cookies.get(CHOICE_COOKIE, "")[:20].partition(":")
    try:
        return parse_choice(settings, currency, amount)
    except PledgeError:
        return None


def stripe_js_url(settings: Settings) -> str:
    if settings.stripe_api_base:  # offline: localstripe's fake Stripe.js
        return f"{settings.stripe_api_base}/js.stripe.com/v3/"
    return "https://js.stripe.com/v3/"


def options_data(settings: Settings) -> dict[str, Any]:
    """The options as the amount chooser's script reads them (static/js/pledge.js), with
    every amount it shows already formatted here (`labels`, by amount); only an amount the
    reader types is formatted by the script, with the browser's CLDR data (Intl)."""
    locale = str(get_locale() or "en")
    return {
        o.code: {
            "suggested": list(o.suggested),
            "min": o.minimum,
            "max": o.maximum,
            "labels": {
                str(amount): money(amount, o.code, locale)
                for amount in (*o.suggested, o.minimum, o.maximum)
            },
        }
        for o in settings.pledge_options
    }
