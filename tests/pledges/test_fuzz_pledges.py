"""Input fuzzing of the pledge and simulation routes, with the offline Stripe (localstripe).

tests/test_fuzz_forms.py fuzzes every other POST rule without Stripe keys, where these ten
routes are 404s. Here the app has keys and talks to localstripe, and each route is fuzzed
with the signed-in user in a state where the view does real work:

- pledges.start, pledges.subscribe: a member without a pledge (subscribe also after a start,
  with a pending pledge, a Stripe customer and a confirmed SetupIntent);
- pledges.refresh, card_start, card_confirm, change_amount, cancel, resume: a patron with a
  real active pledge made through localstripe (resume also with the pledge set to end);
- staff.simulate_renewal, staff.simulate_failed_renewal/<id of that real pledge>: staff.

The JSON steps (start, subscribe, refresh, card_start, card_confirm) get, as Hypothesis
chooses, a JSON body with the CSRF token in X-CSRFToken (as static/js/pledge.js sends it) or
form data with the token in the form. JSON bodies are objects with values of any JSON type
(nulls, booleans, ints up to 2**70 and past 4,300 digits, floats up to 1e308, strings, lists,
nested objects), non-object bodies, and a few malformed ones; NaN and Infinity are not JSON
and are left out. The other routes get form data. Values mix the random text of
tests/fuzzing.py with values that are valid (a real SetupIntent id, an offered amount), so
that some examples succeed: a 2xx/3xx may write. A success that leaves the route nothing to
do (cancel, resume) is undone RESTORE_AFTER examples later, outside the checks.

Every example (the checks of tests/fuzzing.py, shared with test_fuzz_forms.py): no 5xx, no
traceback, not refused by the CSRF check, not a sign-in redirect, not a 429 (the limiter is
switched off, as there); a 4xx left every table's row count unchanged and the app committed
no INSERT, UPDATE or DELETE during it.

One allowance, by design: a subscribe refused with a 4xx (Stripe says the SetupIntent is
not this reader's, or not confirmed) has committed a lease UPDATE and its undo. The lease is
the compare-and-set that stops two tabs from subscribing twice (localstripe ignores
idempotency keys), and it must be taken before Stripe is asked, outside any transaction.
The fuzzing lets exactly that lease pair through, checking instead that the reader's pledge
rows are identical, column for column (test_a_refused_subscribe_leaves_the_pledge_as_it_was).
JSON nested past Python's recursion limit was a 500 until the fuzzing found it; the JSON
steps now answer it like a body without fields.

1,000 examples per case in the `ci` Hypothesis profile, 100 in `dev` (the default), 12 cases
(`FUZZ_EXAMPLES=n` to change it); cheap password hashing as in test_fuzz_forms.py. Measured
at 1,000 (`time pytest tests/pledges/test_fuzz_pledges.py`, 2 cores shared with other test
runs, load ~3): 3 min 50 s on SQLite (3 min CPU), 7 min on PostgreSQL
(4 min CPU; 5 min 10 s at a lower load). Most of it is localstripe: the two simulations
(every example is valid: only the CSRF token travels) take 45-95 s each, and their requests
slow down as the subscription's history grows; a success of cancel or resume is undone only
every RESTORE_AFTER examples, which took ~1 min off the module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.core.config import Settings
from patrons.models import Pledge
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_staff, make_user
from tests.fuzzing import (
    CHEAP_HASHING,
    EXAMPLES,
    CommittedWrites,
    NoPartialWrite,
    fuzz_settings,
    no_rate_limits,  # noqa: F401  (a fixture)
    text,
)
from tests.pledges.conftest import stripe_settings
from tests.pledges.test_pledge_flow import Reader, active_pledge, pledges_of

pytestmark = pytest.mark.usefixtures("no_rate_limits")

# every POST rule fuzzed here (test_fuzz_forms.test_every_post_rule_is_fuzzed counts them)
PLEDGE_FIELDS = {
    "pledges.start": ["currency", "amount", "other_amount", "plan", "attempt"],
    "pledges.subscribe": ["setup_intent", "currency", "amount", "other_amount"],
    "pledges.refresh": [],
    "pledges.finish": ["attempt"],
    "pledges.finish_card": ["setup_intent"],
    "pledges.start_over": [],
    "pledges.card_start": ["attempt"],
    "pledges.card_confirm": ["setup_intent"],
    "pledges.change_amount": ["amount", "other_amount"],
    "pledges.cancel": ["reason"],
    "pledges.resume": [],
    "staff.simulate.renewal": [],
    "staff.simulate.failed_renewal": [],
}
JSON_ROUTES = {
    "pledges.start",
    "pledges.subscribe",
    "pledges.refresh",
    "pledges.finish",
    "pledges.finish_card",
    "pledges.card_start",
    "pledges.card_confirm",
}
# (route, the signed-in user's state)
CASES = [
    ("pledges.start", "member"),
    ("pledges.subscribe", "member"),
    ("pledges.subscribe", "started"),
    ("pledges.refresh", "patron"),
    ("pledges.finish", "started"),
    ("pledges.finish_card", "started"),
    ("pledges.start_over", "started"),
    ("pledges.card_start", "patron"),
    ("pledges.card_confirm", "patron"),
    ("pledges.change_amount", "patron"),
    ("pledges.cancel", "patron"),
    ("pledges.resume", "patron"),
    ("pledges.resume", "ending"),
    ("staff.simulate.renewal", "staff"),
    ("staff.simulate.failed_renewal", "staff"),
]
# routes where valid input is common or offered: some examples must have written
WRITES_ON_VALID_INPUT = {
    "pledges.start",
    "pledges.card_confirm",
    "pledges.change_amount",
    "pledges.cancel",
    "staff.simulate.renewal",
    "staff.simulate.failed_renewal",
}
# nesting depths drawn for JSON bodies: through and past Python's recursion limit (1,000)
NESTING_PARSED = 2500
# after a cancel (resume) succeeded, this many examples meet the pledge already set to end
# (not set to end: a 409, which must write nothing) before it is put back (outside the
# checks): both paths get valid input, and a success with its undo (two requests that reach
# localstripe) is not paid for on every valid example.
RESTORE_AFTER = 3
# valid or nearly valid values (offered amounts, the plan, an attempt id, lease-like text)
HINTS = [
    "EUR", " eur ", "GBP", "UAH", "USD", "XXX", "300", "500", "1000", "2500", "999999999",
    "other", "7.50", "7,5", " 12 ", "0.01", "1000000", "patron-eur-500", "patron-eur-1000",
    "try1", "card-1", "seti_x", "seti_" + "9" * 300, "lease:", "lease:1:abc",
]  # fmt: skip


@pytest.fixture
def settings(database_url: str, tmp_path: Path, localstripe: str) -> Settings:
    """tests/pledges' settings (keys, localstripe) with cheap password hashing."""
    return stripe_settings(database_url, tmp_path / "instance", localstripe, **CHEAP_HASHING)


