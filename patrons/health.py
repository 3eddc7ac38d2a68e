"""`/healthz`: 200 when the database answers, 503 when it does not."""

import logging

from flask import Blueprint, Flask
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from patrons.core.db import session

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    headers = {"Cache-Control": "no-store"}
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:  # any database failure means "not healthy", never a 500
        log.warning("health check failed: %s", exc.__class__.__name__)
        return {"status": "unavailable", "database": "down"}, 503, headers
    return {"status": "ok", "database": "up"}, 200, headers


def register(app: Flask) -> None:
    app.register_blueprint(bp)
