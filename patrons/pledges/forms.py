"""Forms of the pledge page. The card forms are JSON (the CSRF token in X-CSRFToken)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import Length, Optional

from patrons.pledges.managing import REASON_MAX


class ChangeAmountForm(FlaskForm):
    # parsed by choice.parse_choice with the pledge's currency, like the support page's form
    amount = StringField(_l("New monthly amount"), validators=[Optional(), Length(max=20)])
    other_amount = StringField(_l("Your own amount"), validators=[Optional(), Length(max=20)])


class CancelForm(FlaskForm):
    reason = TextAreaField(
        _l("Why are you stopping? (optional)"),
        validators=[Optional(), Length(max=REASON_MAX)],
        description=_l("Only the newsroom reads this. It helps us do better."),
    )


class ActionForm(FlaskForm):
    """A button that changes something (resume): the CSRF token only."""
