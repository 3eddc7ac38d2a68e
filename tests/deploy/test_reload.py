"""A reload (`kill -HUP` to the master) of the production server, `python -m patrons` with
deploy/gunicorn.conf.py, while readers keep asking for pages. Three reloads in a row; each
time the test waits until the new workers are all serving, then checks:

- no request failed: every answer a 200, no connection refused or reset;
- at every moment of the reload a worker was taking connections, or an old worker (which
  the hooks stop only once its replacement has loaded the app) was still there: that covers
  the instant between a new worker stopping its old one and its own loop starting to poll.
  Gunicorn's own HUP stops the old workers at once and leaves nobody accepting while the
  new ones import the app: requests wait in the listen queue and none fails, so only this
  check tells the two apart;
- the workers are all new, as many as WEB_CONCURRENCY, no old one is left, and the master
  and its listening socket are the same;
- the new workers run the new code: the server runs from a copy of the checkout whose
  patrons/health.py the test edits before each reload (a route answering the reload's
  number), and every request made after the reload is answered by the edited code.

"Taking connections" is read from /proc, sampled every few milliseconds: a worker whose
epoll set holds the listening socket (gthread adds it when its loop starts and removes it
when told to stop). No timing is asserted: only what happened, and in what order. Linux
only. SQLite, or a scratch database beside TEST_DATABASE_URL's (one per pytest-xdist worker).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import cycle
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import reset_database, worker_database
from tests.deploy.servers import (
    ROOT,
    app_env,
    free_port,
    migrate_and_seed,
    stop,
    wait_until_answering,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="reads Linux's /proc"),
]
WORKERS = 2
RELOADS = 3
CLIENTS = 4
PAUSE = 0.02  # seconds between two requests of a reader: steady load, not a flood
ARTICLE = "/articles/bilyi-brid-ferry-returns"  # a demo article (patrons/demo/articles/)
PROBE = "/_reload-generation"  # added to the copy's patrons/health.py: with_generation
PAGES = ("/healthz", ARTICLE, PROBE)
PROBE_ROUTE = """

@bp.get("{path}")
@limiter.exempt
def reload_generation() -> ResponseReturnValue:  # written by tests/deploy/test_reload.py
    return {{"generation": {generation}}}, 200, NO_STORE
"""
DEADLINE = 90.0  # seconds for a start or a reload to finish: a hang, not a measurement


# --- the server: a copy of the checkout, edited between reloads ------------------------------


def checkout_copy(folder: Path) -> Path:
    """What `python -m patrons` needs of the checkout (resources.in_checkout), in `folder`:
    run from there, the server imports this copy, not the checkout the tests run from."""
    for name in ("patrons", "templates", "alembic", "deploy"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", folder)
    return folder


def with_generation(copy: Path, generation: int) -> None:
    """The copy's patrons/health.py, plus a route that answers `generation`."""
    health = copy / "patrons" / "health.py"
    original = (ROOT / "patrons" / "health.py").read_text()
    health.write_text(original + PROBE_ROUTE.format(path=PROBE, generation=generation))
    # a .pyc is trusted while the source's size and mtime (whole seconds) match: each edit
    # gets an mtime of its own, or a worker could run the previous generation's bytecode
    stamp = time.time() + 10 * generation
    os.utime(health, (stamp, stamp))


def database(tmp: Path) -> str:
    """SQLite in `tmp`, or an emptied PostgreSQL database beside TEST_DATABASE_URL's (one per
    pytest-xdist worker, kept between runs like the workers' own: emptying it is quicker)."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        return f"sqlite:///{tmp / 'patrons.db'}"
    scratch = worker_database(url, f"reload_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
    reset_database(scratch)
    return scratch


@contextmanager
def production_server(copy: Path, env: dict[str, str], log: Path) -> Iterator[Server]:
    """`python -m patrons` run from `copy`, WORKERS workers on a free loopback port."""
    port = free_port()
    env = {**env, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(WORKERS), "WEB_THREADS": "4"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "patrons"], env=env, cwd=copy, stdout=out, stderr=out
        )
    server = Server(process, f"http://127.0.0.1:{port}", copy, log)
    try:
        wait_until_answering(server.base + "/healthz", process, DEADLINE)
        yield server
    finally:
        workers = {pid: getattr(stat(pid), "started", None) for pid in children(process.pid)}
        stop(process)
        for pid, started in workers.items():  # workers outliving a master that was killed
            if running(pid, started):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    copy: Path
    log: Path

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


# --- the workers, as /proc shows them ---------------------------------------------------------


def children(pid: int) -> list[int]:
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except OSError:
        return []


class Stat(NamedTuple):
    state: str  # "Z": a zombie, exited
    started: int  # clock ticks after boot: tells a process from a later one given its pid


def stat(pid: int) -> Stat | None:
    """None once the process is gone (proc(5): /proc/<pid>/stat)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return Stat(fields[0], int(fields[19]))


