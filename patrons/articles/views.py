"""Public pages: the article list, the free article, tags, the feed, corrections, beacons."""

from __future__ import annotations

import hashlib
from typing import Any, cast

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from patrons import site
from patrons.articles import corrections, counters, service
from patrons.articles.fastpath import CACHE_PREFIX, RenderedPage
from patrons.articles.forms import CorrectionForm
from patrons.articles.sanitize import reading_minutes
from patrons.core import clock
from patrons.core.config import Settings
from patrons.core.db import session as db
from patrons.core.extensions import cache, limiter
from patrons.core.headers import content_security_policy, security_headers
from patrons.core.urls import ascii_int
from patrons.models import Article
from patrons.pledges.entitlement import user_is_active_patron

bp = Blueprint("articles", __name__)
# per client address (extensions.limiter): a page sends a few beacons; a script that forges
# new browsers to be counted again is held to this many a day
BEACON_LIMIT = "120 per minute;2000 per day"


def _settings() -> Settings:
    return cast(Settings, current_app.config["SETTINGS"])


def _page_number() -> int:
    page = request.args.get("page", 1, type=ascii_int)
    if page < 1 or page > 10_000:
        abort(404)
    return page


@bp.get("/")
def index() -> ResponseReturnValue:
    page = service.latest_articles(db, _page_number())
    if page.number > 1 and not page.items:
        abort(404)
    return render_template("articles/index.html", page=page)


@bp.get("/tags/<slug>")
def tag(slug: str) -> ResponseReturnValue:
    found = service.tag_by_slug(db, slug) or abort(404)
    page = service.latest_articles(db, _page_number(), tag=found)
    if page.number > 1 and not page.items:
        abort(404)
    return render_template("articles/tag.html", tag=found, page=page)


@bp.get("/articles/<slug>")
def article(slug: str) -> ResponseReturnValue:
    """The free article. Anonymous hits are usually served by fastpath.py before this."""
    if _may_be_signed_in() and current_user.is_authenticated:
        return _personal_article(slug)
    g.public_page = True  # shared by every reader: nothing from or to the session
    key = CACHE_PREFIX + slug
    rendered = cache.get(key)
    if rendered is None:
        found = service.published_article(db, slug) or abort(404)
        rendered = _public_page(_render_article(found, viewer_is_patron=False).encode())
        cache.set(key, rendered, timeout=_cache_seconds())
    response = Response(rendered.body, headers=list(rendered.wsgi_headers))
    return response.make_conditional(request)


def _public_page(body: bytes) -> RenderedPage:
    """The page with the headers of its cacheable 200, security headers included."""
    settings = _settings()
    csp = content_security_policy(settings, site.texts().script_hashes())
    headers = (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("ETag", f'"{hashlib.sha256(body).hexdigest()[:32]}"'),
        ("Cache-Control", f"public, max-age=60, s-maxage={_cache_seconds()}"),
        ("Vary", "Cookie"),
        ("Content-Security-Policy", csp),
        *security_headers(settings),
    )
    return RenderedPage(body, headers)


def _may_be_signed_in() -> bool:
    """Only a request with a session cookie can belong to a signed-in reader."""
    return current_app.config["SESSION_COOKIE_NAME"] in request.cookies


def _personal_article(slug: str) -> Response:
    found = service.published_article(db, slug) or abort(404)
    grace = _settings().pledge_grace_days
    patron = user_is_active_patron(db, current_user.id, clock.now(), grace_days=grace)
    g.csp_script_hashes = site.texts().script_hashes()  # the ad tags' inline scripts
    response = make_response(_render_article(found, viewer_is_patron=patron))
    response.cache_control.private = True
    response.cache_control.no_store = True
    response.vary.add("Cookie")
    return response


def _render_article(found: Article, viewer_is_patron: bool) -> str:
    return render_template(
        "articles/article.html",
        article=found,
        related=service.related_articles(db, found),
        reading_minutes=reading_minutes(found.body_html),
        viewer_is_patron=viewer_is_patron,
        canonical=found.canonical_url or _absolute("articles.article", slug=found.slug),
    )


def _cache_seconds() -> int:
    return _settings().article_cache_seconds


def _absolute(endpoint: str, **values: Any) -> str:
    return _settings().site_url + url_for(endpoint, **values)


@bp.get("/feed.atom")
def feed() -> ResponseReturnValue:
    articles = service.recent_for_feed(db)
    body = render_template("articles/feed.xml", articles=articles, absolute=_absolute)
    response = make_response(body)
    response.mimetype = "application/atom+xml"
    response.cache_control.public = True
    response.cache_control.max_age = 300
    return response


@bp.route("/articles/<slug>/correction", methods=["GET", "POST"])
@limiter.limit("5 per minute;30 per day", methods=["POST"])
def suggest_correction(slug: str) -> ResponseReturnValue:
    found = service.published_article(db, slug) or abort(404)
    return _correction_form(found, "articles/correction.html")


@bp.route("/contact", methods=["GET", "POST"])
@limiter.limit("5 per minute;30 per day", methods=["POST"])
def contact() -> ResponseReturnValue:
    return _correction_form(None, "articles/contact.html")


def _correction_form(found: Article | None, template: str) -> ResponseReturnValue:
    form = CorrectionForm()
    wants_json = request.accept_mimetypes.best == "application/json"
    if request.method == "POST":
        if form.validate_on_submit():
            if not form.website.data:  # the honeypot stays empty for people
                corrections.suggest_correction(
                    db, found, form.selection.data or "", form.context.data or "",
                    form.comment.data or "", form.email.data,
                )  # fmt: skip
                db.commit()
            if wants_json:
                return jsonify(ok=True, message=_("Thank you. Our editors will look at it."))
            return redirect(request.path + "?sent=1", code=303)
        if wants_json:
            return jsonify(ok=False, errors=form.errors), 400
        return render_template(template, article=found, form=form), 400
    if request.method == "GET" and not form.selection.data:
        form.selection.data = request.args.get("selection", "")[: corrections.SELECTION_MAX]
    sent = request.args.get("sent") == "1"
    return render_template(template, article=found, form=form, sent=sent)


@bp.get("/csrf-token")
def csrf_token() -> ResponseReturnValue:
    """A token for the article page's correction form, which is cached and so carries none."""
    response = jsonify(token=generate_csrf())
    response.cache_control.no_store = True
    response.cache_control.private = True
    return response


@bp.get("/e/<int:article_id>/<kind>")
@limiter.limit(BEACON_LIMIT)
def beacon(article_id: int, kind: str) -> ResponseReturnValue:
    """Count one banner/notice event, once per visitor, article, event and day (counters.py);
    a GET beacon so cached, token-less pages can send it. A repeat answers as the first."""
    counted = counters.count_beacon(
        db, article_id, kind, secret=_settings().secret_key,
        address=request.remote_addr or "", user_agent=request.user_agent.string,
    )  # fmt: skip
    if not counted:
        abort(404)
    db.commit()  # a GET that writes: cached, token-less pages send it (article.js)
    response = Response(status=204)
    response.cache_control.no_store = True
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.get("/privacy")
def privacy() -> ResponseReturnValue:
    return render_template("articles/privacy.html")


@bp.get("/theme.css")
def theme() -> ResponseReturnValue:
    """The outlet's accent colour as a stylesheet (no inline styles under the CSP)."""
    response = make_response(render_template("theme.css"))
    response.mimetype = "text/css"
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response
