"""Reload under load: what readers see while `kill -HUP` replaces Gunicorn's workers, with
deploy/gunicorn.conf.py's reload hooks and without them (the baseline), in the same run.

    python -m bench reload          # or: make bench BENCH=reload

Both servers serve the demo (a temporary SQLite database, migrated and seeded through the
app's own commands) in production mode: the shipped deploy/gunicorn.conf.py, and a generated
config that takes every setting from it but none of its server hooks (Gunicorn's own HUP).
Reader threads ask for /healthz and an article on a fixed schedule, a new connection each
time, while the master gets HUP a few times, a window apart. Each request is timed from when
it was due: a reader stuck behind a stalled request owes the ones it could not send, and
they count as waiting too (no coordinated omission). Printed for both: the requests that
overlapped a reload window, their max and p99 latency, the longest stretch of a window in
which no answer came back, the requests failed (any time), and the ratios no hooks / hooks.

Settings (environment): BENCH_WORKERS (2), BENCH_THREADS (4), BENCH_WORKER_CLASS (gthread |
sync: the issue's case), BENCH_CLIENTS (4 reader threads), BENCH_RATE (50 requests/s each),
BENCH_RELOADS (3), BENCH_RELOAD_WINDOW (5 s after each HUP; raise it if a reload outlasts
it: the bench says so), BENCH_WARMUP (2 s). Linux only (the workers are read from /proc):
exit 2 elsewhere. Exit 1 if a server fails to start or a reload never finishes.
"""

from __future__ import annotations

import os
import runpy
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from itertools import cycle, pairwise
from pathlib import Path

from bench import harness

SHIPPED_CONFIG = harness.ROOT / "deploy" / "gunicorn.conf.py"
PAGES = ("/healthz", "/articles/bilyi-brid-ferry-returns")  # the latter: a demo article
BASELINE_CONFIG = '''"""deploy/gunicorn.conf.py without its server hooks (bench/reload.py)."""
import runpy

_shipped = runpy.run_path({shipped!r})
globals().update(
    {{name: value for name, value in _shipped.items() if name not in {hooks!r}}}
)
'''


def server_hooks() -> set[str]:
    from gunicorn.config import KNOWN_SETTINGS  # type: ignore[import-untyped]

    return {setting.name for setting in KNOWN_SETTINGS if setting.section == "Server Hooks"}


def baseline_config(folder: Path) -> tuple[Path, list[str]]:
    """The generated config, and the hooks of the shipped one it leaves out."""
    path = folder / "gunicorn-no-hooks.conf.py"
    hooks = server_hooks()
    path.write_text(BASELINE_CONFIG.format(shipped=str(SHIPPED_CONFIG), hooks=sorted(hooks)))
    shipped = runpy.run_path(str(SHIPPED_CONFIG))
    return path, sorted(hooks & shipped.keys())


