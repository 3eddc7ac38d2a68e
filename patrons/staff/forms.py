from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    IntegerField,
    RadioField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.validators import URL, DataRequired, Length, NumberRange, Optional


class TagsField(StringField):
    """Tags as comma-separated names; shows an article's Tag objects the same way."""

    def process_data(self, value: object) -> None:
        if isinstance(value, list | tuple):
            value = ", ".join(getattr(tag, "name", str(tag)) for tag in value)
        super().process_data(value)


class ArticleForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=300)])
    slug = StringField(
        "Address (slug)",
        validators=[Optional(), Length(max=120)],
        description="Leave empty to make one from the title.",
    )
    summary = TextAreaField("Summary", validators=[Optional(), Length(max=2000)])
    body_format = RadioField(
        "Body format", choices=[("markdown", "Markdown"), ("html", "HTML")], default="markdown"
    )
    body_source = TextAreaField("Body", validators=[DataRequired(), Length(max=500_000)])
    author_name = StringField("Author", validators=[Optional(), Length(max=200)])
    editor_name = StringField("Edited by", validators=[Optional(), Length(max=200)])
    tags = TagsField(
        "Tags", validators=[Optional(), Length(max=1000)], description="Separated by commas."
    )
    lead_image_url = StringField(
        "Lead image address",
        validators=[Optional(), Length(max=1000)],
        description="An https:// address, or a path on this site such as /static/…",
    )
    lead_image_alt = StringField("Lead image description (alt text)", validators=[Length(max=300)])
    lead_image_caption = StringField("Lead image caption", validators=[Length(max=500)])
    lead_image_credit = StringField("Lead image credit", validators=[Length(max=200)])
    canonical_url = URLField(
        "Canonical address in the outlet's CMS",
        validators=[Optional(), URL(require_tld=False), Length(max=1000)],
    )
    published_at = DateTimeLocalField(
        "Publication time (UTC)",
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
        description="Leave empty to use the moment you publish.",
    )


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token travels."""


class SiteTextsForm(FlaskForm):
    banner_heading = StringField("Banner heading", validators=[DataRequired(), Length(max=200)])
    banner_text = TextAreaField("Banner text", validators=[DataRequired(), Length(max=1000)])
    banner_button = StringField("Banner button", validators=[DataRequired(), Length(max=60)])
    banner_thanks = TextAreaField(
        "Thank-you shown to patrons instead", validators=[DataRequired(), Length(max=500)]
    )
    banner_dismiss_days = IntegerField(
        "Days a dismissed banner stays hidden", validators=[NumberRange(0, 365)]
    )
    notice_heading = StringField(
        "Ad-blocker notice heading", validators=[DataRequired(), Length(max=200)]
    )
    notice_text = TextAreaField(
        "Ad-blocker notice text", validators=[DataRequired(), Length(max=1000)]
    )
    notice_dismiss_days = IntegerField(
        "Days a dismissed notice stays hidden", validators=[NumberRange(0, 365)]
    )
    reprint_policy = TextAreaField("Reprint policy", validators=[DataRequired(), Length(max=1000)])
    footer_copyright = StringField("Footer: copyright", validators=[Length(max=300)])
    footer_funders = TextAreaField("Footer: funders", validators=[Length(max=1000)])
    privacy_policy = TextAreaField(
        "Privacy and cookie policy", validators=[DataRequired(), Length(max=20_000)]
    )
    contact_email = StringField("Newsroom contact email", validators=[Length(max=254)])
    ad_slot_body = TextAreaField(
        "Ad tag in the article body (trusted HTML)",
        validators=[Optional(), Length(max=10_000)],
        description="Rendered as is, never to patrons. Add the ad hosts to AD_HOSTS.",
    )
    ad_slot_aside = TextAreaField(
        "Ad tag beside the article (trusted HTML)", validators=[Optional(), Length(max=10_000)]
    )
