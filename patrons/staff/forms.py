"""The staff forms: an article, the site's texts, and a button that changes something."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    RadioField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # types-wtforms 3.2 predates SelectChoice (wtforms 3.3)
from wtforms.validators import URL, DataRequired, Length, NumberRange, Optional

from patrons.core.formfields import SmallIntegerField


class TagsField(StringField):
    """Tags as comma-separated names; shows an article's Tag objects the same way."""

    def process_data(self, value: object) -> None:
        if isinstance(value, list | tuple):
            value = ", ".join(getattr(tag, "name", str(tag)) for tag in value)
        super().process_data(value)


class ArticleForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=300)])
    slug = StringField(
        _l("Address (slug)"),
        validators=[Optional(), Length(max=120)],
        description=_l("Leave empty to make one from the title."),
    )
    summary = TextAreaField(_l("Summary"), validators=[Optional(), Length(max=2000)])
    body_format = RadioField(
        _l("Body format"),
        choices=[SelectChoice("markdown", _l("Markdown")), SelectChoice("html", _l("HTML"))],
        default="markdown",
    )
    body_source = TextAreaField(_l("Body"), validators=[DataRequired(), Length(max=500_000)])
    author_name = StringField(_l("Author"), validators=[Optional(), Length(max=200)])
    editor_name = StringField(_l("Edited by"), validators=[Optional(), Length(max=200)])
    tags = TagsField(
        _l("Tags"),
        validators=[Optional(), Length(max=1000)],
        description=_l("Separated by commas."),
    )
    lead_image_url = StringField(
        _l("Lead image address"),
        validators=[Optional(), Length(max=1000)],
        description=_l("An https:// address, or a path on this site such as /static/…"),
    )
    lead_image_alt = StringField(
        _l("Lead image description (alt text)"), validators=[Length(max=300)]
    )
    lead_image_caption = StringField(_l("Lead image caption"), validators=[Length(max=500)])
    lead_image_credit = StringField(_l("Lead image credit"), validators=[Length(max=200)])
    canonical_url = URLField(
        _l("Canonical address in the outlet's CMS"),
        validators=[Optional(), URL(require_tld=False), Length(max=1000)],
    )
    published_at = DateTimeLocalField(
        _l("Publication time (UTC)"),
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
        description=_l("Leave empty to use the moment you publish."),
    )


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token travels."""


class SiteTextsForm(FlaskForm):
    banner_heading = StringField(_l("Banner heading"), validators=[DataRequired(), Length(max=200)])
    banner_text = TextAreaField(_l("Banner text"), validators=[DataRequired(), Length(max=1000)])
    banner_button = StringField(_l("Banner button"), validators=[DataRequired(), Length(max=60)])
    banner_thanks = TextAreaField(
        _l("Thank-you shown to patrons instead"), validators=[DataRequired(), Length(max=500)]
    )
    banner_dismiss_days = SmallIntegerField(
        _l("Days a dismissed banner stays hidden"), validators=[NumberRange(0, 365)]
    )
    notice_heading = StringField(
        _l("Ad-blocker notice heading"), validators=[DataRequired(), Length(max=200)]
    )
    notice_text = TextAreaField(
        _l("Ad-blocker notice text"), validators=[DataRequired(), Length(max=1000)]
    )
    notice_dismiss_days = SmallIntegerField(
        _l("Days a dismissed notice stays hidden"), validators=[NumberRange(0, 365)]
    )
    reprint_policy = TextAreaField(
        _l("Reprint policy"), validators=[DataRequired(), Length(max=1000)]
    )
    footer_copyright = StringField(_l("Footer: copyright"), validators=[Length(max=300)])
    footer_funders = TextAreaField(_l("Footer: funders"), validators=[Length(max=1000)])
    privacy_policy = TextAreaField(
        _l("Privacy and cookie policy"), validators=[DataRequired(), Length(max=20_000)]
    )
    contact_email = StringField(_l("Newsroom contact email"), validators=[Length(max=254)])
    ad_slot_body = TextAreaField(
        _l("Ad tag in the article body (trusted HTML)"),
        validators=[Optional(), Length(max=10_000)],
        description=_l("Rendered as is, never to patrons. Add the ad hosts to AD_HOSTS."),
    )
    ad_slot_aside = TextAreaField(
        _l("Ad tag beside the article (trusted HTML)"), validators=[Optional(), Length(max=10_000)]
    )
