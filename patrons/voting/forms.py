"""Forms of the voting pages. A vote carries no field but the CSRF token: who votes is the
signed-in patron, never something the form says (docs/security.md threat 18)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # types-wtforms 3.2 predates SelectChoice (wtforms 3.3)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from patrons.core.formfields import SmallIntegerField
from patrons.voting.rules import (
    DESCRIPTION_MAX,
    REASON_MAX,
    TITLE_MAX,
    VOTES_PER_PATRON_MAX,
)


class VoteForm(FlaskForm):
    """Back or withdraw: the CSRF token only."""


class ProposalForm(FlaskForm):
    title = StringField(
        _l("Topic"), validators=[DataRequired(), Length(max=TITLE_MAX)],
        description=_l("A few words: what should the newsroom look into?"),
    )  # fmt: skip
    description = TextAreaField(
        _l("Why it matters (optional)"), validators=[Length(max=DESCRIPTION_MAX)]
    )


class TopicForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Short description"), validators=[Length(max=DESCRIPTION_MAX)])


class RoundForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    introduction = TextAreaField(_l("Introduction"), validators=[Length(max=4000)])
    opens_at = DateTimeLocalField(
        _l("Opens (UTC)"), format="%Y-%m-%dT%H:%M", validators=[InputRequired()]
    )
    closes_at = DateTimeLocalField(
        _l("Closes (UTC)"), format="%Y-%m-%dT%H:%M", validators=[InputRequired()],
        description=_l("The round closes by itself at this time and its results are frozen."),
    )  # fmt: skip
    votes_per_patron = SmallIntegerField(
        _l("Votes per patron"), default=3,
        validators=[InputRequired(), NumberRange(1, VOTES_PER_PATRON_MAX)],
    )  # fmt: skip
    live_counts = BooleanField(_l("Show vote counts while the round is open"))


class ApproveForm(FlaskForm):
    round_id = SelectField(_l("Into round"), coerce=int, validate_choice=True)


class MergeForm(FlaskForm):
    into_topic_id = SmallIntegerField(
        _l("Duplicate of topic number"), validators=[InputRequired(), NumberRange(1, 2**31 - 1)]
    )


class DeclineForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (shown publicly)"), validators=[DataRequired(), Length(max=REASON_MAX)]
    )


class StatusForm(FlaskForm):
    status = SelectField(
        _l("New status"),
        choices=[
            SelectChoice("chosen", _l("chosen")),
            SelectChoice("in_reporting", _l("in reporting")),
            SelectChoice("covered", _l("covered")),
            SelectChoice("in_round", _l("back in the round (not chosen)")),
        ],
    )


class LinkArticleForm(FlaskForm):
    article = StringField(
        _l("Article address or slug"), validators=[DataRequired(), Length(max=1000)]
    )
