"""Importing articles from an RSS/Atom feed or a WordPress REST API export (JSON).

Every item is keyed by `Article.source_key` (`rss:<guid or link>`, `wp:<guid or link>`), so
importing again updates what an earlier import made instead of duplicating it. The feed is the
source of truth for what it carries; the slug, the editor and the status stay ours: an import
never renames or unpublishes an article. Bodies are sanitised by `service.save_article`.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import http.client
import io
import json
import re
import time
import urllib.error
import urllib.request
import xml.sax
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import feedparser
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.articles import service
from patrons.articles.sanitize import plain_text, render_body
from patrons.core import clock
from patrons.core.urls import is_http_url
from patrons.models import Article

MAX_BYTES = 20 * 1024 * 1024
TIMEOUT_SECONDS = 10.0  # for connecting and for each read
DEADLINE_SECONDS = 120.0  # for the whole download
SUMMARY_MAX = 300
URL_MAX = 1000
USER_AGENT = "patrons-feed-import/1.0"
ACCEPT = "application/rss+xml, application/atom+xml, application/json, application/xml, */*;q=0.5"
_ELLIPSIS_MARK = re.compile(r"\s*\[(?:…|\.\.\.)\]\s*$")


class FeedError(Exception):
    """The source cannot be read or is not a feed; the message is shown to staff."""


@dataclass(frozen=True)
class FeedItem:
    """One item of any kind of source, before it becomes an article."""

    key: str
    title: str
    body_html: str
    excerpt_html: str = ""
    link: str = ""
    slug_hint: str = ""
    author: str = ""
    tags: tuple[str, ...] = ()
    image_url: str = ""
    image_alt: str = ""
    image_caption: str = ""
    image_credit: str = ""
    published: datetime | None = None
    updated: datetime | None = None
    skip_reason: str = ""


@dataclass(frozen=True)
class ParsedSource:
    kind: str
    items: list[Any]
    convert: Callable[[Any], FeedItem]


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
        raise FeedError(f"Could not fetch {url}: {exc or type(exc).__name__}.") from None


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


# Parsing


def parse(content: bytes, base_url: str = "") -> ParsedSource:
    """A WordPress export if the content starts like JSON, else an RSS or Atom feed."""
    head = content.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise FeedError("The source is empty.")
    if head[:1] in (b"[", b"{"):
        return _parse_wordpress(content)
    return _parse_feed(content, base_url)


def _parse_feed(content: bytes, base_url: str) -> ParsedSource:
    headers = {"content-location": base_url} if base_url else {}
    # bytes in a stream: a bare string could make feedparser open files or URLs itself
    parsed = feedparser.parse(io.BytesIO(content), response_headers=headers)
    problem = parsed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXParseException):
        raise FeedError(
            f"The feed is not well-formed XML (line {problem.getLineNumber()}, "
            f"column {problem.getColumnNumber()}: {problem.getMessage()})."
        )
    version = str(parsed.get("version") or "")
    if not version:
        raise FeedError("This is neither an RSS or Atom feed nor a WordPress JSON export.")
    if not parsed.entries:
        raise FeedError("The feed has no items.")
    kind = "Atom feed" if version.startswith("atom") else "RSS feed"
    return ParsedSource(kind, list(parsed.entries), _feed_item)


def _parse_wordpress(content: bytes) -> ParsedSource:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise FeedError(
            f"The export is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from None
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise FeedError(f"The export is not valid JSON ({type(exc).__name__}).") from None
    if isinstance(data, dict):
        if "code" in data and "message" in data:
            raise FeedError(f"WordPress answered with an error: {_text(str(data['message']))}")
        data = [data] if "title" in data else None  # a single post
    if not isinstance(data, list):
        raise FeedError("The JSON is not a WordPress export (a list of posts).")
    if not data:
        raise FeedError("The export has no posts.")
    return ParsedSource("WordPress export", data, _wp_item)


# Text helpers


def _text(value: str) -> str:
    """One line of plain text: no control characters, whitespace collapsed."""
    return " ".join(service.strip_controls(value).split())


def _plain(markup: str) -> str:
    """Plain text from HTML; entity-escaped markup (`&lt;script&gt;`) is stripped as well."""
    text = markup
    for _ in range(3):
        stripped = plain_text(text)
        if stripped == text:
            break
        text = stripped
    return _text(text)


def _truncate(text: str, limit: int = SUMMARY_MAX) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-–—") + "…"


def _summary(excerpt_html: str) -> str:
    text, marks = _ELLIPSIS_MARK.subn("", _plain(excerpt_html))
    return _truncate(text + ("…" if marks and text else ""))


def _http_url(value: str) -> str:
    value = value.strip()
    return value if is_http_url(value) and len(value) <= URL_MAX else ""


def _key(prefix: str, value: str) -> str:
    value = _text(value)
    if not value:
        return ""
    key = f"{prefix}:{value}"
    if len(key) > URL_MAX:
        key = f"{prefix}:sha256:{hashlib.sha256(value.encode()).hexdigest()}"
    return key


def _paragraphs(text: str) -> str:
    """HTML for a plain-text body: paragraphs at blank lines."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]
    return "\n".join(f"<p>{html.escape(block)}</p>" for block in blocks)


