"""The access matrix (docs/security.md threat 19) and CSRF coverage (threat 27), built from
`app.url_map`: a route added tomorrow is requested by these tests the day it appears, and
`test_every_rule_is_classified` fails until it is given a row in EXPECTED."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.routing import Rule
from werkzeug.routing.converters import AnyConverter, IntegerConverter

from patrons.articles import corrections
from patrons.models import Payment, Pledge
from patrons.models.events import EVENT_KINDS
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_article, make_patron, make_staff, make_user

ROLES = ("anonymous", "member", "patron", "staff")
SIGNED_IN = ("member", "patron", "staff")
# a URL argument whose generic filler ("story") would only ever give a 404
ARG_OVERRIDES = {"kind": EVENT_KINDS[0]}
# POST routes that accept a request without a CSRF token: only the Stripe webhook, which
# proves itself by its signature instead
CSRF_EXEMPT: frozenset[str] = frozenset({"stripe.webhook"})

LOGIN = "login"  # "302 to /login?next=..." (Flask-Login's unauthorized redirect)
Expect = int | str  # a status code, or LOGIN


def same(status: Expect) -> dict[str, Expect]:
    return dict.fromkeys(ROLES, status)


def signed_in_only(status: Expect) -> dict[str, Expect]:
    return {"anonymous": LOGIN, **dict.fromkeys(SIGNED_IN, status)}


def anonymous_only(anonymous: Expect, others: Expect) -> dict[str, Expect]:
    return {"anonymous": anonymous, **dict.fromkeys(SIGNED_IN, others)}


def staff_only(staff: Expect) -> dict[str, Expect]:
    return {"anonymous": LOGIN, "member": 403, "patron": 403, "staff": staff}


# endpoint -> method -> role -> expected status. POSTs carry a valid CSRF token, no fields.
EXPECTED: dict[str, dict[str, dict[str, Expect]]] = {
    # public pages
    "articles.index": {"GET": same(200)},
    "articles.tag": {"GET": same(200)},
    "articles.article": {"GET": same(200)},
    "articles.feed": {"GET": same(200)},
    "articles.suggest_correction": {"GET": same(200), "POST": same(400)},
    "articles.contact": {"GET": same(200), "POST": same(400)},
    "articles.csrf_token": {"GET": same(200)},
    "articles.beacon": {"GET": same(204)},
    # Stripe's webhook: no session, no CSRF; an unsigned request is refused
    "stripe.webhook": {"POST": same(400)},
    # pledges (the test app has no Stripe keys: the pledge actions are 404 "not open yet")
    "pledges.support": {"GET": same(200)},
    "pledges.pledge": {"GET": signed_in_only(200)},
    # a receipt is its payer's only: the patron's own payment, anyone else 404
    "pledges.receipt": {"GET": {"anonymous": LOGIN, "member": 404, "patron": 200, "staff": 404}},
    **{
        f"pledges.{name}": {"POST": signed_in_only(404)}
        for name in (
            "start",
            "subscribe",
            "refresh",
            "card_start",
            "card_confirm",
            "change_amount",
            "cancel",
            "resume",
            "finish",
            "finish_card",
            "start_over",
        )
    },
    "articles.privacy": {"GET": same(200)},
    "articles.theme": {"GET": same(200)},
    "health.healthz": {"GET": same(200)},
    "health.readyz": {"GET": same(200)},
    # from loopback (the test client's address) without a token; tests/test_metrics.py: else 404
    "metrics.metrics": {"GET": same(200)},
    # accounts: signed-in readers are sent on from the sign-in and sign-up pages
    "accounts.login": {"GET": anonymous_only(200, 302), "POST": anonymous_only(400, 302)},
    "accounts.logout": {"POST": same(302)},
    "accounts.signup": {"GET": anonymous_only(200, 302), "POST": anonymous_only(400, 302)},
    "accounts.signup_sent": {"GET": same(200), "POST": same(400)},  # no code page: 400
    "accounts.verify": {"GET": same(400), "POST": same(400)},  # no token: 400
    "accounts.resend_verification": {"POST": same(400)},
    "accounts.confirm_to_pledge": {"POST": signed_in_only(303)},  # back to /support
    "accounts.forgot_password": {"GET": same(200), "POST": same(400)},
    "accounts.reset": {"GET": same(400), "POST": same(400)},  # no token: 400
    "accounts.login_link": {"GET": anonymous_only(200, 302), "POST": anonymous_only(400, 302)},
    "accounts.login_link_open": {"GET": same(400), "POST": same(400)},  # no token: 400
    # login_required
    "accounts.account": {"GET": signed_in_only(200)},
    "accounts.update_profile": {"POST": signed_in_only(302)},  # the name is optional
    "accounts.change_password": {"POST": signed_in_only(400)},
    "accounts.change_email": {"POST": signed_in_only(400)},
    "accounts.export": {"GET": signed_in_only(200)},
    "accounts.delete_account": {"GET": signed_in_only(200), "POST": signed_in_only(400)},
    "accounts.confirm_email_change": {"GET": same(200), "POST": same(400)},  # no token
    # staff only
    "staff.home": {"GET": staff_only(200)},
    "staff.articles": {"GET": staff_only(200)},
    "staff.new_article": {"GET": staff_only(200), "POST": staff_only(400)},
    # an edit keeps the fields it is not sent (the form is filled from the article)
    "staff.edit_article": {"GET": staff_only(200), "POST": staff_only(302)},
    "staff.publish_article": {"POST": staff_only(302)},
    "staff.correction_list": {"GET": staff_only(200)},
    "staff.members": {"GET": staff_only(200)},
    "staff.handle_correction": {"POST": staff_only(302)},
    "staff.site_texts": {"GET": staff_only(200), "POST": staff_only(302)},
    # voting: this world has no round or topic, so a URL naming one is a 404 for whoever
    # may reach the view (the integer arguments are filled with the article's id)
    "voting.topics": {"GET": same(200)},
    "voting.past_rounds": {"GET": same(200)},
    "voting.round_page": {"GET": same(404)},
    "voting.vote": {"POST": signed_in_only(404)},
    "voting.withdraw": {"POST": signed_in_only(404)},
    "voting.propose": {"POST": signed_in_only(400)},  # no title
    "staff.voting.index": {"GET": staff_only(200)},
    "staff.voting.new_round": {"GET": staff_only(200), "POST": staff_only(400)},
    "staff.voting.round_page": {"GET": staff_only(404), "POST": staff_only(404)},
    "staff.voting.add_topic": {"POST": staff_only(404)},
    "staff.voting.close_round": {"POST": staff_only(404)},
    "staff.voting.round_csv": {"GET": staff_only(404)},
    "staff.voting.proposals": {"GET": staff_only(200)},
    "staff.voting.moderate_topic": {"POST": staff_only(404)},
    "staff.voting.topic_status": {"POST": staff_only(404)},
    "staff.voting.link_article": {"POST": staff_only(404)},
    # reports (patrons/reports/views.py); a member's page is filled with the article's id,
    # 1, which is also the world's first member's
    "staff.reports.index": {"GET": staff_only(200)},
    "staff.reports.table_csv": {"GET": staff_only(200)},
    "staff.reports.exchange_rates": {
        "GET": staff_only(200),
        "POST": staff_only(400),
    },  # no currency
    "staff.reports.member": {"GET": staff_only(200)},
    # the Stripe events that failed to apply; a retry of an event that does not exist: 404
    "staff.stripe_events.index": {"GET": staff_only(200)},
    "staff.stripe_events.retry_event": {"POST": staff_only(404)},
    # offline Stripe only: 404 for staff too while no offline Stripe is configured
    "staff.simulate.index": {"GET": staff_only(404)},
    "staff.simulate.renewal": {"POST": staff_only(404)},
    "staff.simulate.failed_renewal": {"POST": staff_only(404)},
}
# two-factor (accounts/two_factor_views.py, account_views.py) and the staff audit log. No
# one here has two-factor on: turning it off or making new codes is a 400 with its reason;
# the challenge without a pending sign-in sends to /login (GET) or says it expired (400)
EXPECTED.update(
    {
        "accounts.two_factor_setup": {"GET": signed_in_only(200), "POST": signed_in_only(400)},
        "accounts.two_factor_disable": {"POST": signed_in_only(400)},
        "accounts.two_factor_new_codes": {"POST": signed_in_only(400)},
        "accounts.two_factor_challenge": {"GET": same(302), "POST": same(400)},
        "accounts.reauth": {"GET": signed_in_only(200), "POST": signed_in_only(400)},
        "staff.audit.index": {"GET": staff_only(200)},
    }
)


@dataclass
class World:
    article_id: int
    suggestion_id: int
    payment_id: int
    pledge_id: int
    emails: dict[str, str]


@pytest.fixture
def world(app: Flask, db: Session) -> World:
    article = make_article(db, title="A story", slug="story", tags=("story",))
    suggestion = corrections.suggest_correction(db, article, "first", "", "A typo.", None)
    db.commit()
    patron = make_patron(db)
    pledge = db.scalars(select(Pledge).where(Pledge.user_id == patron.id)).one()
    payment = db.scalars(select(Payment).where(Payment.pledge_id == pledge.id)).one()
    emails = {"member": make_user(db).email, "patron": patron.email, "staff": make_staff(db).email}
    return World(article.id, suggestion.id, payment.id, pledge.id, emails)


def routes(app: Flask) -> list[Rule]:
    return sorted(
        (r for r in app.url_map.iter_rules() if r.endpoint != "static"), key=lambda r: r.rule
    )


def methods(rule: Rule) -> list[str]:
    return [m for m in ("GET", "POST") if m in (rule.methods or ())]


def fill(rule: Rule, world: World) -> dict[str, object]:
    """Real values for the rule's URL arguments."""
    values: dict[str, object] = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        if name in ARG_OVERRIDES:
            values[name] = ARG_OVERRIDES[name]
        elif isinstance(converter, AnyConverter):
            declared = re.search(rf"<any\(([^)]*)\):{name}>", rule.rule)
            assert declared, rule.rule
            values[name] = declared.group(1).split(",")[0].strip()
        elif isinstance(converter, IntegerConverter):
            ids = {
                "suggestion_id": world.suggestion_id,
                "payment_id": world.payment_id,
                "pledge_id": world.pledge_id,
            }
            values[name] = ids.get(name, world.article_id)
        else:
            values[name] = "story"
    return values


