"""Flask-Caching's Redis backend, bypassed while Redis is unreachable.

A cache is only ever a shortcut: when Redis fails, a read is a miss, a write is dropped, and
the caller computes the value itself (degraded.py records the failure and warns once a
minute). For RETRY_SECONDS after a failure Redis is not even asked. Wired by `CACHE_TYPE =
"patrons.core.rediscache.ForgivingRedisCache"` (patrons/web.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import Flask
from flask_caching.backends.rediscache import RedisCache

from patrons.core import degraded

COMPONENT = "cache"
# seconds to wait for Redis to accept a connection or answer: a cache that is slower than
# the database is worse than none
SOCKET_TIMEOUT = 1.0

T = TypeVar("T")


def redis_client(url: str) -> Any:
    """A Redis client with short timeouts (redis-py reconnects by itself when Redis returns)."""
    import redis

    return redis.Redis.from_url(
        url,
        socket_connect_timeout=SOCKET_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        health_check_interval=30,
    )


class ForgivingRedisCache(RedisCache):
    @classmethod
    def factory(
        cls, app: Flask, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> ForgivingRedisCache:
        kwargs["host"] = redis_client(config["CACHE_REDIS_URL"])
        if config.get("CACHE_KEY_PREFIX"):
            kwargs["key_prefix"] = config["CACHE_KEY_PREFIX"]
        return cls(*args, **kwargs)

    def _try(self, call: Callable[[], T], otherwise: T) -> T:
        if not degraded.redis_worth_trying():
            degraded.skipped(COMPONENT)
            return otherwise
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001  (any Redis failure: the cache is bypassed)
            degraded.failed(COMPONENT, exc)
            return otherwise
        degraded.recovered(COMPONENT)
        return result

    def get(self, key: str) -> Any:
        return self._try(lambda: super(ForgivingRedisCache, self).get(key), None)

    def get_many(self, *keys: str) -> list[Any]:
        return self._try(
            lambda: super(ForgivingRedisCache, self).get_many(*keys), [None] * len(keys)
        )

    def has(self, key: str) -> bool:
        return self._try(lambda: super(ForgivingRedisCache, self).has(key), False)

    def set(self, key: str, value: Any, timeout: int | timedelta | None = None) -> Any:
        return self._try(lambda: super(ForgivingRedisCache, self).set(key, value, timeout), False)

    def add(self, key: str, value: Any, timeout: int | timedelta | None = None) -> Any:
        return self._try(lambda: super(ForgivingRedisCache, self).add(key, value, timeout), False)

    def set_many(self, mapping: dict[str, Any], timeout: int | timedelta | None = None) -> Any:
        return self._try(lambda: super(ForgivingRedisCache, self).set_many(mapping, timeout), [])

    def delete(self, key: str) -> bool:
        return self._try(lambda: super(ForgivingRedisCache, self).delete(key), False)

    def delete_many(self, *keys: str) -> Any:
        return self._try(lambda: super(ForgivingRedisCache, self).delete_many(*keys), [])

    def clear(self) -> bool:
        return self._try(lambda: super(ForgivingRedisCache, self).clear(), False)

    def inc(self, key: str, delta: int = 1) -> Any:
        return self._try(lambda: super(ForgivingRedisCache, self).inc(key, delta), None)

    def dec(self, key: str, delta: int = 1) -> Any:
        return self._try(lambda: super(ForgivingRedisCache, self).dec(key, delta), None)
