"""Importing articles from an RSS/Atom feed or a WordPress REST API export (JSON).

Every item is keyed by `Article.source_key` (`rss:<guid or link>`, `wp:<guid or link>`), so
importing again updates what an earlier import made instead of duplicating it. The feed is the
source of truth for what it carries; the slug, the editor and the status stay ours: an import
never renames or unpublishes an article. Bodies are sanitised by `service.save_article`.

This module reads the source (a file, or a capped download) and saves the items;
feed_parsing.py turns the items into `ArticleDraft`s.
"""

from __future__ import annotations

import hashlib
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from patrons.articles import service
from patrons.articles.feed_parsing import SUMMARY_MAX, FeedError, FeedItem, parse
from patrons.articles.sanitize import plain_text, render_body
from patrons.core import clock
from patrons.core.urls import is_http_url
from patrons.models import Article

__all__ = ["SUMMARY_MAX", "FeedError", "ImportResult", "fetch", "import_feed", "read_source"]

MAX_BYTES = 20 * 1024 * 1024
TIMEOUT_SECONDS = 10.0  # for connecting and for each read
DEADLINE_SECONDS = 120.0  # for the whole download
USER_AGENT = "patrons-feed-import/1.0"
ACCEPT = "application/rss+xml, application/atom+xml, application/json, application/xml, */*;q=0.5"


@dataclass
class ImportResult:
    source: str
    kind: str
    publish: bool = True
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        counts = (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{len(self.skipped)} skipped, {len(self.errors)} failed"
        )
        lines = [f"{self.kind} from {self.source}: {counts}."]
        if self.created and not self.publish:
            lines.append("New articles were left as drafts.")
        lines += [f"  skipped {reason}" for reason in self.skipped]
        lines += [f"  failed {reason}" for reason in self.errors]
        return "\n".join(lines)


def import_feed(db: Session, source: str, publish: bool = True) -> ImportResult:
    """Import every item of `source` (a file path or an http(s) URL); the caller commits."""
    content, base_url = read_source(source)
    parsed = parse(content, base_url)
    result = ImportResult(source=source.strip(), kind=parsed.kind, publish=publish)
    seen: set[str] = set()
    for number, raw in enumerate(parsed.items, start=1):
        _import_item(db, number, parsed.convert, raw, result, seen)
    return result


# Reading the source


def read_source(source: str) -> tuple[bytes, str]:
    """The bytes of a local file or an http(s) URL, and the URL (or "") for relative links."""
    source = source.strip()
    if not source:
        raise FeedError("Give a file path or an http(s) URL.")
    try:
        scheme = urlsplit(source).scheme.lower()
    except ValueError as exc:
        raise FeedError(f"Not a usable address: {source} ({exc}).") from None
    if scheme in ("http", "https"):
        return fetch(source), source
    if len(scheme) > 1:  # one letter is a Windows drive
        raise FeedError(f"Refusing {scheme}: addresses; give a file path or an http(s) URL.")
    return read_file(Path(source)), ""