def _from_struct(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _from_iso(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# RSS and Atom entries (as parsed by feedparser)


def _detail_html(detail: Mapping[str, Any] | None) -> str:
    if not detail:
        return ""
    value = str(detail.get("value") or "")
    return _paragraphs(value) if detail.get("type") == "text/plain" else value


def _entry_body(entry: Mapping[str, Any]) -> tuple[str, str]:
    """The body and, if it says something else, the excerpt."""
    contents = [c for c in entry.get("content") or [] if str(c.get("value") or "").strip()]
    summary = entry.get("summary_detail")
    if not contents:
        return _detail_html(summary), ""
    best = next((c for c in contents if c.get("type") == "text/html"), contents[0])
    excerpt = _detail_html(summary)
    if summary and str(summary.get("value") or "") == str(best.get("value") or ""):
        excerpt = ""
    return _detail_html(best), excerpt


def _entry_author(entry: Mapping[str, Any]) -> str:
    name = str((entry.get("author_detail") or {}).get("name") or "")
    if not name and "@" not in str(entry.get("author") or ""):
        name = str(entry.get("author") or "")
    return _plain(name)


def _entry_image(entry: Mapping[str, Any]) -> str:
    for media in entry.get("media_content") or []:
        kind = f"{media.get('medium') or ''} {media.get('type') or ''}"
        if "image" in kind and _http_url(str(media.get("url") or "")):
            return str(media["url"])
    for link in entry.get("enclosures") or []:
        if str(link.get("type") or "").startswith("image/") and _http_url(link.get("href") or ""):
            return str(link["href"])
    for thumbnail in entry.get("media_thumbnail") or []:
        if _http_url(str(thumbnail.get("url") or "")):
            return str(thumbnail["url"])
    return ""


def _feed_item(entry: Mapping[str, Any]) -> FeedItem:
    body, excerpt = _entry_body(entry)
    image = _entry_image(entry)
    credits = entry.get("media_credit") or [{}]
    return FeedItem(
        key=_key("rss", str(entry.get("id") or entry.get("link") or "")),
        title=_plain(str(entry.get("title") or "")),
        body_html=body,
        excerpt_html=excerpt,
        link=str(entry.get("link") or ""),
        author=_entry_author(entry),
        tags=tuple(
            _plain(str(t.get("label") or t.get("term") or "")) for t in entry.get("tags") or []
        ),
        image_url=image,
        image_credit=_plain(str(credits[0].get("content") or "")) if image else "",
        published=_from_struct(entry.get("published_parsed")),
        # `in` first: feedparser's get() falls back to the published date, with a warning
        updated=_from_struct(entry["updated_parsed"]) if "updated_parsed" in entry else None,
    )


# WordPress REST API posts


def _rendered(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("rendered")
    return value if isinstance(value, str) else ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _first(embedded: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The first embedded object of a kind; WordPress embeds an error object if it may not."""
    found = embedded.get(name)
    first = found[0] if isinstance(found, list) and found else {}
    return first if isinstance(first, Mapping) and "code" not in first else {}


def _wp_terms(embedded: Mapping[str, Any]) -> tuple[str, ...]:
    names: list[str] = []
    for group in embedded.get("wp:term") or []:
        for term in group if isinstance(group, list) else []:
            if not isinstance(term, Mapping) or term.get("slug") == "uncategorized":
                continue
            if term.get("taxonomy") in ("category", "post_tag"):
                names.append(_plain(str(term.get("name") or "")))
    return tuple(names)


def _wp_skip_reason(post: Mapping[str, Any]) -> str:
    status = post.get("status", "publish")
    if status != "publish":
        return f"its WordPress status is {status!r}, not 'publish'"
    if isinstance(post.get("content"), Mapping) and post["content"].get("protected"):
        return "it is password-protected"
    return ""


def _wp_item(post: Any) -> FeedItem:
    if not isinstance(post, Mapping):
        raise ValueError(f"expected a post object, found {type(post).__name__}")
    embedded = _mapping(post.get("_embedded"))
    media = _first(embedded, "wp:featuredmedia")
    image = _http_url(str(media.get("source_url") or ""))
    meta = _mapping(_mapping(media.get("media_details")).get("image_meta"))
    link = post.get("link") if isinstance(post.get("link"), str) else ""
    return FeedItem(
        key=_key("wp", html.unescape(_rendered(post.get("guid")) or link)),
        title=_plain(_rendered(post.get("title"))),
        body_html=_rendered(post.get("content")),
        excerpt_html=_rendered(post.get("excerpt")),
        link=link,
        slug_hint=unquote(str(post.get("slug") or "")),
        author=_plain(str(_first(embedded, "author").get("name") or "")),
        tags=_wp_terms(embedded),
        image_url=image,
        image_alt=_text(str(media.get("alt_text") or "")) if image else "",
        image_caption=_plain(_rendered(media.get("caption"))) if image else "",
        image_credit=_text(str(meta.get("credit") or "")) if image else "",
        published=_from_iso(post.get("date_gmt")) if post.get("date_gmt") else None,
        updated=_from_iso(post.get("modified_gmt")) if post.get("modified_gmt") else None,
        skip_reason=_wp_skip_reason(post),
    )


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
        label = f"item {number} “{item.title[:60]}”" if item.title else label
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
    if not item.title:
        return "no title"
    if not _has_content(item.body_html):
        return "no content"
    return ""


def _has_content(body_html: str) -> bool:
    """Text or an image left once the body is sanitised (a lone script is no content)."""
    sanitised = render_body(service.strip_controls(body_html), "html")
    return bool(plain_text(sanitised).strip()) or "<img" in sanitised


def _save(db: Session, item: FeedItem, publish: bool) -> str:
    """Create or update the article for `item`: "created", "updated" or "unchanged"."""
    existing = db.scalar(select(Article).where(Article.source_key == item.key))
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
    now = clock.now()
    published = item.published or item.updated
    if existing is not None:
        published = published or existing.published_at
    updated = item.updated or published or (existing.updated_at if existing else None)
    return service.ArticleDraft(
        title=item.title,
        body_source=service.strip_controls(item.body_html),
        body_format="html",
        slug=existing.slug if existing is not None else _free_slug(db, item),
        summary=_summary(item.excerpt_html),
        author_name=item.author,
        editor_name=existing.editor_name if existing is not None else "",
        tags=item.tags,
        lead_image_url=_http_url(item.image_url),
        lead_image_alt=item.image_alt,
        lead_image_caption=item.image_caption,
        lead_image_credit=item.image_credit,
        canonical_url=_http_url(item.link),
        published_at=published or now,
        updated_at=updated or now,
    )


def _free_slug(db: Session, item: FeedItem) -> str:
    """The item's slug, or with -2, -3... if another article has it already."""
    base = service.slugify(item.slug_hint) or service.slugify(item.title)
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
