"""`flask --app patrons import-feed`: import articles from a feed."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from patrons.core.db import session as db


@click.command("import-feed")
@with_appcontext
@click.argument("source")
@click.option("--publish/--draft", default=True, help="Publish imported articles (default).")
def import_feed(source: str, publish: bool) -> None:
    """Import an RSS/Atom feed or a WordPress REST API export (JSON) from a path or URL."""
    from patrons.articles import feeds
    from patrons.site import forget_cached

    try:
        result = feeds.import_feed(db, source, publish=publish)
    except feeds.FeedError as exc:
        db.rollback()
        raise click.ClickException(str(exc)) from exc
    db.commit()
    forget_cached()
    click.echo(result.summary())
