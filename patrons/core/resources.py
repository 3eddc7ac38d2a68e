"""Where the app's files are: in the checkout when run from it, in the package when installed.

The repository keeps the page templates in `templates/` and the migrations in `alembic/`, at
its top level. A built wheel carries copies of both under `patrons/_data/` (setup.py maps them
there at build time), beside the package's own `static/` and `translations/`. This module is
the one place that decides which copy the app uses: a checkout's (its `pyproject.toml` beside
the package) when there is one, so that an edit shows at once; the packaged one otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # patrons/core/resources.py -> patrons/
CHECKOUT_DIR = PACKAGE_DIR.parent
PACKAGED_DATA = PACKAGE_DIR / "_data"
# the alembic settings of pyproject.toml's [tool.alembic], for the packaged migrations
MIGRATION_FILE_TEMPLATE = "%(year)d%(month).2d%(day).2d_%(rev)s_%(slug)s"


def in_checkout() -> bool:
    """True when the package is imported from a checkout of the repository (an editable
    install or `python -m` in it), not from an installed wheel."""
    return (CHECKOUT_DIR / "pyproject.toml").is_file() and (CHECKOUT_DIR / "templates").is_dir()


def data_dir(name: str) -> Path:
    """`templates`, `alembic` or `deploy`: the checkout's folder, or the packaged copy."""
    path = CHECKOUT_DIR / name if in_checkout() else PACKAGED_DATA / name
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} is missing: build the package with its data (pip wheel .), "
            "or run from a checkout"
        )
    return path


def templates_dir() -> Path:
    return data_dir("templates")


def migrations_dir() -> Path:
    return data_dir("alembic")


def default_instance() -> Path:
    """Where instance files go when PATRONS_INSTANCE is not set: the checkout's `instance/`,
    or `instance/` in the working directory of an installed package."""
    return CHECKOUT_DIR / "instance" if in_checkout() else Path.cwd() / "instance"


def gunicorn_config() -> Path:
    """deploy/gunicorn.conf.py, which `python -m patrons` runs Gunicorn with."""
    return data_dir("deploy") / "gunicorn.conf.py"


def alembic_config(database_url: str | None = None) -> Config:
    """Alembic's configuration for this app's migrations, wherever they are; `database_url`
    overrides the settings' DATABASE_URL (alembic/env.py)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("file_template", MIGRATION_FILE_TEMPLATE.replace("%", "%%"))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config
