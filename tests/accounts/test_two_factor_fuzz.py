"""Input fuzzing of the two-factor forms (docs/security.md threat 30), as
tests/test_fuzz_forms.py fuzzes every other form and with its machinery (tests/fuzzing.py),
but with the state each needs, which the generic test does not make: a sign-in waiting for
its code, two-factor on, a session that gave its code just now. A refused code or password
is written to the audit log (docs/security.md), the one write a 4xx may make here.
test_fuzz_forms.py's FIELDS takes TWO_FACTOR_FIELDS, so its check that every POST rule is
fuzzed counts these."""

from __future__ import annotations

import pyotp
import pytest
from flask import Flask, url_for
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import User, UserSession
from tests import fuzzing
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_user
from tests.fuzzing import (
    EXAMPLES,
    NoPartialWrite,
    fuzz_settings,
    no_rate_limits,  # noqa: F401  (a fixture)
    text,
)

TWO_FACTOR_FIELDS = {
    "accounts.two_factor_setup": ["code", "next"],
    "accounts.two_factor_challenge": ["code", "remember_device"],
    "accounts.two_factor_disable": ["proof"],
    "accounts.two_factor_new_codes": [],
    "accounts.reauth": ["proof", "next", "then", "keep-q", "keep-csrf_token"],
}


def form_data(endpoint: str) -> st.SearchStrategy[dict[str, str]]:
    names = (
        st.sampled_from(TWO_FACTOR_FIELDS[endpoint])
        if TWO_FACTOR_FIELDS[endpoint]
        else st.nothing()
    )
    return st.dictionaries(st.one_of(names, st.text(max_size=20)), text, max_size=8)


class AuditedRefusals(NoPartialWrite):
    """NoPartialWrite, except that a 4xx may add audit events (and nothing else)."""

    def send(self, request, data, *, signed_in):  # type: ignore[no-untyped-def]
        with self.engine.connect() as conn:
            before = self.counts or fuzzing.row_counts(conn)
            self.writes.clear()
            response = request()
            fuzzing.check_answer(response, data, signed_in=signed_in)
            self.counts = after = fuzzing.row_counts(conn)
            if 400 <= response.status_code < 500:
                audit_insert = "INSERT INTO AUDIT_EVENTS"
                others = [s for s in self.writes.committed
                          if not s.lstrip().upper().startswith(audit_insert)]  # fmt: skip
                assert others == [], (response.status_code, data, others)
                before, after = dict(before), dict(after)
                before.pop("audit_events"), after.pop("audit_events")
                assert after == before, (response.status_code, data)
            elif self.writes.committed:
                self.wrote += 1
        return response


@pytest.mark.slow
@pytest.mark.usefixtures("no_rate_limits")
@pytest.mark.parametrize("endpoint", sorted(TWO_FACTOR_FIELDS))
def test_fuzz_two_factor_form(app: Flask, db: Session, endpoint: str) -> None:
    user = make_user(db, email="member@example.org")
    client = app.test_client()
    pending = endpoint == "accounts.two_factor_challenge"
    if not pending:
        login(client, user.email, PASSWORD)  # signed in now: fresh for 15 minutes
    if endpoint != "accounts.two_factor_setup" and endpoint != "accounts.reauth":
        user.totp_secret, user.two_factor_enabled_at = pyotp.random_base32(), clock.now()
        if not pending:  # this session gave its code just now (new codes ask for that)
            db.execute(update(UserSession).values(two_factor_at=clock.now()))
        db.commit()
    if pending:
        login(client, user.email, PASSWORD)  # 302 to the code page: waiting for the code
    token = csrf_token(client)
    with app.test_request_context():
        url = url_for(endpoint)
    answered: dict[int, int] = {}
    guard = AuditedRefusals(app.extensions["db.engine"])

    @fuzz_settings()
    @given(data=form_data(endpoint))
    def run(data: dict[str, str]) -> None:
        send = lambda: client.post(url, data={**data, "csrf_token": token})  # noqa: E731
        status = guard.send(send, data, signed_in=not pending).status_code
        answered[status] = answered.get(status, 0) + 1

    try:
        run()
    finally:
        guard.close()
    assert sum(answered.values()) >= EXAMPLES, answered
    if endpoint == "accounts.two_factor_new_codes":  # only the token matters: each one works
        assert answered.get(200) == guard.wrote and set(answered) <= {200, 400}, answered
    else:
        assert set(answered) == {400}, answered
    db.rollback()
    still = db.scalar(select(User).where(User.email == "member@example.org"))
    assert still is not None and (still.two_factor_enabled_at is None) == (
        endpoint in ("accounts.two_factor_setup", "accounts.reauth")
    )
