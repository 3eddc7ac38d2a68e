"""Staff pages for voting: rounds, their topics and results, the proposals queue, outcomes.

A child of the staff blueprint, whose before_request admits staff only
(patrons/staff/__init__.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy.exc import IntegrityError
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # types-wtforms 3.2 predates SelectChoice (wtforms 3.3)

from patrons import mail, site
from patrons.core import clock
from patrons.core.csvexport import to_csv
from patrons.core.db import session as db
from patrons.models import Round, Topic
from patrons.voting import service
from patrons.voting.forms import (
    ApproveForm,
    DeclineForm,
    LinkArticleForm,
    MergeForm,
    RoundForm,
    StatusForm,
    TopicForm,
    VoteForm,
)

bp = Blueprint("voting", __name__)  # under /staff, behind its staff check (staff/__init__.py)


def _grace() -> int:
    grace: int = current_app.config["SETTINGS"].pledge_grace_days
    return grace


def _round(round_id: int) -> Round:
    return db.get(Round, round_id) or abort(404)


@bp.get("/voting")
def index() -> ResponseReturnValue:
    return render_template(
        "staff/voting.html",
        rounds=service.all_rounds(db),
        waiting=len(service.proposals(db)),
        now=clock.now(),
    )


def _utc(value: datetime | None) -> datetime:
    assert value is not None  # InputRequired
    return value.replace(tzinfo=UTC)


def _draft(form: RoundForm) -> service.RoundDraft:
    return service.RoundDraft(
        title=form.title.data or "",
        introduction=form.introduction.data or "",
        opens_at=_utc(form.opens_at.data),
        closes_at=_utc(form.closes_at.data),
        votes_per_patron=form.votes_per_patron.data or 0,
        live_counts=bool(form.live_counts.data),
    )


@bp.route("/voting/rounds/new", methods=["GET", "POST"])
def new_round() -> ResponseReturnValue:
    return _edit_round(None)


@bp.route("/voting/rounds/<int:round_id>", methods=["GET", "POST"])
def round_page(round_id: int) -> ResponseReturnValue:
    return _edit_round(_round(round_id))


def _edit_round(found: Round | None) -> ResponseReturnValue:
    form = RoundForm(obj=_naive(found) if found else None)
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            saved = service.save_round(db, _draft(form), clock.now(), found)
        except service.VotingError as exc:
            db.rollback()
            form.closes_at.errors = [*form.closes_at.errors, exc.message]
            status = exc.status
        else:
            db.commit()
            flash(_("Saved the round “%(title)s”.", title=saved.title), "success")
            return redirect(url_for("staff.voting.round_page", round_id=saved.id), code=303)
    return _round_page(found, form=form), status


def _naive(found: Round) -> Any:
    """The round as the form's datetime-local fields show it: UTC, without the zone."""

    class View:
        title, introduction = found.title, found.introduction
        opens_at = found.opens_at.astimezone(UTC).replace(tzinfo=None)
        closes_at = found.closes_at.astimezone(UTC).replace(tzinfo=None)
        votes_per_patron, live_counts = found.votes_per_patron, found.live_counts

    return View


def _round_page(found: Round | None, **forms: Any) -> str:
    now = clock.now()
    counts = service.results(db, found, now, _grace()) if found else {}
    if request.method == "GET":
        db.commit()  # the first read after a close freezes the results; a refused POST: nothing
    return render_template(
        "staff/voting_round.html",
        round=found,
        now=now,
        counts=counts,
        topics=[t for t in (found.topics if found else []) if t.status in service.LISTED],
        turnout=service.turnout(db, found, now, _grace()) if found else None,
        form=forms.get("form") or RoundForm(formdata=None),
        topic_form=forms.get("topic_form") or TopicForm(formdata=None),
        status_form=StatusForm(formdata=None),
        link_form=LinkArticleForm(formdata=None),
        action_form=VoteForm(),
        next_statuses=service.NEXT_STATUSES,
    )


@bp.post("/voting/rounds/<int:round_id>/topics")
def add_topic(round_id: int) -> ResponseReturnValue:
    found = _round(round_id)
    form = TopicForm()
    if form.validate_on_submit():
        try:
            topic = service.add_topic(
                db, found, form.title.data or "", form.description.data or "", clock.now()
            )
        except service.VotingError as exc:
            db.rollback()
            form.title.errors = [*form.title.errors, exc.message]
        else:
            db.commit()
            flash(_("Added “%(title)s”.", title=topic.title), "success")
            return redirect(url_for("staff.voting.round_page", round_id=found.id), code=303)
    return _round_page(found, topic_form=form), 400


@bp.post("/voting/rounds/<int:round_id>/close")
def close_round(round_id: int) -> ResponseReturnValue:
    found = _round(round_id)
    if not VoteForm().validate_on_submit():
        abort(400)
    return _done(lambda: service.close_round(db, found, clock.now()),
                 _("The round is closed; its results are frozen."),
                 url_for("staff.voting.round_page", round_id=found.id))  # fmt: skip


