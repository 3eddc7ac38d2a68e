"""Staff pages. Every route of this blueprint is staff-only: the check sits on the blueprint."""

from flask import Blueprint, abort
from flask_login import current_user

from patrons.extensions import login_manager

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.before_request
def require_staff():  # type: ignore[no-untyped-def]
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_staff:
        abort(403)
    return None


@bp.after_request
def never_cache(response):  # type: ignore[no-untyped-def]
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response


from patrons.staff import views  # noqa: E402,F401  (routes register on bp)
