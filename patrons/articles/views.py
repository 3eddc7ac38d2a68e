"""Public pages: the article list, the free article, tags, the feed, corrections, beacons."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

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
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from patrons import site
from patrons.articles import corrections, counters, service
from patrons.articles.fastpath import (
    CACHE_PREFIX,
    FRONT_PAGE_PREFIX,
    STALE_SECONDS,
    Kept,
    RenderedPage,
)
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
# the article's shared parts (per kind of reader), next to the anonymous article pages and the
# front pages (fastpath.CACHE_PREFIX, FRONT_PAGE_PREFIX) in the page cache: all dropped together
# when staff change an article or the site's texts (site.forget_cached clears the cache)
PARTS_PREFIX = "article-parts:v1:"
REFRESHING = ":refreshing"  # after a key: one request is rendering its successor
REFRESH_LOCK_SECONDS = 30
T = TypeVar("T")


def _settings() -> Settings:
    return cast(Settings, current_app.config["SETTINGS"])


def _page_number() -> int:
    page = request.args.get("page", 1, type=ascii_int)
    if page < 1 or page > 10_000:
        abort(404)
    return page


@bp.get("/")
def index() -> ResponseReturnValue:
    """The front page. Anonymous readers get one cached copy per page number, dropped with
    the article pages whenever staff change an article (site.forget_cached)."""
    number = _page_number()
    if _for_this_reader_only():
        return _private(_front_page(number))  # the signed-in header, or a message to show
    g.public_page = True  # shared by every reader: nothing from or to the session
    # kept here only: a copy in nginx or a CDN would show a new article only once it expired
    rendered = _cached(
        f"{FRONT_PAGE_PREFIX}{number}",
        lambda: _public_page(_front_page(number).encode(), shared_copies=False),
    )
    response = Response(rendered.body, headers=list(rendered.wsgi_headers))
    return response.make_conditional(request)


def _front_page(number: int) -> str:
    page = service.latest_articles(db, number)
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
    rendered = _cached(
        CACHE_PREFIX + slug,
        lambda: _public_page(_article_page(slug, False), site.texts().script_hashes()),
    )
    response = Response(rendered.body, headers=list(rendered.wsgi_headers))
    return response.make_conditional(request)


def _article_page(slug: str, viewer_is_patron: bool) -> bytes:
    parts = _article_parts(slug, viewer_is_patron)
    return render_template("articles/article.html", parts=parts).encode()


def _public_page(
    body: bytes, script_hashes: tuple[str, ...] = (), *, shared_copies: bool = True
) -> RenderedPage:
    """The page with the headers of its cacheable 200, security headers included; the CSP
    allows the inline scripts of `script_hashes` (an article's ad tags) and no others.
    Without `shared_copies`, proxies and browsers ask again each time (nginx keeps none)."""
    settings = _settings()
    csp = content_security_policy(settings, script_hashes)
    headers = (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("ETag", f'"{hashlib.sha256(body).hexdigest()[:32]}"'),
        ("Cache-Control", _public_cache_control(_cache_seconds() if shared_copies else 0)),
        ("Vary", "Cookie"),
        ("Content-Security-Policy", csp),
        *security_headers(settings),
    )
    return RenderedPage(body, headers)


def _may_be_signed_in() -> bool:
    """Only a request with a session cookie can belong to a signed-in reader."""
    return current_app.config["SESSION_COOKIE_NAME"] in request.cookies


def _for_this_reader_only() -> bool:
    """A signed-in reader, or one whose session holds a message to show once (a flash: signing
    out lands on the front page with "You are signed out."): the shared cached page has
    neither. (An article page stays the shared one and leaves a message for the next page:
    tests/test_security_headers.py.)"""
    if not _may_be_signed_in():
        return False
    return bool(current_user.is_authenticated or session.get("_flashes"))


def _private(body: str | bytes) -> Response:
    response = make_response(body)
    response.cache_control.private = True
    response.cache_control.no_store = True
    response.vary.add("Cookie")
    return response


def _public_cache_control(seconds: int) -> str:
    if seconds <= 0:  # ARTICLE_CACHE_SECONDS=0: no copy kept here, none anywhere else either
        return "public, no-cache"
    return f"public, max-age=60, s-maxage={seconds}"


def _personal_article(slug: str) -> Response:
    """A signed-in reader's article: the cached parts for patrons or for everyone else, in the
    layout rendered for this reader. Warm, it costs the reader's two statements: the session
    and its user (accounts/auth.load_user) and, once, whether they are a patron."""
    grace = _settings().pledge_grace_days
    patron = user_is_active_patron(db, current_user.id, clock.now(), grace_days=grace)
    parts = _article_parts(slug, patron)
    g.csp_script_hashes = site.texts().script_hashes()  # the ad tags' inline scripts
    return _private(render_template("articles/article.html", parts=parts))


@dataclass(frozen=True)
class ArticleParts:
    """What every reader of one kind (patron or not) sees of an article: its head's values and
    its rendered main part (templates/articles/_article_main.html), cached together."""

    title: str
    summary: str
    canonical: str
    lead_image_url: str
    viewer_is_patron: bool
    main_html: str


def _article_parts(slug: str, viewer_is_patron: bool) -> ArticleParts:
    """The article's shared parts for patrons or for everyone else, from the page cache (the
    same cache and the same invalidation as the anonymous page), or rendered; 404 if the
    article is not published."""
    key = f"{PARTS_PREFIX}{'patron' if viewer_is_patron else 'reader'}:{slug}"
    return _cached(key, lambda: _render_parts(slug, viewer_is_patron))


def _render_parts(slug: str, viewer_is_patron: bool) -> ArticleParts:
    found = service.published_article(db, slug) or abort(404)
    canonical = found.canonical_url or _absolute("articles.article", slug=found.slug)
    main_html = render_template(
        "articles/_article_main.html",
        article=found,
        related=service.related_articles(db, found),
        chosen=service.patron_choices(db, found.id),
        reading_minutes=reading_minutes(found.body_html),
        viewer_is_patron=viewer_is_patron,
        canonical=canonical,
    )
    return ArticleParts(
        title=found.title,
        summary=found.summary,
        canonical=canonical,
        lead_image_url=found.lead_image_url or "",
        viewer_is_patron=viewer_is_patron,
        main_html=main_html,
    )


def _cached(key: str, make: Callable[[], T]) -> T:
    """The value cached under `key`, or `make()`'s, kept for ARTICLE_CACHE_SECONDS (0: nothing
    is kept; Flask-Caching would read a timeout of 0 as "never expires").

    An expired value stays STALE_SECONDS longer: the first request after its time renders the
    successor while the others answer with the stale copy (no stampede of renders)."""
    seconds = _cache_seconds()
    if seconds <= 0:
        return make()
    kept = cast(Kept | None, cache.get(key))
    refreshing = key + REFRESHING
    if kept is not None and (
        kept.is_fresh() or not cache.add(refreshing, 1, timeout=REFRESH_LOCK_SECONDS)
    ):
        return cast(T, kept.value)  # fresh, or another request is rendering its successor
    try:
        value = make()
        cache.set(key, Kept(value, time.time() + seconds), timeout=seconds + STALE_SECONDS)
    finally:
        if kept is not None:
            cache.delete(refreshing)
    return value


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
