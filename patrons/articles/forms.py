from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional

from patrons.articles.corrections import COMMENT_MAX, CONTEXT_MAX, SELECTION_MAX


class CorrectionForm(FlaskForm):
    selection = TextAreaField(
        _l("The text that needs correcting"),
        validators=[
            DataRequired(_l("Quote the text that needs correcting.")),
            Length(
                max=SELECTION_MAX,
                message=_l("Quote at most %(num)d characters.", num=SELECTION_MAX),
            ),
        ],
    )
    context = HiddenField(validators=[Optional(), Length(max=CONTEXT_MAX)])
    comment = TextAreaField(
        _l("What is wrong, and what should it say?"),
        validators=[
            Optional(),
            Length(
                max=COMMENT_MAX,
                message=_l("Keep the comment under %(num)d characters.", num=COMMENT_MAX),
            ),
        ],
    )
    email = EmailField(
        _l("Your email (optional, if you would like a reply)"),
        validators=[
            Optional(),
            Email(_l("That does not look like an email address.")),
            Length(max=254),
        ],
    )
    # a field people never see: bots fill it in
    website = StringField(_l("Leave this empty"), validators=[Optional()])
