"""What a reader may pledge: currencies, suggested monthly amounts, the free amount's bounds.

Configured by `PLEDGE_AMOUNTS`, one entry per currency, in major units, the first suggested
amount being "a cup of coffee":

    PLEDGE_AMOUNTS="EUR 3 5 10 25 min 1 max 1000; USD 3 5 10 25 min 1 max 1000"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_symbol

# ISO 4217 codes Stripe charges in two-decimal minor units; others would need their exponent.
TWO_DECIMAL = frozenset({"EUR", "USD", "GBP", "UAH", "PLN", "CZK", "SEK", "NOK", "DKK", "CHF",
                         "CAD", "AUD", "NZD", "GEL", "MDL", "RON"})  # fmt: skip
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "UAH": "₴"}

DEFAULT_PLEDGE_AMOUNTS = (
    "EUR 3 5 10 25 min 1 max 1000; USD 3 5 10 25 min 1 max 1000; "
    "GBP 3 5 10 20 min 1 max 1000; UAH 60 150 300 600 min 20 max 40000"
)


class PledgeOptionsError(ValueError):
    pass


@dataclass(frozen=True)
class CurrencyOption:
    code: str  # ISO 4217, upper case
    suggested: tuple[int, ...]  # minor units, smallest first ("a cup of coffee")
    minimum: int
    maximum: int

    @property
    def symbol(self) -> str:
        return SYMBOLS.get(self.code, self.code)

    def allows(self, amount: int) -> bool:
        return self.minimum <= amount <= self.maximum


def parse_pledge_amounts(raw: str) -> tuple[CurrencyOption, ...]:
    """`PLEDGE_AMOUNTS` as CurrencyOptions, or PledgeOptionsError saying what is wrong."""
    options: list[CurrencyOption] = []
    for entry in (part.strip() for part in raw.split(";")):
        if not entry:
            continue
        words = entry.split()
        code = words[0].upper()
        if code not in TWO_DECIMAL:
            raise PledgeOptionsError(f"PLEDGE_AMOUNTS: unsupported currency {words[0]!r}")
        if any(o.code == code for o in options):
            raise PledgeOptionsError(f"PLEDGE_AMOUNTS: {code} is listed twice")
        suggested: list[int] = []
        bounds: dict[str, int] = {}
        rest = iter(words[1:])
        for word in rest:
            if word in ("min", "max"):
                bounds[word] = _minor(next(rest, ""), code)
            else:
                suggested.append(_minor(word, code))
        if not suggested:
            raise PledgeOptionsError(f"PLEDGE_AMOUNTS: {code} needs at least one amount")
        suggested.sort()
        minimum = bounds.get("min", suggested[0])
        maximum = bounds.get("max", suggested[-1] * 10)
        if not minimum <= suggested[0] or not suggested[-1] <= maximum:
            raise PledgeOptionsError(
                f"PLEDGE_AMOUNTS: {code}'s suggested amounts must lie between min and max"
            )
        options.append(CurrencyOption(code, tuple(suggested), minimum, maximum))
    if not options:
        raise PledgeOptionsError("PLEDGE_AMOUNTS must name at least one currency")
    return tuple(options)


def _minor(word: str, code: str) -> int:
    try:
        major, _, cents = word.partition(".")
        if not major.isdigit() or (cents and (not cents.isdigit() or len(cents) > 2)):
            raise ValueError
        value = int(major) * 100 + int(cents.ljust(2, "0") or 0)
    except ValueError:
        raise PledgeOptionsError(
            f"PLEDGE_AMOUNTS: {word!r} is not an amount in {code} (like 5 or 2.50)"
        ) from None
    if not 50 <= value <= 99_999_999:
        raise PledgeOptionsError(f"PLEDGE_AMOUNTS: {word} {code} is out of range")
    return value


# -- amounts as text (minor units in, two-decimal currencies only: see TWO_DECIMAL) ----------


def money(amount: int, currency: str, locale: str = "en") -> str:
    """An amount in minor units as the pages, mails and reports show it, in the reader's
    locale (Babel's CLDR patterns): 500, "EUR" → "€5"; 1050 → "€10.50"; "uk" → "5 €". Cents
    are shown only when there are some; where the locale has no symbol of its own for the
    currency (CLDR's English says "UAH150"), the narrow one is used ("₴150"). The one place
    money is formatted for people (major_units and major_decimal are for input fields and
    spreadsheets)."""
    try:
        where = Locale.parse(locale)
    except (ValueError, UnknownLocaleError):
        where = Locale.parse("en")
    pattern = where.currency_formats["standard"].pattern.split(";")[0]
    if amount % 100 == 0:
        pattern = re.sub(r"0\.0+", "0", pattern)  # "¤#,##0.00" → "¤#,##0"
    if get_currency_symbol(currency, where) == currency and currency in SYMBOLS:
        pattern = pattern.replace("¤", f"'{SYMBOLS[currency]}'")
    text = format_currency(Decimal(amount) / 100, currency, format=pattern, locale=where,
                           currency_digits=False)  # fmt: skip
    # CLDR's currency spacing, which Babel leaves out: a code is kept apart from the digits
    return re.sub(r"^([A-Z]{3})(?=\d)|(?<=\d)([A-Z]{3})$", _spaced, text)


def _spaced(match: re.Match[str]) -> str:
    code = match[1] or match[2]
    return f"{code}\u00a0" if match[1] else f"\u00a0{code}"


def major_units(amount: int) -> str:
    """700 → "7", 750 → "7.50": what a reader types into the free-amount field."""
    return str(amount // 100) if amount % 100 == 0 else f"{amount // 100}.{amount % 100:02d}"


def amount_label(amount: int, option: CurrencyOption, locale: str = "en") -> str:
    """500, EUR → "€5": a suggested amount on the chooser (money() itself)."""
    return money(amount, option.code, locale)


_TYPED_AMOUNT = re.compile(r"^\s*(\d{1,9})(?:[.,](\d{1,2}))?\s*$")


def parse_major_units(text: object) -> int | None:
    """What a reader typed in major units: "7", "7.5", "7,50" → 700, 750, 750; None for
    anything else (the inverse of major_units)."""
    match = _TYPED_AMOUNT.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    return int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))


def major_decimal(amount: int | None) -> str:
    """1250 → "12.50", -5 → "-0.05", None → "": a plain decimal a spreadsheet reads."""
    if amount is None:
        return ""
    sign, amount = ("-", -amount) if amount < 0 else ("", amount)
    return f"{sign}{amount // 100}.{amount % 100:02d}"
