"""`/topics`: the open round, backing and withdrawing, proposals, and past rounds.

Everyone sees the topics; active patrons back them. A refused vote is a 4xx page with the
reason, never a 500; a second identical vote is the same vote (303, nothing added).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from flask import (
    Blueprint,
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
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from flask_login import current_user

from patrons.core import clock
from patrons.core.config import Settings
from patrons.core.db import session as db
from patrons.core.extensions import limiter, login_required
from patrons.voting import pages, service
from patrons.voting.forms import ProposalForm, VoteForm

bp = Blueprint("voting", __name__)

STATUS_LABELS = {
    "proposed": _l("proposed, waiting for the newsroom"),
    "in_round": _l("in a round"),
    "chosen": _l("chosen"),
    "in_reporting": _l("in reporting"),
    "covered": _l("covered"),
    "declined": _l("declined"),
    "merged": _l("merged with another topic"),
}


def _grace() -> int:
    return cast(Settings, current_app.config["SETTINGS"]).pledge_grace_days


def _user_key() -> str:
    """Rate limits count per reader (Flask-Limiter checks before login_required does: an
    anonymous request counts per address)."""
    if current_user.is_authenticated:
        return f"user:{current_user.get_id()}"
    return get_remote_address()


@bp.app_context_processor
def voting_helpers() -> dict[str, Any]:
    return {"topic_status": _status_label}


def _status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


def _topics_page(proposal_form: ProposalForm | None = None) -> str:
    reader = current_user.id if current_user.is_authenticated else None
    page = pages.topics_page(db, reader, clock.now(), _grace())
    return render_template(
        "voting/topics.html",
        rounds=page.rounds,
        counts=page.counts,
        listed=service.listed_topics,
        mine=page.mine,
        is_patron=page.is_patron,
        form=VoteForm(),
        proposal_form=proposal_form or ProposalForm(formdata=None),
        own_proposals=page.own_proposals,
        declined=page.declined,
        upcoming=page.upcoming,
    )


@bp.get("/topics")
def topics() -> ResponseReturnValue:
    return _topics_page()


def _change_vote(
    topic_id: int, change: Callable[[], bool], done: str, unchanged: str
) -> ResponseReturnValue:
    """Back or withdraw: the CSRF token is the only field; the voter is the signed-in reader.
    A refusal is a 4xx page with its reason; a repeat changes nothing and says so."""
    if not VoteForm().validate_on_submit():
        abort(400)
    try:
        changed = change()
    except service.VotingError as exc:
        db.rollback()
        if exc.status == 404:
            abort(404)
        flash(exc.message, "error")
        return _topics_page(), exc.status
    db.commit()
    flash(done if changed else unchanged, "success")
    return redirect(url_for("voting.topics", _anchor=f"topic-{topic_id}"), code=303)


@bp.post("/topics/<int:topic_id>/vote")
@login_required
@limiter.limit("60 per minute", key_func=_user_key)
def vote(topic_id: int) -> ResponseReturnValue:
    def change() -> bool:
        return service.cast_vote(db, current_user.id, topic_id, clock.now(), _grace())

    return _change_vote(topic_id, change, _("You back this topic."),
                        _("You already back this topic."))  # fmt: skip


@bp.post("/topics/<int:topic_id>/withdraw")
@login_required
@limiter.limit("60 per minute", key_func=_user_key)
def withdraw(topic_id: int) -> ResponseReturnValue:
    def change() -> bool:
        return service.withdraw_vote(db, current_user.id, topic_id, clock.now())

    return _change_vote(topic_id, change, _("Your vote is withdrawn."),
                        _("You did not back this topic."))  # fmt: skip


@bp.post("/topics/propose")
@login_required
@limiter.limit("5 per hour;20 per day", key_func=_user_key)
def propose() -> ResponseReturnValue:
    form = ProposalForm()
    if not form.validate_on_submit():
        return _topics_page(form), 400
    try:
        service.propose_topic(db, current_user.id, form.title.data or "",
                              form.description.data or "", clock.now(), _grace())  # fmt: skip
    except service.VotingError as exc:
        db.rollback()
        form.title.errors = [*form.title.errors, exc.message]
        return _topics_page(form), exc.status
    db.commit()
    flash(_("Thank you. The newsroom will read your proposal before it can go to a round."),
          "success")  # fmt: skip
    return redirect(url_for("voting.topics", _anchor="your-proposals"), code=303)


@bp.get("/topics/rounds")
def past_rounds() -> ResponseReturnValue:
    page = pages.past_rounds(db, clock.now(), _grace())
    db.commit()  # a GET that writes: the first read after a close freezes the results
    return render_template("voting/past_rounds.html", rounds=page.rounds, results=page.results,
                           outcomes=service.OUTCOMES)  # fmt: skip


@bp.get("/topics/rounds/<int:round_id>")
def round_page(round_id: int) -> ResponseReturnValue:
    now = clock.now()
    found = service.started_round(db, round_id, now) or abort(404)
    if found.is_open(now):
        return redirect(url_for("voting.topics", _anchor=f"round-{found.id}"))
    page = pages.round_results(db, found, now, _grace())
    db.commit()  # a GET that writes: the first read after a close freezes the results
    return render_template("voting/round.html", round=found, counts=page.counts,
                           topics=page.topics, request_path=request.path)  # fmt: skip