def running(pid: int, started: int | None) -> bool:
    """The process that started at `started` is still running (not a zombie)."""
    info = stat(pid)
    return info is not None and info.started == started and info.state not in ("Z", "X")


def socket_inodes(pid: int) -> set[str]:
    """The inodes (hex, as fdinfo writes them) of the process's sockets."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        match = re.fullmatch(r"socket:\[(\d+)\]", _readlink(fd))
        if match:
            found.add(f"{int(match.group(1)):x}")
    return found


def accepting(pid: int, listeners: set[str]) -> bool:
    """The process polls one of the listening sockets: it takes new connections."""
    pattern = re.compile(rf"^tfd:.*\sino:({'|'.join(listeners)})\s", re.M)
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            if _readlink(fd) == "anon_inode:[eventpoll]" and pattern.search(
                Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
            ):
                return True
    except OSError:  # it exited meanwhile
        return False
    return False


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


@dataclass
class Sample:
    at: float
    workers: dict[int, bool]  # pid: accepting (living workers only: no zombie)


class Watcher(threading.Thread):
    """Samples the master's workers until stopped; remembers each worker's start time."""

    def __init__(self, master: int) -> None:
        super().__init__(daemon=True)
        self.master = master
        self.listeners = socket_inodes(master)  # the master holds only its listening sockets
        self.samples: list[Sample] = []
        self.started: dict[int, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append(self.sample())
            time.sleep(0.005)

    def sample(self) -> Sample:
        workers = {}
        for pid in children(self.master):
            info = stat(pid)
            if info is None or info.state in ("Z", "X"):
                continue
            self.started.setdefault(pid, info.started)
            workers[pid] = accepting(pid, self.listeners)
        return Sample(time.monotonic(), workers)

    def wait_for(self, settled: Callable[[Sample], bool], what: str, server: Server) -> Sample:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            latest = self.samples[-1] if self.samples else Sample(0, {})
            if settled(latest):
                return latest
            assert server.process.poll() is None, f"the master exited\n{server.log_tail()}"
            time.sleep(0.02)
        raise AssertionError(
            f"{what} not within {DEADLINE:.0f} s; workers (pid: accepting) {latest.workers}\n"
            + server.log_tail()
        )


# --- readers -------------------------------------------------------------------------------


@dataclass
class Answer:
    path: str
    sent: float
    done: float
    status: int | None  # None: no answer (the error says why)
    body: bytes = b""
    error: str = ""


@dataclass
class Readers:
    base: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def read(self, offset: int) -> None:
        pages = cycle(PAGES[offset % len(PAGES) :] + PAGES[: offset % len(PAGES)])
        while not self.stop.is_set():
            path = next(pages)
            sent = time.monotonic()
            try:  # urllib sends "Connection: close": a new connection for every request
                with urllib.request.urlopen(self.base + path, timeout=60) as response:  # noqa: S310
                    answer = Answer(path, sent, time.monotonic(), response.status, response.read())
            except urllib.error.HTTPError as exc:
                answer = Answer(path, sent, time.monotonic(), exc.code, exc.read())
            except OSError as exc:  # refused, reset, timed out...
                answer = Answer(path, sent, time.monotonic(), None, error=repr(exc))
            self.answers.append(answer)
            time.sleep(PAUSE)

    def wait_for_probe(self, sent_after: float) -> None:
        deadline = time.monotonic() + DEADLINE
        while not any(a.path == PROBE and a.sent >= sent_after for a in self.answers[-50:]):
            assert time.monotonic() < deadline, "the readers stopped"
            time.sleep(0.02)

    def generations(self, since: float, until: float) -> set[int]:
        """The generations the probe answered, for requests sent in [since, until)."""
        return {
            json.loads(a.body)["generation"]
            for a in self.answers
            if a.path == PROBE and a.status == 200 and since <= a.sent < until
        }


@dataclass
class Reload:
    number: int
    hup: float
    done: float
    old: set[int]
    new: set[int]
    leftovers: list[int]  # old workers still running once the new ones all serve


# --- the test -------------------------------------------------------------------------------


def test_a_reload_under_load_refuses_nothing_and_brings_up_the_new_code(tmp_path: Path) -> None:
    copy = checkout_copy(tmp_path / "checkout")
    with_generation(copy, 0)
    env = app_env(database(tmp_path), tmp_path / "instance")
    migrate_and_seed(env)
    with production_server(copy, env, tmp_path / "gunicorn.log") as server:
        reloads, readers, watcher, listeners = reload_under_load(server)
        assert server.process.poll() is None, "the master exited"
        assert socket_inodes(server.process.pid) == listeners, "the listener was replaced"

    failed = [a for a in readers.answers if a.status != 200]
    assert not failed, f"{len(failed)} of {len(readers.answers)} requests failed: {failed[:5]}"
    for reload in reloads:
        during = [a for a in readers.answers if a.sent < reload.done and a.done > reload.hup]
        assert during, f"reload {reload.number}: no request was made during it"
        samples = [s for s in watcher.samples if reload.hup <= s.at <= reload.done]
        assert len(samples) >= 5, f"reload {reload.number}: /proc was hardly sampled"
        nobody = [
            s for s in samples if not any(s.workers.values()) and not reload.old & s.workers.keys()
        ]
        assert not nobody, (
            f"reload {reload.number}: at {len(nobody)} of {len(samples)} samples no worker took "
            f"connections and the old ones were gone: {[s.workers for s in nobody[:3]]}"
        )
        assert len(reload.new) == WORKERS
        assert not reload.old & reload.new, f"reload {reload.number}: old workers are still in use"
        assert not reload.leftovers, f"reload {reload.number}: old workers still running"
        # every request made after the reload answered by the code as edited before it
        until = reloads[reload.number].hup if reload.number < len(reloads) else float("inf")
        answered = readers.generations(reload.done, until)
        assert answered == {reload.number}, f"reload {reload.number}: code answered {answered}"


def reload_under_load(server: Server) -> tuple[list[Reload], Readers, Watcher, set[str]]:
    master = server.process.pid
    watcher = Watcher(master)
    listeners = set(watcher.listeners)
    assert listeners, "the master holds no listening socket"
    readers = Readers(server.base)
    threads = [
        threading.Thread(target=readers.read, args=(n,), daemon=True) for n in range(CLIENTS)
    ]
    reloads: list[Reload] = []
    watcher.start()
    try:
        current = watcher.wait_for(all_new_and_serving(set()), "start", server)
        for thread in threads:
            thread.start()
        readers.wait_for_probe(sent_after=current.at)  # the load is on
        for number in range(1, RELOADS + 1):
            with_generation(server.copy, number)
            old = set(current.workers)
            hup = time.monotonic()
            os.kill(master, signal.SIGHUP)
            current = watcher.wait_for(all_new_and_serving(old), f"reload {number}", server)
            leftovers = [pid for pid in old if running(pid, watcher.started.get(pid))]
            reloads.append(Reload(number, hup, current.at, old, set(current.workers), leftovers))
            readers.wait_for_probe(sent_after=current.at)  # for the generation check
    finally:
        readers.stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=90)
        watcher.done.set()
        watcher.join(timeout=10)
    return reloads, readers, watcher, listeners


def all_new_and_serving(old: set[int]) -> Callable[[Sample], bool]:
    def settled(sample: Sample) -> bool:
        workers = sample.workers
        return len(workers) == WORKERS and not old & workers.keys() and all(workers.values())

    return settled


def test_the_master_loads_nothing_a_new_version_could_change() -> None:
    """What Gunicorn's master has imported its workers inherit, and a reload cannot replace:
    `python -m patrons` loads only the package's top, `core` and the file finder there (the
    app is imported by each worker)."""
    probe = (
        "import sys, patrons.__main__;"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'patrons')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert set(loaded) <= {"patrons", "patrons.__main__", "patrons.core", "patrons.core.resources"}
    assert "patrons.__main__" in loaded
