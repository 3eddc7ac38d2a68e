"""Real processes for the deploy tests: a database migrated and seeded with the demo through
the app's own commands, and Gunicorn started with deploy/gunicorn.conf.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_env(database_url: str, instance: Path, **extra: str) -> dict[str, str]:
    """The environment of the app's processes: testing mode, cheap hashing, no Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "PATRONS_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        PATRONS_ENV="testing",
        SECRET_KEY=TEST_SECRET,
        DATABASE_URL=database_url,
        PATRONS_INSTANCE=str(instance),
        SITE_URL="https://patrons.test",
        PASSWORD_HASH_TIME_COST="1",
        PASSWORD_HASH_MEMORY_COST="8",
        PASSWORD_HASH_PARALLELISM="1",
        **extra,
    )
    return env


def flask(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "patrons", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def migrate_and_seed(env: dict[str, str]) -> None:
    flask(env, "db-upgrade")
    flask(env, "seed-demo")


def wait_until_answering(url: str, process: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310  (a loopback URL)
                return
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@contextmanager
def gunicorn(env: dict[str, str], log: Path, app_uri: str | None = None) -> Iterator[str]:
    """Gunicorn with deploy/gunicorn.conf.py on a free port: its base URL."""
    port = free_port()
    env = {**env, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1", "WEB_THREADS": "4"}
    command = [str(BIN / "gunicorn"), "--config", str(GUNICORN_CONF)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, *([app_uri] if app_uri else [])],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(base + "/healthz", process)
        yield base
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM; SIGKILL if it has not exited 30 s later."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
