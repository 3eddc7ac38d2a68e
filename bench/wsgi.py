"""WSGI factories for the benchmark servers (gunicorn 'bench.wsgi:article_app()').

`article_app` is the real application, configured from the environment exactly as
`wsgi.py` is in production. `bare_app` is the baseline: a Flask app with one route that
returns a small fixed HTML page, nothing else (no extensions, hooks or database).
Both are factories so that importing this module builds nothing.
"""

from __future__ import annotations

from flask import Flask

BARE_PATH = "/bare"
BARE_BODY = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Bare</title>"
    "<p>The baseline page: a fixed body from a bare Flask route.</p></html>"
)


def article_app() -> Flask:
    from patrons import create_app

    return create_app()


def bare_app() -> Flask:
    app = Flask("bench_bare")

    @app.get(BARE_PATH)
    def bare() -> str:
        return BARE_BODY

    return app
