"""Reading a feed's or an export's items as article drafts: RSS and Atom (through
feedparser) and WordPress REST API posts (JSON). Pure: no session, no network; feeds.py reads
the source and saves the drafts.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import io
import json
import re
import xml.sax
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import feedparser

from patrons.articles.sanitize import plain_text
from patrons.articles.service import ArticleDraft, strip_controls
from patrons.core.urls import is_http_url

SUMMARY_MAX = 300
URL_MAX = 1000
_ELLIPSIS_MARK = re.compile(r"\s*\[(?:…|\.\.\.)\]\s*$")


class FeedError(Exception):
    """The source cannot be read or is not a feed; the message is shown to staff."""


@dataclass(frozen=True)
class FeedItem:
    """One item of any kind of source: the article it carries (an `ArticleDraft`, whose slug
    is only a hint and whose editor is left to the import), the key that recognises it on
    the next import, and why it is not imported, if it is not."""

    key: str
    draft: ArticleDraft
    skip_reason: str = ""


@dataclass(frozen=True)
class ParsedSource:
    kind: str
    items: list[Any]
    convert: Callable[[Any], FeedItem]


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
    return " ".join(strip_controls(value).split())


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
    image = _http_url(_entry_image(entry))
    credits = entry.get("media_credit") or [{}]
    published = _from_struct(entry.get("published_parsed"))
    # `in` first: feedparser's get() falls back to the published date, with a warning
    updated = _from_struct(entry["updated_parsed"]) if "updated_parsed" in entry else None
    draft = ArticleDraft(
        title=_plain(str(entry.get("title") or "")),
        body_source=strip_controls(body),
        body_format="html",
        summary=_summary(excerpt),
        author_name=_entry_author(entry),
        tags=tuple(
            _plain(str(t.get("label") or t.get("term") or "")) for t in entry.get("tags") or []
        ),
        lead_image_url=image,
        lead_image_credit=_plain(str(credits[0].get("content") or "")) if image else "",
        canonical_url=_http_url(str(entry.get("link") or "")),
        published_at=published or updated,
        updated_at=updated,
    )
    return FeedItem(_key("rss", str(entry.get("id") or entry.get("link") or "")), draft)


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
    link = str(post["link"]) if isinstance(post.get("link"), str) else ""
    published = _from_iso(post["date_gmt"]) if post.get("date_gmt") else None
    updated = _from_iso(post["modified_gmt"]) if post.get("modified_gmt") else None
    draft = ArticleDraft(
        title=_plain(_rendered(post.get("title"))),
        body_source=strip_controls(_rendered(post.get("content"))),
        body_format="html",
        slug=unquote(str(post.get("slug") or "")),
        summary=_summary(_rendered(post.get("excerpt"))),
        author_name=_plain(str(_first(embedded, "author").get("name") or "")),
        tags=_wp_terms(embedded),
        lead_image_url=image,
        lead_image_alt=_text(str(media.get("alt_text") or "")) if image else "",
        lead_image_caption=_plain(_rendered(media.get("caption"))) if image else "",
        lead_image_credit=_text(str(meta.get("credit") or "")) if image else "",
        canonical_url=_http_url(link),
        published_at=published or updated,
        updated_at=updated,
    )
    key = _key("wp", html.unescape(_rendered(post.get("guid")) or link))
    return FeedItem(key, draft, skip_reason=_wp_skip_reason(post))
