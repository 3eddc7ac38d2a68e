"""`python -m patrons [GUNICORN OPTIONS]`: the production server, Gunicorn with the settings
of deploy/gunicorn.conf.py (the checkout's, or the installed package's copy): it listens on
BIND, or HOST:PORT (127.0.0.1:8000 unless set)."""

from __future__ import annotations

import sys

from gunicorn.app.wsgiapp import run  # type: ignore[import-untyped]  # gunicorn ships no types

from patrons.core.resources import gunicorn_config


def main() -> None:
    sys.argv = ["gunicorn", "--config", str(gunicorn_config()), *sys.argv[1:]]
    run(prog="python -m patrons")


if __name__ == "__main__":
    main()
