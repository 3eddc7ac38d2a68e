"""Article HTML is sanitised once, when saved, with nh3: what is stored is what is shown."""

from __future__ import annotations

import html as htmllib
import re
from urllib.parse import urlsplit

import markdown as md
import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "del", "em", "figcaption",
    "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "mark", "ol", "p",
    "pre", "q", "s", "small", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "time", "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height", "loading"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "ol": {"start", "reversed"},
}
URL_SCHEMES = {"http", "https", "mailto"}


def _safe_cite(tag: str, attribute: str, value: str) -> str | None:
    # nh3 checks URL schemes on href/src, not on cite: do it here
    if attribute == "cite" and urlsplit(value.strip()).scheme.lower() not in ("", "http", "https"):
        return None
    return value


def sanitise_html(html: str) -> str:
    """Only the allowlisted tags and attributes; no scripts, handlers, javascript: or data: URLs."""
    return nh3.clean(
        html,
        attribute_filter=_safe_cite,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def render_body(source: str, body_format: str) -> str:
    """The sanitised HTML of an article body written in Markdown or HTML."""
    if body_format == "markdown":
        html = md.markdown(source, extensions=["extra", "sane_lists"], output_format="html")
    elif body_format == "html":
        html = source
    else:
        raise ValueError(f"unknown body format {body_format!r}")
    return sanitise_html(html)


def plain_text(html: str) -> str:
    """Text without tags, for reading time, summaries and feeds."""
    return htmllib.unescape(nh3.clean(html, tags=set())).replace("\xa0", " ")


_WORD = re.compile(r"\w+")


def reading_minutes(html: str, words_per_minute: int = 230) -> int:
    words = len(_WORD.findall(plain_text(html)))
    return max(1, round(words / words_per_minute))
