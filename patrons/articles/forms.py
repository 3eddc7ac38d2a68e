from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional

from patrons.articles.corrections import COMMENT_MAX, CONTEXT_MAX, SELECTION_MAX


class CorrectionForm(FlaskForm):
    selection = TextAreaField(
        "The text that needs correcting",
        validators=[
            DataRequired("Quote the text that needs correcting."),
            Length(max=SELECTION_MAX, message=f"Quote at most {SELECTION_MAX} characters."),
        ],
    )
    context = HiddenField(validators=[Optional(), Length(max=CONTEXT_MAX)])
    comment = TextAreaField(
        "What is wrong, and what should it say?",
        validators=[
            Optional(),
            Length(max=COMMENT_MAX, message=f"Keep the comment under {COMMENT_MAX} characters."),
        ],
    )
    email = EmailField(
        "Your email (optional, if you would like a reply)",
        validators=[
            Optional(),
            Email("That does not look like an email address."),
            Length(max=254),
        ],
    )
    # a field people never see: bots fill it in
    website = StringField("Leave this empty", validators=[Optional()])
