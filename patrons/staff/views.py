"""Staff pages for articles, correction suggestions and the site's texts."""

from __future__ import annotations

from datetime import UTC
from typing import cast

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from patrons import site
from patrons.accounts import audit, second_factor
from patrons.accounts import service as accounts_service
from patrons.articles import corrections, service
from patrons.core.db import session as db
from patrons.core.extensions import login_manager
from patrons.core.urls import db_id, safe_next
from patrons.models import Article, CorrectionSuggestion
from patrons.staff import queries
from patrons.staff.forms import ActionForm, ArticleForm, SiteTextsForm

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.before_request
def require_staff() -> ResponseReturnValue | None:
    if not current_user.is_authenticated:
        return cast(ResponseReturnValue, login_manager.unauthorized())
    if not current_user.is_staff:
        abort(403)
    if second_factor.enrolment_needed(current_user):  # STAFF_TWO_FACTOR_REQUIRED
        flash(_("Staff accounts need two-factor sign-in. Set it up to continue."), "info")
        return redirect(url_for("accounts.two_factor_setup", next=request.full_path.rstrip("?")))
    return None


@bp.after_request
def never_cache(response: Response) -> Response:
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response


@bp.get("/")
def home() -> ResponseReturnValue:
    return render_template("staff/home.html")


@bp.get("/articles")
def articles() -> ResponseReturnValue:
    status = request.args.get("status")
    rows = queries.articles(db, status)
    return render_template("staff/articles.html", articles=rows, status=status, form=ActionForm())


def _draft_from(form: ArticleForm) -> service.ArticleDraft:
    published = form.published_at.data
    return service.ArticleDraft(
        title=form.title.data or "",
        slug=form.slug.data or "",
        summary=form.summary.data or "",
        body_format=form.body_format.data or "markdown",
        body_source=form.body_source.data or "",
        author_name=form.author_name.data or "",
        editor_name=form.editor_name.data or "",
        tags=tuple((form.tags.data or "").split(",")),
        lead_image_url=form.lead_image_url.data or "",
        lead_image_alt=form.lead_image_alt.data or "",
        lead_image_caption=form.lead_image_caption.data or "",
        lead_image_credit=form.lead_image_credit.data or "",
        canonical_url=form.canonical_url.data or "",
        published_at=published.replace(tzinfo=UTC) if published else None,
    )


@bp.route("/articles/new", methods=["GET", "POST"])
def new_article() -> ResponseReturnValue:
    return _edit(None)


@bp.route("/articles/<int:article_id>/edit", methods=["GET", "POST"])
def edit_article(article_id: int) -> ResponseReturnValue:
    return _edit(db.get(Article, article_id) or abort(404))


def _edit(article: Article | None) -> ResponseReturnValue:
    form = ArticleForm(obj=article)
    if form.validate_on_submit():
        try:
            saved = service.save_article(db, _draft_from(form), article)
        except service.ArticleError as exc:
            db.rollback()
            field = form[exc.field]
            field.errors = [*field.errors, str(exc)]
        else:
            db.commit()
            site.forget_cached()
            flash(_("Saved “%(title)s”.", title=saved.title), "success")
            return redirect(url_for("staff.edit_article", article_id=saved.id))
    status = 400 if request.method == "POST" else 200
    return render_template("staff/article_form.html", form=form, article=article), status


@bp.post("/articles/<int:article_id>/<any(publish, unpublish):action>")
def publish_article(article_id: int, action: str) -> ResponseReturnValue:
    article = db.get(Article, article_id) or abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    (service.publish if action == "publish" else service.unpublish)(article)
    db.commit()
    site.forget_cached()
    if article.is_published:
        flash(_("“%(title)s” is published.", title=article.title), "success")
    else:
        flash(_("“%(title)s” is a draft again.", title=article.title), "success")
    return redirect(url_for("staff.articles"))


@bp.get("/corrections")
def correction_list() -> ResponseReturnValue:
    status = request.args.get("status", "open")
    if status not in ("open", "resolved", "declined", "all"):
        abort(404)
    article_id = request.args.get("article", type=db_id)
    article = db.get(Article, article_id) if article_id else None
    rows = corrections.suggestions(
        db, article.id if article else None, None if status == "all" else status
    )
    return render_template(
        "staff/corrections.html",
        suggestions=rows,
        per_article=corrections.counts_per_article(db),
        status=status,
        article=article,
        form=ActionForm(),
    )


@bp.post("/corrections/<int:suggestion_id>/<any(open, resolved, declined):status>")
def handle_correction(suggestion_id: int, status: str) -> ResponseReturnValue:
    suggestion = db.get(CorrectionSuggestion, suggestion_id) or abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    corrections.handle_suggestion(db, suggestion, status, current_user)
    db.commit()
    # one whole sentence per status, so a translation can inflect the status word
    done = {
        "open": _("Suggestion #%(id)s marked open.", id=suggestion.id),
        "resolved": _("Suggestion #%(id)s marked resolved.", id=suggestion.id),
        "declined": _("Suggestion #%(id)s marked declined.", id=suggestion.id),
    }
    flash(done[status], "success")
    return redirect(safe_next(request.form.get("back"), url_for("staff.correction_list")))


@bp.route("/settings", methods=["GET", "POST"])
def site_texts() -> ResponseReturnValue:
    current = site.load(db)
    form = SiteTextsForm(obj=current)
    if form.validate_on_submit():
        changes = {name: field.data for name, field in form._fields.items() if name in site.FIELDS}
        site.save_texts(db, changes)
        db.commit()
        site.forget_cached()
        flash(_("Saved. Article pages show the new texts now."), "success")
        return redirect(url_for("staff.site_texts"))
    status = 400 if request.method == "POST" else 200
    return render_template("staff/settings.html", form=form), status


@bp.get("/members")
@second_factor.fresh_second_factor_required
def members() -> ResponseReturnValue:
    """Members, newest first, searchable by email or name (personal data: a fresh second
    factor, and a line in the audit log)."""
    query_text = " ".join(request.args.get("q", "").split())[:254]
    rows = accounts_service.find_members(db, query_text)
    audit.record(db, "staff.members", actor=current_user, detail={"q": query_text,
                                                                  "shown": len(rows)})  # fmt: skip
    db.commit()
    return render_template("staff/members.html", members=rows, q=query_text)
