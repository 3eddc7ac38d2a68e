"""Gunicorn's settings for Patrons: `gunicorn -c deploy/gunicorn.conf.py` (no app argument:
`wsgi_app` below names it). The installed package carries a copy, which `python -m patrons`
uses. Settings from the environment:

  BIND             where to listen, e.g. `127.0.0.1:8000` or `unix:/run/patrons/web.sock`
                   (several: comma-separated); wins over HOST and PORT
  HOST, PORT       otherwise HOST:PORT (127.0.0.1 and 8000 unless set; a platform that
                   routes to $PORT on every interface wants HOST=0.0.0.0)
  WEB_CONCURRENCY  worker processes (2 unless set)
  WEB_THREADS      threads per worker (4 unless set)

Workers are threaded (gthread): a reader waiting on a slow Stripe call holds a thread, not a
whole process. Reload (`kill -HUP`, `systemctl reload patrons-web`) loads the new code: the
master starts new workers and stops the old ones gracefully. README "Production" says what a
reader sees meanwhile and when to use USR2 instead; bench/reload.py measures it.
"""

from __future__ import annotations

import os
import signal
from typing import Any


def _bind() -> list[str]:
    explicit = os.environ.get("BIND", "").strip()
    if explicit:
        return [address.strip() for address in explicit.split(",") if address.strip()]
    host = os.environ.get("HOST", "").strip() or "127.0.0.1"
    port = os.environ.get("PORT", "").strip() or "8000"
    return [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]


wsgi_app = "patrons:create_app()"
bind = _bind()
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "") or 2)
threads = int(os.environ.get("WEB_THREADS", "") or 4)
preload_app = False  # each worker imports the app itself, so a reload loads the new code
timeout = 30  # a worker silent this long is killed and replaced
graceful_timeout = 30  # a stopping worker finishes its requests within this
keepalive = 5  # seconds an idle keep-alive connection from the proxy stays open
worker_tmp_dir = "/dev/shm"  # noqa: S108  (heartbeat files, mkstemp: memory, never a slow disk)
# the proxy in front says the scheme (X-Forwarded-Proto); the app's PROXY_HOPS reads the rest
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# no gunicornc control socket: one per user by default, so a second instance on the machine
# would fight over it; signals (systemd's reload and stop) do what it would
control_socket_disable = True


# Graceful reload without a stall. Gunicorn's own HUP starts the new workers and stops the old
# ones at once, so for as long as a new worker takes to import the app (1-2 s) nobody accepts
# a connection. These hooks keep each old worker serving until the new worker that replaces it
# has loaded the app: the new one then stops it (SIGTERM: it finishes its requests and exits).


def on_reload(server: Any) -> None:  # master, after HUP, before the new workers are started
    old = sorted(server.WORKERS)
    server.patrons_old = set(old)  # workers still to stop
    server.patrons_unassigned = old  # workers no new one has been told to replace yet
    server.num_workers = server.cfg.workers + len(old)  # so Gunicorn stops none of them itself


def pre_fork(server: Any, worker: Any) -> None:  # master, before each new worker is forked
    unassigned = getattr(server, "patrons_unassigned", [])
    worker.patrons_replaces = unassigned.pop() if unassigned else None


def post_worker_init(worker: Any) -> None:  # the new worker, its app loaded: ready to serve
    old = getattr(worker, "patrons_replaces", None)
    if old is not None and _is_sibling(old):
        os.kill(old, signal.SIGTERM)


def child_exit(server: Any, worker: Any) -> None:  # master, a worker has exited
    old = getattr(server, "patrons_old", set())
    old.discard(worker.pid)
    replaces = getattr(worker, "patrons_replaces", None)
    if replaces in old:  # it died before stopping its old worker: the next new one will
        server.patrons_unassigned.append(replaces)
    server.num_workers = server.cfg.workers + len(old)


def _is_sibling(pid: int) -> bool:
    """The process is still a worker of this master (a pid is reused after an exit)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            parent = int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return parent == os.getppid()