def url_for_rule(app: Flask, rule: Rule, world: World) -> str:
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **fill(rule, world))


def client_as(app: Flask, role: str, world: World) -> FlaskClient:
    client = app.test_client()
    if role != "anonymous":
        login(client, world.emails[role], PASSWORD)
    return client


def request(client: FlaskClient, method: str, url: str, with_token: bool = True):  # type: ignore[no-untyped-def]
    if method == "GET":
        return client.get(url)
    data = {"csrf_token": csrf_token(client)} if with_token else {}
    return client.post(url, data=data)


def deviation(expected: Expect, response, url: str) -> str | None:  # type: ignore[no-untyped-def]
    status = response.status_code
    if status >= 500:
        return f"server error {status}"
    if expected == LOGIN:
        location = urlsplit(response.headers.get("Location", ""))
        ok = status == 302 and location.path == "/login" and location.query.startswith("next=")
        return None if ok else f"{status} {response.headers.get('Location')!r}, want login redirect"
    return None if status == expected else f"{status}, want {expected}"


def test_every_rule_is_classified(app: Flask) -> None:
    """A new route fails here until EXPECTED says who may reach it."""
    found = {r.endpoint: set(methods(r)) for r in routes(app)}
    unclassified = sorted(f"{e} {sorted(m)}" for e, m in found.items() if e not in EXPECTED)
    assert unclassified == [], f"routes missing from EXPECTED: {unclassified}"
    wrong_methods = sorted(e for e, m in found.items() if m != set(EXPECTED[e]))
    assert wrong_methods == [], f"methods differ from EXPECTED: {wrong_methods}"
    stale = sorted(set(EXPECTED) - set(found))
    assert stale == [], f"EXPECTED lists routes that no longer exist: {stale}"


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(app: Flask, world: World, role: str) -> None:
    """Every route x method for one role: the EXPECTED status, never a 5xx.

    Each request gets a fresh client (sign-out must not leak into the next route)."""
    problems = []
    checked = 0
    for rule in routes(app):
        for method in methods(rule):
            expected = EXPECTED.get(rule.endpoint, {}).get(method, {}).get(role)
            if expected is None:
                continue  # test_every_rule_is_classified reports it
            url = url_for_rule(app, rule, world)
            response = request(client_as(app, role, world), method, url)
            checked += 1
            problem = deviation(expected, response, url)
            if problem:
                problems.append(f"{role} {method} {url} ({rule.endpoint}): {problem}")
    assert checked >= 30
    assert problems == []


