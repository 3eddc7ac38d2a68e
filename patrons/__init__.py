"""Patrons: membership and patronage for an independent, reader-funded newsroom."""

from __future__ import annotations

from flask import Flask

from patrons.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(
        __name__,
        template_folder="../templates",
        instance_path=str(settings.instance_path),
    )
    from patrons import web

    web.configure(app, settings)
    web.register_extensions(app, settings)
    web.register_blueprints(app)
    web.register_error_pages(app)
    web.register_security_headers(app)
    web.register_template_helpers(app)
    web.register_article_fast_path(app)

    from patrons import cli

    cli.register(app)
    return app
