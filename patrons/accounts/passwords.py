"""Argon2id password hashing (argon2-cffi), with rehash when parameters change.

The cost comes from the app's settings (PASSWORD_HASH_TIME_COST, PASSWORD_HASH_MEMORY_COST,
PASSWORD_HASH_PARALLELISM); outside an app context, the defaults of `Settings`.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app, has_app_context

from patrons.core.config import Settings

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


def _cost() -> tuple[int, int, int]:
    settings = current_app.config.get("SETTINGS") if has_app_context() else None
    if settings is None:
        return _DEFAULT_COST
    return (
        settings.password_hash_time_cost,
        settings.password_hash_memory_cost,
        settings.password_hash_parallelism,
    )


_dummy_hash(*_DEFAULT_COST)  # made now, not on the first unknown email


def hash_password(password: str) -> str:
    return _hasher_for(*_cost()).hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    cost = _cost()
    try:
        _hasher_for(*cost).verify(stored_hash or _dummy_hash(*cost), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored_hash is not None  # verify() returns True or raises


def needs_rehash(stored_hash: str) -> bool:
    return _hasher_for(*_cost()).check_needs_rehash(stored_hash)
