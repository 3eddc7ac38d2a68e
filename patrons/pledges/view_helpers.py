"""The pledge pages' blueprint (`pledges.*`) and what its views share: the signed-in reader,
the settings, the card steps' JSON answers (static/js/pledge.js reads them), and the answer to
a refusal, with `Retry-After` when Stripe did not answer. The routes are in start_views.py
(the support page and the card steps) and managing_views.py (the pledge page and its forms).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, abort, current_app, flash, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from patrons import mail
from patrons.core.config import Settings
from patrons.core.db import session as db
from patrons.models import User
from patrons.pledges import templating
from patrons.pledges.billing import gateway
from patrons.pledges.errors import PROCESSING, PledgeError
from patrons.pledges.finishing import Outcome
from patrons.pledges.gateway import Gateway

bp = Blueprint("pledges", __name__)

_View = TypeVar("_View", bound=Callable[..., ResponseReturnValue])


def reader() -> User:
    """The signed-in reader (Flask-Login's proxy is untyped)."""
    return cast(User, current_user)


def settings() -> Settings:
    return cast(Settings, current_app.config["SETTINGS"])


def gateway_or_404() -> Gateway:
    gw = gateway()
    if gw is None:
        abort(404)
    return gw


def retry_headers(exc: PledgeError) -> dict[str, str]:
    """`Retry-After` when the refusal says when to try again (Stripe did not answer)."""
    return {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}


def json_step(view: _View) -> _View:
    """A card step: a PledgeError is rolled back and answered as JSON with its message and
    its status, for static/js/pledge.js to show (202 "processing": ask again shortly)."""

    @wraps(view)
    def step(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        try:
            return view(*args, **kwargs)
        except PledgeError as exc:
            db.rollback()
            if exc.status == PROCESSING:
                return jsonify(ok=True, status="processing", message=exc.message), PROCESSING
            return jsonify(ok=False, message=exc.message), exc.status, retry_headers(exc)

    return cast(_View, step)


def payload() -> dict[str, Any]:
    try:
        data = request.get_json(silent=True)  # `silent` covers ValueError, not this:
    except RecursionError:  # JSON nested deeper than Python's recursion limit
        return {}  # answered like any body without the fields: a clear 4xx
    if isinstance(data, dict):
        return data
    return request.form.to_dict()


def answer(outcome: Outcome) -> ResponseReturnValue:
    """What a card step answers once the server's part is done."""
    if outcome.status in ("requires_action", "needs_card"):
        return jsonify(ok=True, status=outcome.status, client_secret=outcome.client_secret)
    if outcome.status == "processing":
        return jsonify(ok=True, status="processing"), PROCESSING
    db.commit()
    mail.send_soon()
    flash(_("Thank you: you are now a patron."), "success")
    response = jsonify(ok=True, status=outcome.status, redirect=url_for("pledges.pledge"))
    templating.forget_choice(response)
    return response
