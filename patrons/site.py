"""Staff-editable texts of the site (banner, notice, footer, ad tags), with defaults in code."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, fields
from typing import cast

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.core.extensions import cache
from patrons.models import SiteSetting

CACHE_KEY = "site-texts"


@dataclass(frozen=True)
class SiteTexts:
    banner_heading: str = "You could close this page. Or you could join our community."
    banner_text: str = (
        "Our reporting is free for everyone, and it stays that way because readers like you "
        "chip in. For as little as the cost of a cup of coffee a month you help keep it free, "
        "read without ads, and become a co-creator who votes on the topics we cover next."
    )
    banner_button: str = "Become a Patron!"
    banner_thanks: str = (
        "Thank you for being a patron. Your support keeps this reporting free for everyone."
    )
    banner_dismiss_days: int = 7
    notice_heading: str = "Looks like you are using an ad blocker"
    notice_text: str = (
        "We are an independent media outlet that relies on advertising and on our readers. "
        "We kindly ask for your support: disable your ad blocker for this site, or become a "
        "patron and read without ads."
    )
    notice_dismiss_days: int = 30
    reprint_policy: str = (
        "You may quote up to 500 characters of this article with an active hyperlink to it. "
        "Reprinting more needs our written permission."
    )
    footer_copyright: str = "© The Steppe Courier. Demo content written for this software."
    footer_funders: str = (
        "Funded by our patrons and by advertising. We accept no money from political parties."
    )
    privacy_policy: str = (
        "We keep only what we need: your email and pledge if you sign up, and aggregate, "
        "anonymous counts of page views. We set a cookie only when you sign in. Dismissing the "
        "banner or the ad-blocker notice is remembered in your own browser, not on our servers."
    )
    contact_email: str = "newsroom@example.org"
    ad_slot_body: str = ""
    ad_slot_aside: str = ""

    def script_hashes(self) -> tuple[str, ...]:
        """CSP hashes of the inline scripts in the staff-configured ad tags."""
        found = []
        for tag in (self.ad_slot_body, self.ad_slot_aside):
            for body in INLINE_SCRIPT.findall(tag):
                digest = hashlib.sha256(body.encode()).digest()
                found.append("sha256-" + base64.b64encode(digest).decode())
        return tuple(found)


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
FIELDS = {f.name: f for f in fields(SiteTexts)}


def load(db: Session) -> SiteTexts:
    """The texts as stored, with defaults for anything staff never changed."""
    values: dict[str, object] = {}
    for row in db.scalars(select(SiteSetting)):
        spec = FIELDS.get(row.key)
        if spec is None:
            continue
        values[row.key] = int(row.value) if spec.type in (int, "int") else row.value
    return SiteTexts(**values)  # type: ignore[arg-type]  # values typed per field by FIELDS


def texts() -> SiteTexts:
    """The current texts, cached briefly (every page shows the footer)."""
    cached = cache.get(CACHE_KEY)
    if cached is None:
        from patrons.core.db import session

        try:
            cached = load(session)
        except SQLAlchemyError:  # the database is down: error pages still need a footer
            session.rollback()
            return SiteTexts()
        cache.set(CACHE_KEY, cached, timeout=60)
    return cast(SiteTexts, cached)


def save_texts(db: Session, changes: dict[str, object]) -> None:
    """Store changed texts; unknown keys are refused."""
    now = clock.now()
    for key, value in changes.items():
        if key not in FIELDS:
            raise KeyError(key)
        row = db.get(SiteSetting, key)
        if row is None:
            db.add(SiteSetting(key=key, value=str(value), updated_at=now))
        else:
            row.value = str(value)
            row.updated_at = now


def forget_cached() -> None:
    """Drop the cached texts and the rendered pages that show them (after a commit).

    For views and CLI commands, not services: it clears this app's caches, which live on the
    app (the article fast path registers itself in app.extensions, web.py)."""
    from flask import current_app

    cache.clear()
    fast_path = current_app.extensions.get("article_fast_path")
    if fast_path is not None:
        fast_path.forget()
