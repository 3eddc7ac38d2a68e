"""The machinery of the input fuzzing modules (tests/test_fuzz_forms.py without Stripe,
tests/pledges/test_fuzz_pledges.py with the offline Stripe): the value strategy, the
checks every example makes, and the no-partial-write detector. See test_fuzz_forms.py's
docstring for why each piece is the way it is."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection, Engine

from patrons.core import extensions
from patrons.core.db import Base
from tests.conftest import TEST_HASHING

# examples per route: the Hypothesis profile's max_examples (tests/conftest.py: `dev` 100,
# `ci` 1,000), or FUZZ_EXAMPLES=n (e.g. 10,000 overnight)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or hypothesis_settings.default.max_examples)
# refreshed when a signed-in page is requested minutes apart: not a write of the view
VOLATILE_WRITE = re.compile(r"UPDATE user_sessions SET last_seen_at=.+? WHERE", re.I)
CSRF_REFUSAL = "could not be accepted"  # the CSRF error page (web.py)
# Settings overrides: Argon2id at t=1, m=8 KiB (the production cost is tested elsewhere);
# every test app's default now (conftest's make_settings), kept explicit where it matters
CHEAP_HASHING: dict[str, Any] = dict(TEST_HASHING)


def _repeat(piece: str, length: int) -> str:
    piece = piece or "x"
    return (piece * (length // len(piece) + 1))[:length]


text = st.one_of(
    st.text(max_size=50),
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.text(st.characters(max_codepoint=0x1F), max_size=20),
    # longer values (past the length limits): a random piece repeated; drawing 5,000
    # characters one by one made generating the data cost more than the requests
    st.builds(_repeat, st.text(st.characters(codec="utf-8"), max_size=12), st.integers(51, 6000)),
    st.sampled_from(["", " ", "\x00", "a@b.c", "reader1@example.org", "0", "-1", "9" * 30]),
)


def fuzz_settings() -> hypothesis_settings:
    return hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.fixture
def no_rate_limits() -> Iterator[None]:
    saved = extensions.limiter.enabled
    extensions.limiter.enabled = False  # checked on every request (Flask-Limiter 4.1)
    yield
    extensions.limiter.enabled = saved


def row_counts(conn: Connection) -> dict[str, int]:
    """Every table's row count, in one query."""
    tables = list(Base.metadata.sorted_tables)
    query = select(*(select(func.count()).select_from(t).scalar_subquery() for t in tables))
    counts = dict(zip((t.name for t in tables), conn.execute(query).one(), strict=True))
    conn.rollback()  # no transaction (and no SQLite read lock) held between requests
    return counts


class CommittedWrites:
    """The INSERT/UPDATE/DELETE statements the app's engine committed since `clear()`.

    Counting rows misses an UPDATE (a profile half saved before a 400); this sees every write
    that reached the database through the app, and costs no query."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pending: dict[int, list[str]] = {}
        self.committed: list[str] = []
        event.listen(engine, "before_cursor_execute", self._execute)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)

    def _execute(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        verb = statement.lstrip()[:6].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and not VOLATILE_WRITE.match(statement):
            self.pending.setdefault(id(conn), []).append(statement)

    def _commit(self, conn) -> None:  # type: ignore[no-untyped-def]
        self.committed += self.pending.pop(id(conn), [])

    def _rollback(self, conn) -> None:  # type: ignore[no-untyped-def]
        self.pending.pop(id(conn), None)

    def clear(self) -> None:
        self.committed = []

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._execute)
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "rollback", self._rollback)


class NoPartialWrite:
    """Sends one request at a time and checks it: a 4xx left every table's row count
    unchanged (one counting query per example: the count after one example is the count
    before the next) and the app's engine committed no INSERT, UPDATE or DELETE during it.
    2xx/3xx may write (valid input doing its job): `wrote` counts those that did."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.writes = CommittedWrites(engine)
        self.counts: dict[str, int] | None = None
        self.wrote = 0

    def send(self, request: Callable[[], Any], data: object, *, signed_in: bool) -> Any:
        """Send one request; a 4xx must have committed nothing and changed no row count."""
        with self.engine.connect() as conn:
            before = self.counts or row_counts(conn)
            self.writes.clear()
            response = request()
            status = response.status_code
            check_answer(response, data, signed_in=signed_in)
            self.counts = after = row_counts(conn)
            if 400 <= status < 500:
                assert self.writes.committed == [], (status, data, self.writes.committed)
                assert after == before, (status, data)
            elif self.writes.committed:
                self.wrote += 1
        return response

    def forget(self) -> None:
        """Something other than a checked request wrote: count again before the next."""
        self.counts = None

    def close(self) -> None:
        self.writes.close()


def check_answer(response: Any, data: object, *, signed_in: bool) -> None:
    """No 5xx and no traceback, and the input reached the view: no 429, no CSRF refusal,
    no sign-in redirect."""
    status = response.status_code
    body = response.get_data(as_text=True)
    assert status < 500, (status, data, body[-3000:])
    assert "Traceback" not in body
    assert status != 429, "a rate limit answered: the input never reached the view"
    assert not (status == 400 and CSRF_REFUSAL in body), "refused by the CSRF check"
    if signed_in:
        location = urlsplit(response.headers.get("Location", ""))
        assert location.path != "/login", "signed out: the input never reached the view"
