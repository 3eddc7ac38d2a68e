"""The exchange-rate form: the reporting currency, and what one unit of each other currency
is worth in it. Built per configured currencies (PLEDGE_AMOUNTS)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, SelectField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # types-wtforms 3.2 predates SelectChoice (wtforms 3.3)
from wtforms.validators import StopValidation

MAX_RATE = Decimal(1_000_000)
_RATE = re.compile(r"^[0-9]{1,7}(?:[.,][0-9]{1,6})?$")


def parse_rate(text: str) -> Decimal:
    """ "0.92" or "0,92" → Decimal; ValueError unless a positive number with at most six
    decimals and below a million."""
    text = text.strip()
    if not _RATE.match(text):
        raise ValueError(text)
    value = Decimal(text.replace(",", "."))
    if not 0 < value < MAX_RATE:
        raise ValueError(text)
    return value


def rate_check(form: Any, field: Field) -> None:
    if not (field.data or "").strip():
        return  # no rate: the currency is left out of converted totals, and the page says so
    try:
        parse_rate(field.data)
    except ValueError:
        raise StopValidation(
            str(_l("Enter a positive number with at most six decimals, like 0.92."))
        ) from None


def rates_form(codes: Sequence[str], **kwargs: Any) -> FlaskForm:
    """A form with `reporting_currency` and one `rate_<CODE>` field per currency."""

    class RatesForm(FlaskForm):
        reporting_currency = SelectField(
            _l("Reporting currency"), choices=[SelectChoice(code) for code in codes]
        )

    for code in codes:
        label = _l("1 %(code)s in the reporting currency", code=code)
        setattr(RatesForm, f"rate_{code}", StringField(label, validators=[rate_check]))
    return RatesForm(**kwargs)


def rates_from(form: Any, codes: Sequence[str]) -> dict[str, Decimal]:
    """The rates filled in, by currency (a validated form)."""
    found = {}
    for code in codes:
        text = (form[f"rate_{code}"].data or "").strip()
        if text and code != form.reporting_currency.data:
            found[code] = parse_rate(text)
    return found