@bp.get("/voting/rounds/<int:round_id>/results.csv")
def round_csv(round_id: int) -> ResponseReturnValue:
    found = _round(round_id)
    body = to_csv(service.results_table(db, found, clock.now(), _grace()))
    db.commit()
    filename = f"round-{found.id}-results.csv"
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip


def _done(action: Any, message: str, back: str) -> ResponseReturnValue:
    """Run a service, commit, flash and go back; a refusal is a 4xx page with its reason."""
    try:
        action()
        db.commit()
    except service.VotingError as exc:
        db.rollback()
        if exc.status == 404:
            abort(404)
        flash(exc.message, "error")
        return _error_back(exc, back)
    except IntegrityError:  # a vote that raced a merge: nothing was written
        db.rollback()
        flash(_("Something changed at the same moment. Please try again."), "error")
        return _error_back(service.VotingError("", 409), back)
    flash(message, "success")
    mail.send_soon(db)
    return redirect(back, code=303)


def _error_back(exc: service.VotingError, back: str) -> ResponseReturnValue:
    return render_template("staff/voting_refused.html", back=back), exc.status


# -- the proposals queue ---------------------------------------------------------------------


def _open_round_choices() -> list[SelectChoice]:
    now = clock.now()
    return [SelectChoice(r.id, r.title) for r in service.all_rounds(db) if not r.is_closed(now)]


@bp.get("/voting/proposals")
def proposals() -> ResponseReturnValue:
    approve = ApproveForm(formdata=None)
    approve.round_id.choices = _open_round_choices()
    return render_template(
        "staff/voting_proposals.html",
        proposals=service.proposals(db),
        approve_form=approve,
        merge_form=MergeForm(formdata=None),
        decline_form=DeclineForm(formdata=None),
    )


@bp.post("/voting/topics/<int:topic_id>/<any(approve, merge, decline):action>")
def moderate_topic(topic_id: int, action: str) -> ResponseReturnValue:
    topic = db.get(Topic, topic_id) or abort(404)
    back = request.form.get("back") == "round" and topic.round_id
    target = (
        url_for("staff.voting.round_page", round_id=topic.round_id)
        if back
        else url_for("staff.voting.proposals")
    )
    now = clock.now()
    if action == "approve":
        form: Any = ApproveForm()
        form.round_id.choices = _open_round_choices()

        def run() -> object:
            return service.approve_topic(db, topic.id, form.round_id.data, now)

        message = _("“%(title)s” is in the round.", title=topic.title)
    elif action == "merge":
        form = MergeForm()

        def run() -> object:
            return service.merge_topic(db, topic.id, form.into_topic_id.data, now)

        message = _("“%(title)s” is merged; its votes moved.", title=topic.title)
    else:
        form = DeclineForm()

        def run() -> object:
            return service.decline_topic(db, topic.id, form.reason.data or "")

        message = _("“%(title)s” is declined; the reason is public.", title=topic.title)
    if not form.validate_on_submit():
        flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
        return render_template("staff/voting_refused.html", back=target), 400
    return _done(run, message, target)


# -- outcomes --------------------------------------------------------------------------------


def _topic_on_its_round(topic_id: int) -> tuple[Topic, str]:
    """The topic (404 if none), and the address of its place on its round's page."""
    topic = db.get(Topic, topic_id) or abort(404)
    back = url_for(
        "staff.voting.round_page", round_id=topic.round_id or 0, _anchor=f"topic-{topic.id}"
    )
    return topic, back


@bp.post("/voting/topics/<int:topic_id>/status")
def topic_status(topic_id: int) -> ResponseReturnValue:
    topic, back = _topic_on_its_round(topic_id)
    form = StatusForm()
    if not form.validate_on_submit():
        return render_template("staff/voting_refused.html", back=back), 400
    told: list[int] = []

    def run() -> None:
        site_url = current_app.config["SETTINGS"].site_url  # the mail's links start here
        told.append(service.set_topic_status(db, topic.id, form.status.data or "", clock.now(),
                                             site_url=site_url))  # fmt: skip

    response = _done(run, _("The topic's status is changed."), back)
    if told and told[0]:
        flash(ngettext("%(num)d voter is told by email.", "%(num)d voters are told by email.",
                       told[0]), "success")  # fmt: skip
    site.forget_cached()  # article pages say which stories patrons chose
    return response


@bp.post("/voting/topics/<int:topic_id>/articles")
def link_article(topic_id: int) -> ResponseReturnValue:
    topic, back = _topic_on_its_round(topic_id)
    form = LinkArticleForm()
    if not form.validate_on_submit():
        return render_template("staff/voting_refused.html", back=back), 400
    response = _done(lambda: service.link_article(db, topic.id, form.article.data or ""),
                     _("The article is linked."), back)  # fmt: skip
    site.forget_cached()
    return response
