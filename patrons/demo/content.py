"""Demo content for `flask --app patrons seed-demo`: articles, a voting round and its topics.

Everything here was written for this demo about a fictional outlet, The Steppe Courier. The
towns, people and figures in the articles are invented; none of the text is taken from a real
article. The lead images are simple SVG illustrations in patrons/static/demo/.

The articles are Markdown files in patrons/demo/articles/: a header of `name: value` lines
(`days_ago`, then the fields of `patrons.articles.service.ArticleDraft`; `tags` separated by
commas), a blank line, and the body. ARTICLES is a list of (days_ago, fields), newest first,
read when the demo is seeded (this module is imported by `seed-demo` only).
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from typing import TypedDict


class ArticleFields(TypedDict):
    """One demo article: keyword arguments of `ArticleDraft`."""

    slug: str
    title: str
    summary: str
    body_source: str
    author_name: str
    editor_name: str
    tags: tuple[str, ...]
    lead_image_url: str
    lead_image_alt: str
    lead_image_caption: str
    lead_image_credit: str


_HEADER = (
    "slug", "days_ago", "title", "summary", "author_name", "editor_name", "tags",
    "lead_image_url", "lead_image_alt", "lead_image_caption", "lead_image_credit",
)  # fmt: skip


def read_article(file: Traversable) -> tuple[float, ArticleFields]:
    """(days_ago, fields) from one article file."""
    header, _, body = file.read_text(encoding="utf-8").partition("\n\n")
    values = dict(line.split(": ", 1) for line in header.splitlines())
    if tuple(values) != _HEADER or not body.strip():
        raise ValueError(f"{file.name}: a header of {', '.join(_HEADER)}, a blank line, a body")
    fields = ArticleFields(
        slug=values["slug"],
        title=values["title"],
        summary=values["summary"],
        body_source=body,
        author_name=values["author_name"],
        editor_name=values["editor_name"],
        tags=tuple(tag.strip() for tag in values["tags"].split(",")),
        lead_image_url=values["lead_image_url"],
        lead_image_alt=values["lead_image_alt"],
        lead_image_caption=values["lead_image_caption"],
        lead_image_credit=values["lead_image_credit"],
    )
    return float(values["days_ago"]), fields


def read_articles() -> list[tuple[float, ArticleFields]]:
    folder = resources.files("patrons.demo") / "articles"
    files = [f for f in folder.iterdir() if f.name.endswith(".md")]
    return sorted((read_article(f) for f in files), key=lambda article: article[0])


ARTICLES = read_articles()

ROUND: dict[str, str] = {
    "title": "What should we look into this winter?",
    "introduction": (
        "Patrons can back up to three of the topics below. The results help our editors decide "
        "which reporting gets time and money first, and we publish them in full when the round "
        "closes. Votes guide an independent newsroom; they do not buy coverage. No vote, pledge "
        "or payment decides what a story concludes, and editors still decide what is published."
    ),
}

TOPICS: list[tuple[str, str]] = [
    (
        "Who fixes the boilers: heating in apartment blocks",
        "Many blocks depend on ageing district boiler houses. We would follow the repairs, the "
        "contracts and who pays for them, building by building, through one winter.",
    ),
    (
        "Rebuilding schools: where the money goes",
        "Shelters, windows, roofs: we would trace the funding for school repairs in three "
        "districts, from the budget line to the building site.",
    ),
    (
        "Mental health care outside the big cities",
        "Who a teacher, a farmer or a returning soldier in a small town can actually see for "
        "help, how long they wait, and what it costs them.",
    ),
    (
        "Land waiting for a survey",
        "Farms that cannot work their fields until a survey is done: how the queue is set, "
        "how long it is, and what owners live on in the meantime.",
    ),
    (
        "Coming home to a damaged town",
        "Families returning to towns near the front line: housing, compensation, schools and "
        "the services that are, or are not, there when they arrive.",
    ),
    (
        "Local budgets, line by line",
        "How the budgets of three towns we already cover changed since 2022, explained line by "
        "line, with the officials who decide them.",
    ),
]