def read_file(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise FeedError(f"No such file: {path}") from None
    except IsADirectoryError:
        raise FeedError(f"{path} is a directory, not a feed file.") from None
    except OSError as exc:
        raise FeedError(f"Could not read {path}: {exc.strerror or exc}.") from None
    if len(data) > MAX_BYTES:
        raise FeedError(f"{path} is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    return data


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if not is_http_url(newurl):
            fp.close()
            raise FeedError(f"{req.full_url} redirects to {newurl}, which is not an http(s) URL.")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(url: str) -> bytes:
    """GET `url` with a timeout and a size cap; every failure becomes a FeedError."""
    if not is_http_url(url):
        raise FeedError(f"Not an http(s) URL: {url}")
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310  (http(s) checked above)
    opener = urllib.request.build_opener(_HttpOnlyRedirects())
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return _read_capped(response, url)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise FeedError(f"{url} answered HTTP {exc.code} {exc.reason}.") from None
    except urllib.error.URLError as exc:
        raise FeedError(f"Could not fetch {url}: {exc.reason}.") from None
    except TimeoutError:
        raise FeedError(f"Could not fetch {url}: no answer within {TIMEOUT_SECONDS:g} s.") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise FeedError(f"Could not fetch {url}: {str(exc) or type(exc).__name__}.") from None


def _read_capped(response: Any, url: str) -> bytes:
    too_big = FeedError(f"{url} is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_BYTES:
        raise too_big
    deadline = time.monotonic() + DEADLINE_SECONDS
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read(64 * 1024):
        size += len(chunk)
        if size > MAX_BYTES:
            raise too_big
        if time.monotonic() > deadline:
            raise FeedError(f"{url} took longer than {DEADLINE_SECONDS:g} s to download.")
        chunks.append(chunk)
    return b"".join(chunks)


# Saving


def _import_item(
    db: Session,
    number: int,
    convert: Callable[[Any], FeedItem],
    raw: Any,
    result: ImportResult,
    seen: set[str],
) -> None:
    label = f"item {number}"
    try:
        item = convert(raw)
        title = item.draft.title
        label = f"item {number} “{title[:60]}”" if title else label
        reason = _skip_reason(item, seen)
        if reason:
            result.skipped.append(f"{label}: {reason}")
            return
        seen.add(item.key)
        with db.begin_nested():  # a failing item rolls back alone
            outcome = _save(db, item, result.publish)
    except Exception as exc:  # one bad item must not stop the others
        result.errors.append(f"{label}: {_describe(exc)}")
        return
    setattr(result, outcome, getattr(result, outcome) + 1)


def _describe(exc: Exception) -> str:
    if isinstance(exc, service.ArticleError):
        return str(exc)
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:300]


def _skip_reason(item: FeedItem, seen: set[str]) -> str:
    if item.skip_reason:
        return item.skip_reason
    if not item.key:
        return "no guid, id or link to recognise it by"
    if item.key in seen:
        return f"same guid/link as an earlier item ({item.key})"
    if not item.draft.title:
        return "no title"
    if not _has_content(item.draft.body_source):
        return "no content"
    return ""


def _has_content(body_source: str) -> bool:
    """Text or an image left once the body is sanitised (a lone script is no content)."""
    sanitised = render_body(body_source, "html")
    return bool(plain_text(sanitised).strip()) or "<img" in sanitised


def _save(db: Session, item: FeedItem, publish: bool) -> str:
    """Create or update the article for `item`: "created", "updated" or "unchanged"."""
    existing = service.article_by_source_key(db, item.key)
    before = _snapshot(existing) if existing is not None else None
    article = service.save_article(db, _draft(db, item, existing), existing)
    article.source_key = item.key
    if before is not None and _snapshot(article) == before:
        return "unchanged"
    if publish:
        service.publish(article)
    db.flush()
    return "created" if existing is None else "updated"


def _draft(db: Session, item: FeedItem, existing: Article | None) -> service.ArticleDraft:
    """The item's draft as it is saved: an earlier import's slug, editor and dates stay."""
    now = clock.now()
    draft = item.draft
    if existing is None:
        slug, editor, published, updated = _free_slug(db, item), "", None, None
    else:
        slug, editor = existing.slug, existing.editor_name
        published, updated = existing.published_at, existing.updated_at
    published = draft.published_at or published
    updated = draft.updated_at or published or updated
    return replace(draft, slug=slug, editor_name=editor,
                   published_at=published or now, updated_at=updated or now)  # fmt: skip


def _free_slug(db: Session, item: FeedItem) -> str:
    """The item's slug, or with -2, -3... if another article has it already."""
    base = service.slugify(item.draft.slug) or service.slugify(item.draft.title)
    base = base or f"article-{hashlib.sha256(item.key.encode()).hexdigest()[:10]}"
    for number in range(1, 1000):
        suffix = f"-{number}" if number > 1 else ""
        candidate = base[: service.SLUG_MAX - len(suffix)].rstrip("-") + suffix
        if service.article_by_slug(db, candidate) is None:
            return candidate
    raise service.ArticleError(f"No free address left for /articles/{base}.")


def _snapshot(article: Article) -> tuple[object, ...]:
    return (
        article.title,
        article.summary,
        article.body_format,
        article.body_source,
        article.author_name,
        article.lead_image_url,
        article.lead_image_alt,
        article.lead_image_caption,
        article.lead_image_credit,
        article.canonical_url,
        article.published_at,
        article.updated_at,
        tuple(sorted(tag.slug for tag in article.tags)),
    )
