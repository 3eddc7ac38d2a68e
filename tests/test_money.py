"""Money is formatted in one place (patrons/core/money.py `money`), with Babel's CLDR data,
as the pages show it: "€5", not "5.00 EUR"."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patrons.core.money import TWO_DECIMAL, money, parse_major_units


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "shown"),
    [
        (500, "EUR", "en", "€5"),
        (1050, "EUR", "en", "€10.50"),
        (5, "EUR", "en", "€0.05"),
        (100000, "USD", "en", "$1,000"),
        (750, "GBP", "en", "£7.50"),
        (15000, "UAH", "en", "₴150"),  # CLDR's English has no symbol of its own: the narrow one
        (15050, "UAH", "uk", "150,50\u00a0₴"),
        (500, "EUR", "uk", "5\u00a0€"),
        (123456789, "CHF", "en", "CHF\u00a01,234,567.89"),  # a code keeps apart from digits
        (500, "EUR", "not a locale", "€5"),
    ],
)
def test_money_as_the_pages_show_it(amount: int, currency: str, locale: str, shown: str) -> None:
    assert money(amount, currency, locale) == shown


CURRENCIES = st.sampled_from(sorted(TWO_DECIMAL))


@given(amount=st.integers(min_value=0, max_value=10**10), currency=CURRENCIES)
def test_the_digits_shown_are_the_amount(amount: int, currency: str) -> None:
    """Whatever the amount and currency, the figure read back is the amount (English), with
    cents exactly when there are some."""
    shown = money(amount, currency)
    figure = "".join(ch for ch in shown if ch.isdigit() or ch == ".")
    assert parse_major_units(figure) == amount
    assert (amount % 100 != 0) == ("." in figure)
