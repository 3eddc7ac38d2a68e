"""Patrons: membership and patronage for an independent, reader-funded newsroom.

`create_app` is the one place the parts are wired together, top to bottom in the order of
docs/architecture.md: nothing registers itself by being imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from patrons.core.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    # Everything is imported here, not at the top: `python -m patrons` imports this package in
    # Gunicorn's master, and what the master has loaded its workers inherit, so a reload (HUP)
    # would not pick up a new version of it.
    from flask import Flask

    from patrons import (
        accounts,
        articles,
        cli,
        health,
        metrics,
        pledges,
        reports,
        staff,
        voting,
        web,
        worker,
    )
    from patrons.core import logs, resources
    from patrons.core.config import Settings

    settings = settings or Settings.from_env()
    app = Flask(
        __name__,
        template_folder=str(resources.templates_dir()),  # the checkout's, or the packaged copy
        instance_path=str(settings.instance_path),
    )
    web.configure(app, settings)
    web.register_extensions(app, settings)
    accounts.init_login(app)
    for feature in (articles, accounts, pledges, voting, reports, staff, health):
        feature.register(app)
    web.register_error_pages(app)
    web.register_security_headers(app)
    web.register_template_helpers(app)
    web.register_article_fast_path(app)
    metrics.register(app)  # GET /metrics, and the counts of what the access log sees
    logs.install_access_log(app)  # outermost: request ids and one access line per request
    cli.register(app)
    worker.register(app)  # `flask worker`: everything scheduled
    return app
