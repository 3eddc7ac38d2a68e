"""The production entry point: `gunicorn wsgi:app`."""

from patrons import create_app

app = create_app()
