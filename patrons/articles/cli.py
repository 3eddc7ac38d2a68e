"""`flask --app patrons import-feed`: import articles from a feed; `prune-beacons`: forget
which visitors the beacon counted on the days before yesterday."""

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


@click.command("prune-beacons")
@with_appcontext
def prune_beacons() -> None:
    """Delete the beacon's per-visitor rows from before yesterday (run it daily, e.g. cron)."""
    from patrons.articles import counters
    from patrons.core import clock

    removed = counters.prune_seen(db, clock.now().date())
    db.commit()
    click.echo(f"Pruned {removed} beacon visitor rows.")
