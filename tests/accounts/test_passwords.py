"""Passwords worth having, and inputs normalised or refused with an exact message
(docs/security.md): zxcvbn's judgement in every form that sets a password and in
`create-staff`, 12 characters for staff, one account per address however it is spelled,
"Use at most N characters." for every over-long field, and the bounded hashing pool."""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from patrons.accounts import email_tokens, passwords
from patrons.accounts.passwords import password_problem
from patrons.demo import DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD
from patrons.models import User
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_staff, make_user
from tests.test_cli import run, user_by_email

GOOD = "tin owl plum harbour"  # four unrelated words: zxcvbn's score 4
ELEVEN = "quiet otter"  # strong enough, 11 characters: a reader's, not staff's
COMMON = "It is one of the most common passwords."


def signup(client, email="new.reader@example.org", password=GOOD, **extra):  # type: ignore[no-untyped-def]
    data = {"email": email, "password": password, "csrf_token": csrf_token(client), **extra}
    return client.post("/signup", data=data)


def users(db) -> int:  # type: ignore[no-untyped-def]
    db.rollback()
    return db.scalar(select(func.count()).select_from(User)) or 0


# --- what password_problem refuses --------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("password1", "Use at least 10 characters."),
        ("password123", "too close to a commonly used password"),
        ("qwertyuiop", COMMON),
        ("asdfghjkl;", "Rows of keys"),
        ("1234567890", COMMON),
        ("abcdefghijklmnop", "Sequences like abc"),
        ("passwordpassword" * 4, "Repeated letters or words"),
        ("new.reader@example.org", "cannot be your email address"),
        ("NEW.READER@EXAMPLE.ORG ", "cannot be your email address"),
        ("newreader example", "your email address, your name or our name"),
        ("new.reader@example", "your email address, your name or our name"),
        ("readernew12", "your email address, your name or our name"),
        ("Olena Kovalenko", "your email address, your name or our name"),
        ("ｑｗｅｒｔｙｕｉｏｐ", COMMON),  # full-width letters are judged as what they spell
    ],
)
def test_common_and_guessable_passwords_are_refused_with_a_reason(password, reason):
    problem = password_problem(password, email="new.reader@example.org", name="Olena Kovalenko")
    assert problem is not None and reason in problem, problem
    if "Use at least" not in problem and "email address." not in problem:
        assert "several unrelated words" in problem  # what to do instead


@pytest.mark.parametrize("password", [GOOD, PASSWORD, "correct horse battery staple 1"])
def test_a_good_passphrase_is_accepted(password):
    assert password_problem(password, email="new.reader@example.org", name="New Reader") is None
    assert password_problem(password, email="editor@example.org", staff=True) is None


def test_staff_need_twelve_characters_readers_ten():
    assert password_problem(ELEVEN, email="ed@example.org") is None
    assert password_problem(ELEVEN, email="ed@example.org", staff=True) == (
        "Use at least 12 characters."
    )
    assert password_problem("otter maps", email="ed@example.org") is None  # ten
    assert password_problem("otter map", email="ed@example.org") == "Use at least 10 characters."


def test_the_site_name_is_a_word_an_attacker_tries_first(app):
    with app.app_context():
        problem = password_problem("the steppe courier", email="ed@example.org")
    assert problem is not None and "our name" in problem


def test_only_the_start_of_a_long_password_is_judged(monkeypatch):
    """zxcvbn's cost grows steeply with length: it sees the first 64 characters only."""
    seen: list[str] = []
    real = passwords._judge

    def judge(password, inputs):  # type: ignore[no-untyped-def]
        seen.append(password)
        return real(password, inputs)

    monkeypatch.setattr(passwords, "_judge", judge)
    assert password_problem(GOOD * 50, email="ed@example.org") is None
    assert [len(p) for p in seen] == [passwords.JUDGED_LENGTH]
    assert password_problem("password" * 100, email="ed@example.org") is not None  # weak start


def test_demo_and_test_passwords_pass_the_rules():
    assert password_problem(DEMO_STAFF_PASSWORD, email=DEMO_STAFF_EMAIL, staff=True) is None
    assert password_problem(PASSWORD, email="reader1@example.org", staff=True) is None


# --- every form that sets a password ----------------------------------------------------------


def test_signup_refuses_a_common_password_and_creates_nothing(client, db):
    response = signup(client, password="qwertyuiop")
    assert response.status_code == 400
    assert COMMON in response.get_data(as_text=True)
    assert users(db) == 0
    assert signup(client, password=GOOD).status_code in (302, 303)
    assert users(db) == 1


def test_signup_refuses_the_address_itself(client, db):
    response = signup(client, email="Olena@Example.org", password="olena@example.org")
    assert "cannot be your email address" in response.get_data(as_text=True)
    assert users(db) == 0


def change_password(client, new, current=PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/account/password", data={
        "current_password": current, "new_password": new, "confirm": new,
        "csrf_token": csrf_token(client),
    })  # fmt: skip


def test_password_change_refuses_guessable_passwords_and_staff_need_twelve(app, db):
    reader, staff = make_user(db, email="reader@example.org"), make_staff(db)
    reader_client, staff_client = app.test_client(), app.test_client()
    login(reader_client, reader.email, PASSWORD)
    login(staff_client, staff.email, PASSWORD)

    weak = change_password(reader_client, "password123")
    assert weak.status_code == 400 and "commonly used password" in weak.get_data(as_text=True)
    own_address = change_password(reader_client, "reader@example.org")
    assert "cannot be your email address" in own_address.get_data(as_text=True)
    short = change_password(staff_client, ELEVEN)
    assert short.status_code == 400
    assert "Use at least 12 characters." in short.get_data(as_text=True)
    db.expire_all()
    assert db.get(User, staff.id).password_hash == staff.password_hash  # unchanged

    assert change_password(reader_client, ELEVEN).status_code == 302  # a reader's is enough
    assert change_password(staff_client, GOOD).status_code == 302