def test_every_staff_route_is_refused_to_non_staff(app: Flask, world: World) -> None:
    """Threat 19, independent of EXPECTED: any /staff rule, any method, 403 for readers."""
    staff_rules = [r for r in routes(app) if r.rule.startswith("/staff")]
    assert staff_rules
    assert all(r.endpoint.startswith("staff.") for r in staff_rules)
    for rule in staff_rules:
        url = url_for_rule(app, rule, world)
        for method in methods(rule):
            for role in ("member", "patron"):
                response = request(client_as(app, role, world), method, url)
                assert response.status_code == 403, (role, method, url)
            anonymous = request(client_as(app, "anonymous", world), method, url)
            assert deviation(LOGIN, anonymous, url) is None, (method, url)


def post_rules(app: Flask) -> list[Rule]:
    return [r for r in routes(app) if "POST" in (r.methods or ())]


def _roles_for(endpoint: str) -> str:
    """The least-privileged role that gets past the access check of this endpoint."""
    expected = EXPECTED.get(endpoint, {}).get("POST", {})
    for role in ROLES:
        if expected.get(role) not in (LOGIN, 403):
            return role
    return "staff"


def test_state_changing_routes_reject_a_missing_csrf_token(app: Flask, world: World) -> None:
    """Every rule accepting POST answers a token-less POST with 400 (threat 27), signed in as
    a role that reaches the view; CSRF_EXEMPT lists the one exception, the Stripe webhook."""
    rules = post_rules(app)
    assert len(rules) >= 16
    accepted = []
    for rule in rules:
        url = url_for_rule(app, rule, world)
        client = client_as(app, _roles_for(rule.endpoint), world)
        client.get("/csrf-token")  # the session holds a token; the request does not send it
        response = request(client, "POST", url, with_token=False)
        if rule.endpoint in CSRF_EXEMPT:
            continue
        if response.status_code != 400 or b"could not be accepted" not in response.data:
            accepted.append(f"{rule.endpoint} {url}: {response.status_code}")
    assert accepted == []
    assert {r.endpoint for r in rules} >= CSRF_EXEMPT
    assert {"stripe.webhook"} == CSRF_EXEMPT


def test_csrf_token_from_another_session_is_rejected(app: Flask, world: World) -> None:
    rules = post_rules(app)
    other = app.test_client()
    token = csrf_token(other)
    for rule in rules:
        url = url_for_rule(app, rule, world)
        client = client_as(app, _roles_for(rule.endpoint), world)
        response = client.post(url, data={"csrf_token": token})
        assert response.status_code == 400, (rule.endpoint, response.status_code)