def flask_command(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "patrons", *args],
        cwd=harness.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise harness.ServerError(f"flask {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def environments(tmp: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The demo's (development: seed-demo refuses production) and the servers' environment."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    base = {name: os.environ[name] for name in keep if name in os.environ}
    base.update(
        DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
        PATRONS_INSTANCE=str(tmp / "instance"),
        SITE_URL="http://127.0.0.1",
    )
    serve = {
        **base,
        "PATRONS_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "MAIL_URL": f"file://{tmp / 'outbox'}",
        "LOG_LEVEL": "WARNING",
    }
    return {**base, "PATRONS_ENV": "development"}, serve


# --- load ------------------------------------------------------------------------------


@dataclass
class Request:
    sent: float  # when it was due
    done: float
    ok: bool
    real: bool = True  # False: one a reader could not send, waiting behind a slow one

    @property
    def ms(self) -> float:
        return (self.done - self.sent) * 1000


@dataclass
class Load:
    """Reader threads asking for PAGES, one new connection a request, until stopped, each on
    a fixed schedule (`rate` requests/s). A request slower than the interval holds its reader
    up: the requests it would have sent meanwhile are counted as answered when it was, timed
    from when each was due (HdrHistogram's correction for coordinated omission), and the
    reader goes on at its next due time instead of catching up."""

    server: harness.Server
    clients: int
    rate: int
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for n in range(self.clients):
            thread = threading.Thread(target=self._read, args=(n,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def _read(self, n: int) -> None:
        pages = cycle(PAGES[n % 2 :] + PAGES[: n % 2])
        interval = 1 / self.rate
        due = time.monotonic() + n * interval / self.clients  # the readers spread out
        while not self.stopping.is_set():
            url = self.server.url(next(pages))
            time.sleep(max(0.0, due - time.monotonic()))
            sent = due
            try:
                with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
                    response.read()
                    ok = response.status == 200
            except urllib.error.HTTPError as exc:
                ok = False
                self.errors.append(f"HTTP {exc.code}")
            except OSError as exc:
                ok = False
                self.errors.append(repr(exc))
            done = time.monotonic()
            self.requests.append(Request(sent, done, ok))
            due = sent + interval
            while due < done:  # the ones this reader could not send meanwhile
                self.requests.append(Request(due, done, ok=True, real=False))
                due += interval


# --- one server --------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    config: Path
    windows: list[tuple[float, float]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    late: int = 0  # reloads whose workers were not all replaced by the window's end

    def in_windows(self) -> list[Request]:
        return [
            r
            for r in self.requests
            if any(r.sent < end and r.done > start for start, end in self.windows)
        ]

    def longest_silence_ms(self) -> float:
        """The longest stretch of a window in which no answer came back."""
        longest = 0.0
        for start, end in self.windows:
            answers = sorted(r.done for r in self.requests if start <= r.done <= end)
            edges = [start, *answers, end]
            longest = max(longest, *(b - a for a, b in pairwise(edges)))
        return longest * 1000

    def summary(self) -> dict[str, float | int]:
        latencies = sorted(r.ms for r in self.in_windows())
        p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else float("nan")
        return {
            "requests": sum(r.real for r in self.requests),
            "requests_in_windows": sum(r.real for r in self.in_windows()),
            "timed_in_windows": len(latencies),
            "max_ms": latencies[-1] if latencies else float("nan"),
            "p99_ms": p99,
            "median_ms": statistics.median(latencies) if latencies else float("nan"),
            "longest_silence_ms": self.longest_silence_ms(),
            "failed": sum(not r.ok for r in self.requests),
            "failed_in_windows": sum(not r.ok for r in self.in_windows()),
            "late_reloads": self.late,
        }


def start_server(side: Side, env: dict[str, str], settings: harness.GunicornSettings,
                 tmp: Path) -> harness.Server:  # fmt: skip
    port = harness.free_port()
    env = {
        **env,
        "BIND": f"{harness.HOST}:{port}",
        "WEB_CONCURRENCY": str(settings.workers),
        "WEB_THREADS": str(settings.threads),
    }
    command = [sys.executable, "-m", "gunicorn", "--config", str(side.config)]
    if settings.worker_class != "gthread":
        command.append(f"--worker-class={settings.worker_class}")
    log_path = tmp / f"gunicorn-{side.name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=harness.ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl+C reaches this script, which stops the server
        )
    return harness.Server(side.name, port, process, log_path)


def reload_under_load(side: Side, server: harness.Server, workers: int, settings: Settings) -> None:
    load = Load(server, settings.clients, settings.rate)
    load.start()
    try:
        time.sleep(settings.warmup)
        for n in range(settings.reloads):
            old = set(server.worker_pids())
            start = time.monotonic()
            os.kill(server.process.pid, signal.SIGHUP)
            time.sleep(settings.window)
            side.windows.append((start, time.monotonic()))
            if not replaced(server, old, workers, deadline=0):
                side.late += 1
                if not replaced(server, old, workers, deadline=120):
                    raise harness.ServerError(f"reload {n + 1} never finished")
            print(f"  {side.name}: reload {n + 1}/{settings.reloads} done", flush=True)
        time.sleep(1)
    finally:
        load.stop()
    side.requests, side.errors = load.requests, load.errors


def replaced(server: harness.Server, old: set[int], workers: int, deadline: float) -> bool:
    """All workers are new ones, as many as configured, and the server answers."""
    until = time.monotonic() + deadline
    while True:
        pids = set(server.worker_pids())
        if len(pids) == workers and not pids & old:
            status, _ = harness.http_get(server.url(PAGES[0]), timeout=60)
            if status == 200:
                return True
        if time.monotonic() >= until:
            return False
        time.sleep(0.1)


# --- the run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    clients: int
    rate: int
    reloads: int
    window: int
    warmup: int

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            clients=harness.env_int("BENCH_CLIENTS", 4),
            rate=harness.env_int("BENCH_RATE", 50),
            reloads=harness.env_int("BENCH_RELOADS", 3),
            window=harness.env_int("BENCH_RELOAD_WINDOW", 5),
            warmup=harness.env_int("BENCH_WARMUP", 2),
        )


def report(sides: list[Side], config: dict[str, object]) -> dict[str, object]:
    hooks, baseline = (side.summary() for side in sides)
    rows = [
        ("requests sent (all)", "requests", "{:.0f}"),
        ("requests sent overlapping a reload window", "requests_in_windows", "{:.0f}"),
        ("  with those held up (timed)", "timed_in_windows", "{:.0f}"),
        ("max latency in the windows, ms", "max_ms", "{:.0f}"),
        ("p99 latency in the windows, ms", "p99_ms", "{:.0f}"),
        ("median latency in the windows, ms", "median_ms", "{:.1f}"),
        ("longest stretch with no answer, ms", "longest_silence_ms", "{:.0f}"),
        ("requests failed (any time)", "failed", "{:.0f}"),
        ("reloads that outlasted their window", "late_reloads", "{:.0f}"),
    ]
    width = max(len(label) for label, _, _ in rows)
    print()
    print(f"Reload (HUP) under load  ({config['gunicorn']}; {config['load']})")
    print(f"{'':<{width}}  {'hooks':>10}  {'no hooks':>10}")
    for label, key, fmt in rows:
        print(f"{label:<{width}}  {fmt.format(hooks[key]):>10}  {fmt.format(baseline[key]):>10}")

    def ratio(key: str) -> float:
        return baseline[key] / hooks[key] if hooks[key] else float("nan")

    ratios = {key: ratio(key) for key in ("max_ms", "p99_ms", "longest_silence_ms")}
    print(
        f"{'ratio no hooks / hooks':<{width}}  max {ratios['max_ms']:.1f}x, "
        f"p99 {ratios['p99_ms']:.1f}x, longest stretch {ratios['longest_silence_ms']:.1f}x"
    )
    if hooks["late_reloads"] or baseline["late_reloads"]:
        print("  some reload outlasted its window: raise BENCH_RELOAD_WINDOW")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for side in sides:
        if side.errors:
            print(f"  {side.name}: first errors: {side.errors[:3]}")
    return {"hooks": hooks, "no_hooks": baseline, "ratios": ratios}


def main() -> int:
    if not Path("/proc/self/task").is_dir():
        print("bench reload reads the workers from /proc: Linux only", file=sys.stderr)
        return 2
    gunicorn_settings = harness.GunicornSettings.from_env()
    settings = Settings.from_env()
    started = time.monotonic()
    with harness.sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmpdir = Path(tmp)
        baseline, left_out = baseline_config(tmpdir)
        sides = [Side("hooks", SHIPPED_CONFIG), Side("no hooks", baseline)]
        config: dict[str, object] = {
            "gunicorn": gunicorn_settings.describe(),
            "load": (
                f"{settings.clients} readers x {settings.rate} req/s, {settings.reloads} HUPs "
                f"{settings.window}s apart, {settings.warmup}s warm-up"
            ),
            "baseline": f"deploy/gunicorn.conf.py without {', '.join(left_out) or 'any hook'}",
        }
        print(f"Baseline: {config['baseline']}")
        try:
            seed_env, serve_env = environments(tmpdir)
            flask_command(seed_env, "db-upgrade")
            flask_command(seed_env, "seed-demo")
            for side in sides:
                server = start_server(side, serve_env, gunicorn_settings, tmpdir)
                try:
                    harness.wait_until_ready(server, PAGES[1], 120, gunicorn_settings.workers)
                    reload_under_load(side, server, gunicorn_settings.workers, settings)
                finally:
                    harness.stop(server)
        except (KeyboardInterrupt, harness.ServerError) as exc:
            return harness.stopped(exc)
    summary = report(sides, config)
    hooks, no_hooks = summary["hooks"], summary["no_hooks"]
    assert isinstance(hooks, dict) and isinstance(no_hooks, dict)
    harness.headline("max latency in the reload windows, hooks vs no hooks",
                     hooks["max_ms"], "ms", no_hooks["max_ms"])  # fmt: skip
    harness.headline("requests failed, hooks vs no hooks", hooks["failed"], "",
                     no_hooks["failed"])  # fmt: skip
    path = harness.write_result(
        "reload",
        {
            "benchmark": "reload",
            **summary,
            "config": {
                **config,
                "gunicorn_settings": vars(gunicorn_settings),
                "settings": vars(settings),
                "patrons_env": "production",
                "database": "SQLite (temporary)",
            },
            "environment": harness.environment(),
            "elapsed_seconds": round(time.monotonic() - started, 1),
        },
    )
    print(f"Result written to {path.relative_to(harness.ROOT)}")
    return 0
