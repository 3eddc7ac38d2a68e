"""Sign-up, verification, sign-in/out and the account page, through HTTP with CSRF on."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event, func, select, update
from sqlalchemy.engine.interfaces import CacheStats

from patrons.accounts import sessions
from patrons.core import clock
from patrons.models import OutboundEmail, User, UserSession
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_user

NEW_PASSWORD = "a brand new passphrase"


def signup(client, email="new.reader@example.org", password="long enough password", **extra):
    data = {"email": email, "password": password, "display_name": "New Reader",
            "csrf_token": csrf_token(client), **extra}  # fmt: skip
    return client.post("/signup", data=data)


def last_mail(db, to):
    db.rollback()
    db.expire_all()
    db.expire_all()
    return db.scalars(
        select(OutboundEmail)
        .where(OutboundEmail.to_address == to)
        .order_by(OutboundEmail.id.desc())
    ).first()


def link_in(message) -> str:
    match = re.search(r"http://patrons\.test(/verify\?token=[\w.\-]+)", message.text_body)
    assert match, message.text_body
    return match.group(1)


def test_signup_creates_an_unverified_member_and_mails_a_link(client, db):
    response = signup(client, email="New.Reader@Example.org")
    assert response.status_code == 303 and response.headers["Location"] == "/signup/sent"
    user = db.scalars(select(User)).one()
    assert user.email == "new.reader@example.org"
    assert user.password_hash.startswith("$argon2id$")
    assert user.email_verified_at is None and not user.is_staff
    message = last_mail(db, "new.reader@example.org")
    assert message.kind == "verify_email" and "/verify?token=" in message.text_body


def test_verification_link_get_changes_nothing_and_post_confirms(client, db):
    signup(client)
    path = link_in(last_mail(db, "new.reader@example.org"))
    page = client.get(path)
    assert page.status_code == 200 and "Confirm my email address" in page.get_data(as_text=True)
    db.rollback()
    db.expire_all()
    assert db.scalars(select(User)).one().email_verified_at is None
    token = path.split("token=")[1]
    response = client.post("/verify", data={"token": token, "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    db.rollback()
    db.expire_all()
    assert db.scalars(select(User)).one().email_verified_at is not None
    assert client.get("/account").status_code == 200  # signed in by the confirmation


def test_tampered_verification_token_is_refused(client, db):
    signup(client)
    token = link_in(last_mail(db, "new.reader@example.org")).split("token=")[1]
    bad = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = client.post("/verify", data={"token": bad, "csrf_token": csrf_token(client)})
    assert response.status_code == 400
    db.rollback()
    db.expire_all()
    assert db.scalars(select(User)).one().email_verified_at is None


def test_signup_with_a_known_email_answers_the_same_and_creates_nothing(client, db):
    make_user(db, email="known@example.org")
    known = signup(client, email="known@example.org")
    unknown = signup(client, email="unknown@example.org")
    assert (known.status_code, known.headers["Location"]) == (
        unknown.status_code,
        unknown.headers["Location"],
    )
    db.rollback()
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(User)) == 2
    assert last_mail(db, "known@example.org").kind == "account_exists"


def test_signup_refuses_bad_input_with_a_message(client, db):
    for data, message in [
        ({"email": "not-an-email"}, "does not look like an email"),
        ({"password": "short"}, "at least 10 characters"),
        ({"email": "same@example.org", "password": "same@example.org"}, "cannot be your email"),
    ]:
        response = signup(client, **data)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    db.rollback()
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(User)) == 0


def test_signup_honeypot_stores_nothing(client, db):
    response = signup(client, website="http://spam.example")
    assert response.status_code == 303
    assert db.scalar(select(func.count()).select_from(User)) == 0


def test_sign_out_ends_the_session_for_real(app, client, db):
    user = make_user(db)
    login(client, user.email, PASSWORD)
    stolen = client.get_cookie("session").value
    assert client.get("/account").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/account").status_code == 302  # the copied cookie no longer signs in


def test_password_change_signs_out_other_sessions(app, client, db):
    user = make_user(db)
    other_device = app.test_client()
    login(other_device, user.email, PASSWORD)
    login(client, user.email, PASSWORD)
    response = client.post("/account/password", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
        "csrf_token": csrf_token(client)})  # fmt: skip
    assert response.status_code == 302
    assert client.get("/account").status_code == 200
    assert other_device.get("/account").status_code == 302
    fresh = app.test_client()
    login(fresh, user.email, NEW_PASSWORD)


def test_password_change_with_a_wrong_current_password_changes_nothing(client, db):
    user = make_user(db)
    login(client, user.email, PASSWORD)
    response = client.post("/account/password", data={
        "current_password": "wrong password here", "new_password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD, "csrf_token": csrf_token(client)})  # fmt: skip
    assert response.status_code == 400
    assert "not your current password" in response.get_data(as_text=True)
    db.rollback()
    db.expire_all()
    assert db.get(User, user.id).password_hash == user.password_hash


def test_login_renews_the_session_and_records_it(client, db):
    user = make_user(db)
    client.get("/csrf-token")
    before = client.get_cookie("session").value
    login(client, user.email, PASSWORD)
    assert client.get_cookie("session").value != before
    assert db.scalar(select(func.count()).select_from(UserSession)) == 1


def test_remember_me_makes_a_lasting_cookie(client, db):
    user = make_user(db)
    response = client.post(
        "/login",
        data={
            "email": user.email,
            "password": PASSWORD,
            "remember": "y",
            "csrf_token": csrf_token(client),
        },
    )
    cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")][0]
    assert "Expires=" in cookie


def test_profile_update(client, db):
    user = make_user(db)
    login(client, user.email, PASSWORD)
    response = client.post(
        "/account/profile", data={"display_name": "  Olena   K. ", "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302
    db.rollback()
    db.expire_all()
    assert db.get(User, user.id).display_name == "Olena K."


def reset_link(db, to):
    message = last_mail(db, to)
    assert message.kind == "reset_password"
    match = re.search(r"http://patrons\.test/reset/new\?token=([\w.\-]+)", message.text_body)
    assert match, message.text_body
    return match.group(1)


def ask_reset(client, email):
    return client.post("/reset", data={"email": email, "csrf_token": csrf_token(client)})


def test_reset_answers_the_same_for_known_and_unknown_addresses(client, db):
    make_user(db, email="known@example.org")
    known = ask_reset(client, "known@example.org")
    unknown = ask_reset(client, "unknown@example.org")
    assert known.status_code == unknown.status_code == 200
    strip = lambda r: r.get_data(as_text=True).replace("unknown@", "X@").replace("known@", "X@")  # noqa: E731
    assert strip(known) == strip(unknown)
    # one mail each: the link for the account, a "there is no account here" note for the other
    assert last_mail(db, "known@example.org").kind == "reset_password"
    assert last_mail(db, "unknown@example.org").kind == "no_account"


def test_reset_link_sets_a_password_once_and_ends_old_sessions(app, client, db):
    user = make_user(db, email="forgetful@example.org")
    other_device = app.test_client()
    login(other_device, user.email, PASSWORD)
    ask_reset(client, user.email)
    token = reset_link(db, user.email)
    assert client.get(f"/reset/new?token={token}").status_code == 200
    data = {"token": token, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    response = client.post("/reset/new", data={**data, "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert other_device.get("/account").status_code == 302
    again = app.test_client()
    second = again.post("/reset/new", data={**data, "csrf_token": csrf_token(again)})
    assert second.status_code == 400 and "already been used" in second.get_data(as_text=True)
    login(app.test_client(), user.email, NEW_PASSWORD)


def test_reset_with_a_forged_token_is_refused(client, db):
    make_user(db, email="target@example.org")
    response = client.post("/reset/new", data={
        "token": "forged.token.value", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
        "csrf_token": csrf_token(client)})  # fmt: skip
    assert response.status_code == 400


def test_export_contains_what_is_stored_about_me_and_nobody_else(client, db):
    from tests.factories import make_patron

    patron = make_patron(db, email="patron@example.org", display_name="Pat")
    make_user(db, email="someone.else@example.org")
    login(client, patron.email, PASSWORD)
    response = client.get("/account/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert "no-store" in response.headers["Cache-Control"]
    data = response.get_json()
    assert data["account"]["email"] == "patron@example.org"
    assert data["account"]["display_name"] == "Pat"
    assert [p["amount"] for p in data["pledges"]] == [500]
    assert [p["status"] for p in data["payments"]] == ["paid"]
    assert len(data["sessions"]) == 1
    assert "someone.else" not in response.get_data(as_text=True)


def test_delete_account_needs_the_password_and_keeps_payments_without_identity(client, db):
    from patrons.models import Payment, Pledge
    from tests.factories import make_patron

    # a pledge that has ended: an open one is stopped at Stripe first (tests/pledges/
    # test_account_deletion.py), which this app without Stripe keys cannot do
    patron = make_patron(db, status="canceled", email="leaving@example.org")
    login(client, patron.email, PASSWORD)
    wrong = client.post(
        "/account/delete", data={"password": "not the password", "csrf_token": csrf_token(client)}
    )
    assert wrong.status_code == 400 and "not your password" in wrong.get_data(as_text=True)
    db.expire_all()
    assert db.get(User, patron.id) is not None
    response = client.post(
        "/account/delete", data={"password": PASSWORD, "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302
    db.rollback()
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(User)) == 0
    assert db.scalar(select(func.count()).select_from(UserSession)) == 0
    pledge = db.scalars(select(Pledge)).one()
    assert pledge.user_id is None and pledge.amount == 500
    assert db.scalar(select(func.count()).select_from(Payment)) == 1
    assert client.get("/account").status_code == 302


def test_staff_search_members_by_email_or_name(client, db):
    from tests.factories import make_staff

    make_user(db, email="olena@example.org", display_name="Olena Koval")
    make_user(db, email="taras@example.org", display_name="Taras")
    make_user(db, email="percent%sign@example.org")
    staff = make_staff(db)
    login(client, staff.email, PASSWORD)
    by_name = client.get("/staff/members?q=koval").get_data(as_text=True)
    assert "olena@example.org" in by_name and "taras@example.org" not in by_name
    by_email = client.get("/staff/members?q=TARAS@").get_data(as_text=True)
    assert "taras@example.org" in by_email and "olena@example.org" not in by_email
    wildcard = client.get("/staff/members?q=%25").get_data(as_text=True)
    assert "percent%sign@example.org" in wildcard and "olena@example.org" not in wildcard
    everyone = client.get("/staff/members").get_data(as_text=True)
    assert all(e in everyone for e in ("olena@", "taras@", "editor@"))


def change_email(client, new_email, password=PASSWORD):
    return client.post(
        "/account/email",
        data={"new_email": new_email, "password": password, "csrf_token": csrf_token(client)},
    )


def test_email_change_is_confirmed_at_the_new_address_and_the_old_one_is_told(client, db):
    user = make_user(db, email="old@example.org")
    login(client, user.email, PASSWORD)
    assert change_email(client, "New@Example.org").status_code == 302
    db.expire_all()
    assert db.get(User, user.id).email == "old@example.org"  # nothing changes yet
    assert last_mail(db, "old@example.org").kind == "email_change_requested"
    message = last_mail(db, "new@example.org")
    match = re.search(r"/account/email/confirm\?token=([\w.\-]+)", message.text_body)
    page = client.get(f"/account/email/confirm?token={match.group(1)}")
    assert page.status_code == 200
    db.expire_all()
    assert db.get(User, user.id).email == "old@example.org"  # a GET changes nothing
    response = client.post(
        "/account/email/confirm", data={"token": match.group(1), "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302
    db.expire_all()
    changed = db.get(User, user.id)
    assert changed.email == "new@example.org" and changed.email_verified_at is not None


def test_email_change_needs_the_password_and_never_takes_an_address_in_use(client, db):
    user = make_user(db, email="mine@example.org")
    make_user(db, email="taken@example.org")
    login(client, user.email, PASSWORD)
    wrong = change_email(client, "fresh@example.org", password="wrong password!")
    assert wrong.status_code == 400 and "not your password" in wrong.get_data(as_text=True)
    assert last_mail(db, "fresh@example.org") is None
    assert change_email(client, "taken@example.org").status_code == 302  # says nothing
    assert last_mail(db, "taken@example.org") is None


def test_export_includes_my_votes_and_proposals_only(client, db):
    from patrons.core import clock
    from patrons.models import Vote
    from tests.factories import make_patron, make_proposal, make_round

    patron = make_patron(db, email="voter@example.org")
    other = make_patron(db, email="other.voter@example.org")
    voting_round = make_round(db, topics=("River pollution", "The last ferry"))
    topics = {t.title: t for t in voting_round.topics}
    river, ferry = topics["River pollution"], topics["The last ferry"]
    db.add(Vote(user_id=patron.id, topic_id=river.id, round_id=voting_round.id,
                created_at=clock.now()))  # fmt: skip
    db.add(Vote(user_id=other.id, topic_id=ferry.id, round_id=voting_round.id,
                created_at=clock.now()))  # fmt: skip
    db.commit()
    make_proposal(db, patron, "Village libraries")
    make_proposal(db, other, "Somebody else's idea")
    login(client, patron.email, PASSWORD)
    data = client.get("/account/export").get_json()
    assert [v["topic"] for v in data["votes"]] == ["River pollution"]
    assert [(p["title"], p["status"]) for p in data["proposals"]] == [
        ("Village libraries", "proposed")
    ]


def test_the_session_lookup_checks_the_row_and_is_served_from_the_compiled_cache(
    app, db, monkeypatch
):
    """accounts/sessions.session_user (the user loader's one statement): only a live row's
    token signs in (not a revoked or an expired one), last_seen_at is refreshed only after
    TOUCH_EVERY; and its statement, built once, is compiled once for every token and time."""
    engine = app.extensions["db.engine"]
    hits: list[CacheStats] = []

    def on_statement(conn, cursor, statement, parameters, context, executemany):
        if "user_sessions" in statement:
            hits.append(context.cache_hit)

    reader, other = make_user(db), make_user(db)
    tokens = {name: sessions.start_session(db, user, remember=False)
              for name, user in (("live", reader), ("other", other), ("revoked", reader),
                                 ("expired", reader))}  # fmt: skip
    db.flush()
    now = clock.now()
    for name, change in (("revoked", {"revoked_at": now}),
                         ("expired", {"expires_at": now - timedelta(seconds=1)})):  # fmt: skip
        row = UserSession.token_hash == sessions._hash(tokens[name])
        db.execute(update(UserSession).where(row).values(**change))
    db.commit()
    monkeypatch.setattr(sessions, "select", None)  # nothing built per call
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        assert sessions.session_user(db, tokens["live"], now) is reader
        assert not db.dirty  # just seen: nothing to write
        assert sessions.session_user(db, tokens["other"], now + timedelta(minutes=1)) is other
        assert sessions.session_user(db, tokens["revoked"], now) is None
        assert sessions.session_user(db, tokens["expired"], now) is None
        assert sessions.session_user(db, "no such token", now) is None
        later = now + sessions.TOUCH_EVERY + timedelta(seconds=1)
        assert sessions.session_user(db, tokens["live"], later) is reader
        assert db.dirty  # last_seen_at refreshed, committed by load_user
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
    assert len(hits) == 6 and hits[1:] == [CacheStats.CACHE_HIT] * 5
