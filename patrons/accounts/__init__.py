"""Reader accounts: sign-up, sign-in, the address check, password resets, the account page
and its deletion (views.py the pages, service.py the rules, auth.py Flask-Login's side)."""

from __future__ import annotations

from flask import Flask


def init_login(app: Flask) -> None:
    """Flask-Login: who `current_user` is, for every feature's pages."""
    from patrons.accounts import auth

    auth.init_login(app)


def register(app: Flask) -> None:
    """/signup, /login, /account…; `flask create-staff`."""
    from patrons.accounts import (  # noqa: F401  (each adds its routes to bp)
        account_views,
        cli,
        devices,
        link_views,
        login_views,
        signup_views,
        throttle,
        views,
    )
    from patrons.accounts.view_helpers import bp

    app.register_blueprint(bp)
    devices.init_app(app)
    throttle.init_app(app)
    app.cli.add_command(cli.create_staff)
