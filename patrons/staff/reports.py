"""Staff reports: the dashboard, its tables as CSV, the exchange rates, one member's history.
Staff-only by the blueprint's own check (patrons/staff/__init__.py)."""

from __future__ import annotations

from typing import Any, cast

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from patrons.accounts import audit
from patrons.accounts.second_factor import fresh_second_factor_required
from patrons.core import clock
from patrons.core.config import Settings
from patrons.core.csvexport import to_csv
from patrons.core.db import session as db
from patrons.models import User
from patrons.reports import members, rates, service
from patrons.reports.dates import RangeError, ReportRange, parse_range
from patrons.reports.forms import rates_form, rates_from
from patrons.reports.funnel import MIN_VIEWS

bp = Blueprint("reports", __name__)  # under /staff, behind its staff check (staff/__init__.py)
CSV_TABLES = "any(" + ", ".join(service.TABLES) + ")"


def _settings() -> Settings:
    return cast(Settings, current_app.config["SETTINGS"])


def _codes() -> list[str]:
    return [o.code for o in _settings().pledge_options]


def _range() -> ReportRange:
    try:
        return parse_range(request.args, clock.now().date())
    except RangeError as exc:
        abort(400, str(exc))


def _rates() -> rates.Rates:
    return rates.load(db, _codes()[0])


@bp.get("/reports")
def index() -> ResponseReturnValue:
    rng = _range()
    grace = _settings().pledge_grace_days
    dash = service.dashboard(db, rng, _rates(), clock.now(), grace, _codes())
    return render_template(
        "staff/reports.html", dash=dash, rng=rng, grace_days=grace, min_views=MIN_VIEWS
    )


@bp.get(f"/reports/<{CSV_TABLES}:table>.csv")
@fresh_second_factor_required  # an export of the members' money
def table_csv(table: str) -> ResponseReturnValue:
    rng = _range()
    found = service.full_table(db, table, rng, _rates(), clock.now(),
                               _settings().pledge_grace_days, _codes())  # fmt: skip
    audit.record(db, "staff.export", actor=current_user,
                 detail={"table": table, "first": rng.first, "last": rng.last})  # fmt: skip
    db.commit()
    return _csv_response(f"{table}-{rng.first}-{rng.last}", [found.headers, *found.rows])


def _csv_response(stem: str, rows: list[list[Any]]) -> ResponseReturnValue:
    response = current_app.response_class(to_csv(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
    return response


@bp.route("/reports/rates", methods=["GET", "POST"])
def exchange_rates() -> ResponseReturnValue:
    codes, current = _codes(), _rates()
    shown = {f"rate_{c}": str(r) for c in codes if (r := current.rate(c)) is not None}
    shown["reporting_currency"] = current.reporting
    # a post says every value itself: a field left out is an error, not the stored value
    form = rates_form(codes, data=shown if request.method == "GET" else None)
    if form.validate_on_submit():
        rates.save(db, form.reporting_currency.data, rates_from(form, codes), clock.now())
        db.commit()
        flash(_("Exchange rates saved."), "success")
        return redirect(url_for("staff.reports.exchange_rates"), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/reports_rates.html", form=form, codes=codes,
                           rates=current), status  # fmt: skip


@bp.get("/members/<int:user_id>")
@fresh_second_factor_required  # one person's data: payments, votes, mail
def member(user_id: int) -> ResponseReturnValue:
    user = db.get(User, user_id) or abort(404)
    audit.record(db, "staff.member", actor=current_user, user=user)
    db.commit()
    return render_template("staff/member.html", member=user,
                           history=members.history(db, user))  # fmt: skip
