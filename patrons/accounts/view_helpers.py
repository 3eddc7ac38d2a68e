"""What the accounts pages share: the blueprint, the settings, the rate-limit keys."""

from __future__ import annotations

from typing import cast

from flask import Blueprint, Response, current_app, request, url_for

from patrons.accounts import auth
from patrons.core.config import Settings

bp = Blueprint("accounts", __name__)


def form_email() -> str:
    """Rate-limit key per account: the address typed into the form."""
    return "email:" + auth.normalise_email(request.form.get("email", ""))[:254]


def failed(response: Response) -> bool:
    return response.status_code != 302


def settings() -> Settings:
    return cast(Settings, current_app.config["SETTINGS"])


def secret() -> str:
    """The key the signed links are made and read with (tokens.py)."""
    return settings().secret_key


def absolute(endpoint: str) -> str:
    """An absolute link for mail: always from SITE_URL, never from the request's Host."""
    return settings().site_url + url_for(endpoint)
