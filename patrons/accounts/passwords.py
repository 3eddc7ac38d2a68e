"""Passwords: Argon2id hashing (argon2-cffi) in a bounded pool, with rehash when parameters
change, and what makes a new password acceptable (`password_problem`, with zxcvbn).

The cost comes from the app's settings (PASSWORD_HASH_TIME_COST, PASSWORD_HASH_MEMORY_COST,
PASSWORD_HASH_PARALLELISM, PASSWORD_HASH_CONCURRENCY); outside an app context, the
defaults of `Settings`.
"""

from __future__ import annotations

import threading
import unicodedata
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from babel.numbers import format_decimal
from flask import current_app, has_app_context
from flask_babel import get_locale
from flask_babel import gettext as _
from zxcvbn import zxcvbn

from patrons.core.config import Settings

READER_MIN = 10  # characters of a reader's password
STAFF_MIN = 12  # of a staff account's (docs/security.md)
MAX_LENGTH = 1024  # longer is refused before any hashing
# zxcvbn's cost grows steeply with length (measured: worst case ~0.15 s at 64 characters,
# ~1.8 s at 100): only the start of a password is judged. A weak start of a long password is
# still refused ("password" * 20), and 64 characters of anything judged strong are strong.
JUDGED_LENGTH = 64
MIN_SCORE = 3  # zxcvbn's 0-4: 3 is "safely unguessable" to a throttled online attack

_DEFAULT_COST = (
    Settings.password_hash_time_cost,
    Settings.password_hash_memory_cost,
    Settings.password_hash_parallelism,
)


@lru_cache(maxsize=8)
def _hasher_for(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


@lru_cache(maxsize=8)
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    """Verified against when the email is unknown, so both paths cost the same time."""
    return _hasher_for(time_cost, memory_cost, parallelism).hash("not a real password")


def _settings() -> Settings | None:
    return current_app.config.get("SETTINGS") if has_app_context() else None


def _cost() -> tuple[int, int, int]:
    settings = _settings()
    if settings is None:
        return _DEFAULT_COST
    return (
        settings.password_hash_time_cost,
        settings.password_hash_memory_cost,
        settings.password_hash_parallelism,
    )


@lru_cache(maxsize=8)
def _slots(size: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(size)


def hash_slots() -> threading.BoundedSemaphore:
    """The process's pool of hashing slots (PASSWORD_HASH_CONCURRENCY of them).

    Each Argon2id hash holds PASSWORD_HASH_MEMORY_COST (64 MiB by default) while it runs,
    and argon2-cffi releases the GIL, so every request thread would hash at once: 24
    concurrent failed sign-ins took the dev server to 1 GB. A semaphore is enough to bound
    that (no thread pool: the request's own thread hashes once it has a slot, and a waiting
    request holds only its thread). Memory then stays under slots x memory cost, and the
    CPU does the same work in the same total time. One per process, as memory is."""
    settings = _settings()
    return _slots((settings or Settings).password_hash_concurrency)


_dummy_hash(*_DEFAULT_COST)  # made now, not on the first unknown email


def hash_password(password: str) -> str:
    hasher = _hasher_for(*_cost())
    with hash_slots():
        return hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    cost = _cost()
    try:
        with hash_slots():
            _hasher_for(*cost).verify(stored_hash or _dummy_hash(*cost), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored_hash is not None  # verify() returns True or raises


def needs_rehash(stored_hash: str) -> bool:
    return _hasher_for(*_cost()).check_needs_rehash(stored_hash)


# --- what a new password must be ------------------------------------------------------------


def too_long(limit: int) -> str:
    """The message of every over-long field: "Use at most 1,024 characters." """
    number = format_decimal(limit, locale=str(get_locale() or "en"))
    return str(_("Use at most %(num)s characters.", num=number))


def password_problem(
    password: str, *, email: str, name: str | None = None, staff: bool = False
) -> str | None:
    """Why `password` will not do for this account, or None: too long, too short (10
    characters, 12 for staff), the email address itself, or easy to guess (zxcvbn, offline,
    with the address, the name and the site's name as words an attacker would try first)."""
    if len(password) > MAX_LENGTH:
        return too_long(MAX_LENGTH)
    minimum = STAFF_MIN if staff else READER_MIN
    if len(password) < minimum:
        return str(_("Use at least %(num)d characters.", num=minimum))
    if email and _fold(password) == _fold(email):
        return str(_("Your password cannot be your email address."))
    advice = _("Add a few more words: several unrelated words you will remember work well.")
    letters = _letters(password)
    if letters and any(letters in _letters(own) for own in (email, name or "") if own):
        return f"{_('It is too close to your email address, your name or our name.')} {advice}"
    judged = unicodedata.normalize("NFKC", password)[:JUDGED_LENGTH]  # "ｐａｓｓ" is "pass"
    result = _judge(judged, _user_inputs(email, name))
    if result["score"] >= MIN_SCORE:
        return None
    return f"{_why(result['sequence'])} {advice}"


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text.strip()).casefold()


def _letters(text: str) -> str:
    """Only the letters and digits: "new.reader@example" is made of the address's."""
    return "".join(c for c in _fold(text) if c.isalnum())


def _user_inputs(email: str, name: str | None) -> list[str]:
    """Words of the address, the name and the site's name, as zxcvbn's own dictionary."""
    words = [email, *email.replace("@", " ").replace(".", " ").replace("+", " ").split()]
    if name:
        words += [name, *name.split()]
    settings = _settings()
    if settings is not None:
        words += [settings.site_name, *settings.site_name.split()]
    return [_fold(word) for word in words if len(word) > 2]


_ZXCVBN = threading.Lock()  # zxcvbn() keeps the user inputs in a module-level dictionary


def _judge(password: str, inputs: list[str]) -> dict[str, Any]:
    with _ZXCVBN:
        return dict(zxcvbn(password, user_inputs=inputs))


def _why(sequence: list[dict[str, Any]]) -> object:
    """The reason, in our words (and translated), from what zxcvbn found: its own feedback
    is English only. (A str; gettext is untyped.)"""
    if any(match.get("dictionary_name") == "user_inputs" for match in sequence):
        return _("It is too close to your email address, your name or our name.")
    longest = max(sequence, key=lambda match: len(match["token"]))
    pattern = longest["pattern"]
    if pattern == "dictionary":
        if longest["dictionary_name"] == "passwords":
            if longest.get("l33t") or longest.get("reversed") or longest["rank"] > 100:
                return _("It is too close to a commonly used password.")
            return _("It is one of the most common passwords.")
        if longest["dictionary_name"] in ("surnames", "male_names", "female_names"):
            return _("Names on their own are easy to guess.")
        return _("Common words on their own are easy to guess.")
    return {
        "spatial": _("Rows of keys on a keyboard are easy to guess."),
        "repeat": _("Repeated letters or words are easy to guess."),
        "sequence": _("Sequences like abc or 6543 are easy to guess."),
        "regex": _("Years and dates are easy to guess."),
        "date": _("Years and dates are easy to guess."),
    }.get(pattern, _("It would be easy to guess."))