def test_reset_refuses_guessable_passwords_and_staff_need_twelve(app, client, db):
    staff = make_staff(db)
    issued = email_tokens.issue(db, staff, email_tokens.RESET)
    db.commit()
    url = "/reset/new?token=" + issued.token

    def reset(new: str):  # type: ignore[no-untyped-def]
        data = {"token": issued.token, "new_password": new, "confirm": new,
                "csrf_token": csrf_token(client)}  # fmt: skip
        return client.post(url, data=data)

    assert "12 characters" in client.get(url).get_data(as_text=True)  # the staff hint
    short = reset(ELEVEN)
    assert short.status_code == 400 and "Use at least 12 characters." in short.get_data(True)
    common = reset("qwertyuiop12")
    assert common.status_code == 400 and COMMON in common.get_data(as_text=True)
    assert reset(GOOD).status_code == 302


def test_create_staff_refuses_a_guessable_password(app, db):
    result = run(app, "create-staff", "editor@example.org", "--password", "password1234")
    assert result.exit_code == 2
    assert "commonly used password" in result.output
    assert user_by_email(db, "editor@example.org") is None
    generated = run(app, "create-staff", "editor@example.org")  # no terminal: one is made
    assert generated.exit_code == 0, generated.output


# --- one account per address, however it is spelled --------------------------------------------


def test_nfc_and_nfd_spellings_of_an_address_are_one_account(app, client, db):
    nfc = unicodedata.normalize("NFC", "José.Núñez@example.org")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    first = signup(client, email=nfc)
    again = signup(app.test_client(), email=nfd, password="another fine passphrase")
    assert first.status_code == again.status_code
    assert users(db) == 1
    stored = db.scalar(select(User.email))
    assert stored == unicodedata.normalize("NFC", "josé.núñez@example.org")
    login(app.test_client(), nfd.upper(), GOOD)  # any spelling signs in


def test_full_width_and_capital_spellings_find_the_account(app, db):
    make_user(db, email="reader@example.org")
    login(app.test_client(), "ＲＥＡＤＥＲ@example.org", PASSWORD)


# --- over-long fields: an exact message ---------------------------------------------------------


def test_a_password_over_1024_characters_says_so(client, db):
    long = "tin owl plum " * 79  # 1,027 characters of a good passphrase
    response = signup(client, password=long)
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Use at most 1,024 characters." in body
    assert "at least" not in body  # not the minimum's message
    assert users(db) == 0

    make_user(db, email="reader@example.org")
    login_response = client.post("/login", data={
        "email": "reader@example.org", "password": long, "csrf_token": csrf_token(client),
    })  # fmt: skip
    assert login_response.status_code == 400
    assert "Use at most 1,024 characters." in login_response.get_data(as_text=True)


def test_every_over_long_field_of_the_accounts_forms_has_an_exact_message(client, db):
    email = "a" * 250 + "@example.org"
    body = signup(client, email=email, display_name="N" * 81).get_data(as_text=True)
    assert "Use at most 254 characters." in body
    assert "does not look like an email address" not in body  # one message per field
    assert "Use at most 80 characters." in body
    # an address that grows past the column once normalised ("ß" folds to "ss")
    grows = "ß" * 125 + "@example.org"
    assert len(grows) <= 254
    assert "Use at most 254 characters." in signup(client, email=grows).get_data(as_text=True)
    assert users(db) == 0


# --- the bounded hashing pool -------------------------------------------------------------------


def test_no_more_hashes_run_at_once_than_the_pool_allows(app, monkeypatch):
    """Twelve threads verify at once with PASSWORD_HASH_CONCURRENCY=2: a stand-in hasher
    counts how many are inside at a time, holding each until the test lets it go."""
    size, threads = 2, 12
    app.config["SETTINGS"] = replace(app.config["SETTINGS"], password_hash_concurrency=size)
    state = {"inside": 0, "most": 0, "arrived": 0, "done": 0}
    changed = threading.Condition()
    release = threading.Semaphore(0)

    class CountingHasher:
        def verify(self, stored: str, password: str) -> bool:
            with changed:
                state["inside"] += 1
                state["most"] = max(state["most"], state["inside"])
                changed.notify_all()
            assert release.acquire(timeout=30)
            with changed:
                state["inside"] -= 1
                state["done"] += 1
                changed.notify_all()
            return True

    monkeypatch.setattr(passwords, "_hasher_for", lambda *cost: CountingHasher())

    def sign_in() -> None:
        with app.app_context():
            with changed:
                state["arrived"] += 1
                changed.notify_all()
            passwords.verify_password("$argon2id$stored", "a password")

    workers = [threading.Thread(target=sign_in) for _ in range(threads)]
    for worker in workers:
        worker.start()
    with changed:  # all twelve asked; two are hashing, the rest wait for a slot
        assert changed.wait_for(lambda: state["arrived"] == threads and state["inside"] == size, 30)
    with app.app_context():
        assert not passwords.hash_slots().acquire(blocking=False)  # the pool is full
    for n in range(threads):
        release.release()  # one hash ends: one waiting thread may start
        with changed:
            assert changed.wait_for(lambda n=n: state["done"] == n + 1, 30)
            assert state["inside"] <= size
    for worker in workers:
        worker.join(30)
    assert state == {"inside": 0, "most": size, "arrived": threads, "done": threads}
