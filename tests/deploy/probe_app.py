"""The app as Gunicorn serves it in production, plus one route for the proxy tests: what the
app believes about the request (after PROXY_HOPS' ProxyFix), the reader's address and scheme."""

from __future__ import annotations

from flask import Flask, request

from patrons import create_app


def create() -> Flask:
    app = create_app()

    @app.get("/_probe")
    def probe() -> dict[str, str | None]:
        return {"remote_addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    return app