def test_every_route_here_has_a_case() -> None:
    assert {endpoint for endpoint, _state in CASES} == set(PLEDGE_FIELDS)
    assert set(PLEDGE_FIELDS) >= JSON_ROUTES


# -- what is sent ----------------------------------------------------------------------------


def json_values(hints: list[str]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(-(2**70), 2**70),
        st.sampled_from([0, -1, 300, 500, 1000, 2500, 10**9, 10**18, 2**63, -(2**63) - 1]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([1e308, -1e308, 5e-324, 500.0, 7.5, -0.0]),
        text,
        st.sampled_from(hints),
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=6,
    )


def _huge_int(key: str, digits: int) -> str:
    return json.dumps({key: 0}).replace("0", "9" * digits)  # past Python's 4,300 digits


def valid_values(setup_intents: list[str]) -> dict[str, st.SearchStrategy[Any]]:
    """Values each field accepts (in some state), so that valid requests are not left to
    chance; `setup_intents`: the case's confirmed SetupIntent (if any) and look-alikes."""
    return {
        "currency": st.sampled_from(["EUR", " eur", "GBP"]),
        "amount": st.sampled_from([300, 500, 1000, "2500", " 500 ", "other", "", None]),
        "other_amount": st.sampled_from(["7.50", "12", "3,5", ""]),
        "plan": st.sampled_from(["", None, "patron-eur-500"]),
        "attempt": st.sampled_from(["try1", "a-B_9", "z" * 40]),
        "setup_intent": st.sampled_from(setup_intents),
        "reason": text,
    }


def _as_form(values: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}


def request_bodies(
    endpoint: str, hints: list[str], setup_intents: list[str]
) -> st.SearchStrategy[tuple[str, Any]]:
    """("form", dict of text) or, for the JSON steps, ("json", the body's text). One in
    three bodies starts from valid values for every field, the random ones added after."""
    fields = PLEDGE_FIELDS[endpoint]
    names = (
        st.one_of(st.sampled_from(fields), st.text(max_size=20)) if fields else st.text(max_size=20)
    )
    good = valid_values(setup_intents)
    valid = st.fixed_dictionaries({}, optional={f: good[f] for f in fields})
    random_form = st.dictionaries(names, st.one_of(text, st.sampled_from(hints)), max_size=8)
    form = st.one_of(
        random_form,
        random_form,
        st.builds(
            lambda v, r: {**_as_form(v), **r}, valid, st.dictionaries(names, text, max_size=2)
        ),
    )
    shapes = [st.tuples(st.just("form"), form)]
    if endpoint in JSON_ROUTES:
        values = json_values(hints)
        random_object = st.dictionaries(names, values, max_size=8)
        objects = st.one_of(
            random_object,
            random_object,
            st.builds(lambda v, r: {**v, **r}, valid, st.dictionaries(names, values, max_size=2)),
        ).map(json.dumps)
        others = values.map(json.dumps)  # null, numbers, strings, lists, objects
        odd = st.one_of(
            st.builds(_huge_int, names, st.integers(4301, 6000)),
            st.sampled_from(["", "{", '{"amount": 500', "[", "nul", "1e400", "{}", "[]", '""']),
            st.builds(_nested, st.integers(1, NESTING_PARSED)),
        )
        shapes.append(st.tuples(st.just("json"), st.one_of(objects, objects, others, odd)))
    return st.one_of(*shapes)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth  # Python's JSON parser recurses once per level


# -- the state each case starts from ---------------------------------------------------------


class Case:
    """A signed-in client whose user is in the state the case names, and the SetupIntent
    ids to send: the one that user confirmed (if any) and two that are not theirs."""

    def __init__(self, app: Flask, db: Session, localstripe: str, state: str) -> None:
        self.client: FlaskClient
        self.setup_intents = ["seti_x", "seti_1NotThisCustomers000000"]
        self.url_values: dict[str, object] = {}
        if state == "staff":
            reader = Reader(app, make_user(db, display_name="Patron"), localstripe)
            pledge = active_pledge(reader, db)
            self.url_values = {"pledge_id": pledge.id}
            self.client = app.test_client()
            login(self.client, make_staff(db).email, PASSWORD)
            self.token = csrf_token(self.client)
            return
        reader = Reader(app, make_user(db, display_name="Olena"), localstripe)
        self.client, self.token = reader.client, reader.token
        if state == "started":  # a pending pledge with a customer and a confirmed card
            started = reader.start()
            assert started.status_code == 200, started.get_json()
            self.setup_intents.append(reader.confirm_card(started.get_json()["client_secret"]))
        elif state in ("patron", "ending"):
            active_pledge(reader, db)
            started = reader.post("/pledge/card", {"attempt": "card1"})
            assert started.status_code == 200, started.get_json()
            self.setup_intents.append(reader.confirm_card(started.get_json()["client_secret"]))
        if state == "ending":
            assert reader.form("/pledge/cancel", {"reason": "x"}).status_code == 303
        self.reader = reader

    def restore(self, endpoint: str, state: str) -> Callable[[], None] | None:
        """What undoes a success of this case, if it leaves a state where the next valid input
        would only be refused (a pledge already set to end, or no longer set to end)."""
        if (endpoint, state) == ("pledges.cancel", "patron"):
            return lambda: self._expect(self.reader.form("/pledge/resume"), 303)
        if (endpoint, state) == ("pledges.resume", "ending"):
            return lambda: self._expect(self.reader.form("/pledge/cancel", {"reason": "x"}), 303)
        return None

    @staticmethod
    def _expect(response: Any, status: int) -> None:
        assert response.status_code == status, response.get_data(as_text=True)[-2000:]


# -- the test --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("endpoint", "state"), CASES, ids=[f"{e}-{s}" for e, s in CASES])
def test_fuzz_pledge_route(
    app: Flask, db: Session, localstripe: str, endpoint: str, state: str
) -> None:
    case = Case(app, db, localstripe, state)
    restore = case.restore(endpoint, state)
    with app.test_request_context():
        url = url_for(endpoint, **case.url_values)
    client, token = case.client, case.token
    answered: dict[tuple[str, int], int] = {}
    guard = NoPartialWrite(app.extensions["db.engine"])

    def send(shape: str, body: Any) -> Any:
        if shape == "json":
            headers = {"X-CSRFToken": token, "Accept": "application/json"}
            return client.post(url, data=body, content_type="application/json", headers=headers)
        return client.post(url, data={**body, "csrf_token": token})

    state_changed: dict[str, int | None] = {"examples since": None}

    @fuzz_settings()
    @given(request=request_bodies(endpoint, HINTS + case.setup_intents, case.setup_intents))
    def run(request: tuple[str, Any]) -> None:
        shape, body = request
        since = state_changed["examples since"]
        if restore is not None and since is not None and since >= RESTORE_AFTER:
            restore()  # outside the checks
            guard.forget()
            state_changed["examples since"] = since = None
        response = guard.send(lambda: send(shape, body), request, signed_in=True)
        status = response.status_code
        answered[shape, status] = answered.get((shape, status), 0) + 1
        if restore is not None and status in (302, 303):
            state_changed["examples since"] = 0
        elif since is not None:
            state_changed["examples since"] = since + 1

    try:
        run()
    finally:
        guard.close()
    assert sum(answered.values()) >= EXAMPLES, answered  # every example reached the app
    if endpoint in WRITES_ON_VALID_INPUT and EXAMPLES >= 100:  # real work was done
        assert guard.wrote > 0, answered
    if state != "staff":  # never more than one open pledge, whatever was sent
        user_id = case.reader.user.id
        db.rollback()
        open_rows = db.scalars(
            select(Pledge).where(Pledge.user_id == user_id, Pledge.ended_at.is_(None))
        ).all()
        assert len([p for p in open_rows if p.is_open]) <= 1, pledges_of(db, case.reader.user)
    print(endpoint, state, dict(sorted(answered.items())))


# -- JSON nested past the recursion limit, and the refused subscribe's lease ------------------


@pytest.mark.parametrize(
    "endpoint", ["pledges.start", "pledges.subscribe", "pledges.card_start", "pledges.card_confirm"]
)
def test_deeply_nested_json_is_not_a_server_error(
    app: Flask, db: Session, localstripe: str, endpoint: str
) -> None:
    reader = Reader(app, make_user(db), localstripe)
    with app.test_request_context():
        url = url_for(endpoint)
    response = reader.client.post(
        url,
        data=_nested(1000),
        content_type="application/json",
        headers={"X-CSRFToken": reader.token, "Accept": "application/json"},
    )
    assert response.status_code < 500


def test_a_refused_subscribe_leaves_the_pledge_as_it_was(
    app: Flask, db: Session, localstripe: str
) -> None:
    """A refused subscribe writes nothing at all (the SetupIntent is checked before the lease
    is taken), and a real SetupIntent still subscribes afterwards."""
    case = Case(app, db, localstripe, "started")
    writes = CommittedWrites(app.extensions["db.engine"])
    try:
        response = case.reader.post("/pledge/subscribe", {"setup_intent": "seti_x"})
    finally:
        writes.close()
    assert response.status_code == 400
    assert writes.committed == []
    done = case.reader.post("/pledge/subscribe", {"setup_intent": case.setup_intents[-1]})
    assert done.get_json().get("status") == "active", done.get_json()
