"""Free articles for everyone: the front page, the article with its banner, notice and
corrections, tag and author lists, the feeds, `import-feed` and `prune-beacons`."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """/, /articles/…, the feeds, correction suggestions; `flask import-feed`, `prune-beacons`."""
    from patrons.articles import cli, views

    app.register_blueprint(views.bp)
    app.cli.add_command(cli.import_feed)
    app.cli.add_command(cli.prune_beacons)
