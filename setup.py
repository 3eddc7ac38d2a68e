"""The build step pyproject.toml cannot express: the repository keeps the page templates, the
migrations and the deploy files at its top level (templates/, alembic/, deploy/), and the
wheel carries copies of them inside the package, under patrons/_data/, where
patrons/core/resources.py finds them. An editable install (`make install`) copies nothing:
the app reads the checkout's folders."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PACKAGED = {
    "templates": "patrons/_data/templates",
    "alembic": "patrons/_data/alembic",
    # gunicorn.conf.py for `python -m patrons`; nginx.conf and the systemd units to copy from
    "deploy": "patrons/_data/deploy",
}
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for source, target in PACKAGED.items():
            destination = Path(self.build_lib) / target
            shutil.rmtree(destination, ignore_errors=True)
            shutil.copytree(ROOT / source, destination, ignore=SKIP)


setup(cmdclass={"build_py": BuildWithData})
