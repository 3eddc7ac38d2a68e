"""Shared pieces of the benchmarks: gunicorn servers, wrk runs, worker memory, results.

Loopback only: servers bind 127.0.0.1 on a free port, wrk loads them for a fixed time,
and every server started here is stopped again (by its own pid) when the block exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class GunicornSettings:
    """The same for every server of a benchmark, so only the application differs."""

    workers: int = 2
    worker_class: str = "gthread"
    threads: int = 4
    keep_alive: int = 5
    timeout: int = 30

    @classmethod
    def from_env(cls) -> GunicornSettings:
        worker_class = os.environ.get("BENCH_WORKER_CLASS", cls.worker_class).strip()
        if worker_class not in {"sync", "gthread"}:
            raise SystemExit("BENCH_WORKER_CLASS must be sync or gthread")
        return cls(
            workers=env_int("BENCH_WORKERS", cls.workers),
            worker_class=worker_class,
            threads=env_int("BENCH_THREADS", cls.threads) if worker_class == "gthread" else 1,
        )

    def args(self) -> list[str]:
        args = [
            f"--workers={self.workers}",
            f"--worker-class={self.worker_class}",
            f"--keep-alive={self.keep_alive}",
            f"--timeout={self.timeout}",
            "--graceful-timeout=5",
            "--log-level=warning",
        ]
        if self.worker_class == "gthread":
            args.append(f"--threads={self.threads}")
        return args

    def describe(self) -> str:
        if self.worker_class == "gthread":
            return f"{self.workers} workers x {self.threads} threads (gthread), keep-alive"
        return f"{self.workers} sync workers (no keep-alive)"


@dataclass(frozen=True)
class WrkSettings:
    threads: int = 2
    connections: int = 16
    duration: int = 10
    warmup: int = 2
    timeout: int = 5

    @classmethod
    def from_env(cls) -> WrkSettings:
        return cls(
            threads=env_int("BENCH_WRK_THREADS", cls.threads),
            connections=env_int("BENCH_CONNECTIONS", cls.connections),
            duration=env_int("BENCH_DURATION", cls.duration),
            warmup=env_int("BENCH_WARMUP", cls.warmup),
        )

    def command(self, wrk: str, url: str, seconds: int) -> list[str]:
        return [
            wrk,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds}s",
            f"--timeout={self.timeout}s",
            "--latency",
            url,
        ]


def find_wrk() -> str | None:
    return shutil.which("wrk")


WRK_MISSING = (
    "wrk is not installed; the benchmarks use it to load the servers.\n"
    "Install it (Debian/Ubuntu: `sudo apt-get install wrk`, macOS: `brew install wrk`) "
    "and run `make bench` again."
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --- gunicorn --------------------------------------------------------------------------


class ServerError(RuntimeError):
    """A server did not start or did not answer as expected."""


def stopped(exc: BaseException) -> int:
    """A benchmark's exit status when it stops early, said on standard error: 130 for Ctrl+C
    (its servers are stopped by their own blocks), 1 when a server failed. Use as
    `except (KeyboardInterrupt, harness.ServerError) as exc: return harness.stopped(exc)`."""
    if isinstance(exc, KeyboardInterrupt):
        print("\nInterrupted: servers stopped.", file=sys.stderr)
        return 130
    print(f"Benchmark failed: {exc}", file=sys.stderr)
    return 1


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid)

    def workers_cpu_seconds(self) -> float:
        """User + system CPU time used so far by the workers (not the master)."""
        return sum(cpu_seconds(pid) for pid in self.worker_pids())

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def gunicorn(
    name: str,
    app_spec: str,
    settings: GunicornSettings,
    env: dict[str, str],
    log_dir: Path,
    ready_path: str,
    ready_timeout: float = 60.0,
) -> Iterator[Server]:
    """A gunicorn master on 127.0.0.1:<free port>, stopped (master and workers) on exit."""
    port = free_port()
    log_path = log_dir / f"gunicorn-{name}.log"
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        f"--bind={HOST}:{port}",
        f"--chdir={ROOT}",
        *settings.args(),
        app_spec,
    ]
    with log_path.open("wb") as log:
        # A session of its own: Ctrl+C in the terminal reaches this script, which then
        # stops the server itself, instead of racing gunicorn's own SIGINT handling.
        process = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, port, process, log_path)
    try:
        wait_until_ready(server, ready_path, ready_timeout, settings.workers)
        yield server
    finally:
        stop(server)


def wait_until_ready(server: Server, path: str, timeout: float, workers: int) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(
                f"gunicorn ({server.name}) exited with {server.process.returncode}:\n"
                + server.log_tail()
            )
        try:
            status, _ = http_get(server.url(path), timeout=5)
            if status == 200 and len(server.worker_pids()) >= workers:
                return
            last_error = f"HTTP {status}"
        except (OSError, urllib.error.URLError) as exc:
            last_error = str(exc)
        time.sleep(0.2)
    raise ServerError(
        f"gunicorn ({server.name}) did not answer {path} within {timeout:.0f}s "
        f"({last_error}):\n{server.log_tail()}"
    )


def stop(server: Server) -> None:
    """SIGTERM to the master (it stops its workers); SIGKILL each by pid if that hangs."""
    process = server.process
    workers = server.worker_pids()
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=5)
    for pid in workers:  # workers outliving a killed master
        if _is_child_of(pid, process.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"User-Agent": "patrons-bench"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- processes and memory --------------------------------------------------------------


def _stat_ppid(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may contain spaces: parse after the last ")"
    return int(raw.rsplit(")", 1)[1].split()[1])


def cpu_seconds(pid: int) -> float:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw.rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _is_child_of(pid: int, parent: int) -> bool:
    return _stat_ppid(pid) == parent


def child_pids(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _stat_ppid(int(entry.name)) == parent:
            children.append(int(entry.name))
    return sorted(children)


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def workers_rss(server: Server) -> list[float]:
    return [m for m in (rss_mib(pid) for pid in server.worker_pids()) if m is not None]


# --- wrk -------------------------------------------------------------------------------


@dataclass
class WrkResult:
    url: str
    requests: int
    seconds: float
    requests_per_second: float
    latency_ms: dict[str, float]
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    transfer_per_second: str = ""
    worker_cpu_seconds: float = 0.0

    @property
    def cpu_us_per_request(self) -> float:
        """Server worker CPU per request: far less sensitive to a noisy machine than req/s."""
        return self.worker_cpu_seconds / self.requests * 1e6 if self.requests else float("nan")

    @property
    def p99_ms(self) -> float:
        return self.latency_ms.get("99%", float("nan"))

    @property
    def errors(self) -> int:
        return self.non_2xx_3xx + sum(self.socket_errors.values())


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(url: str, output: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", output, re.M)
    if rps is None or total is None:
        raise ServerError(f"could not parse wrk's output:\n{output}")
    latency = {
        pct: _to_ms(value, unit)
        for pct, value, unit in re.findall(r"^\s+(\d+%)\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True))
        if sock
        else {}
    )
    transfer = re.search(r"^Transfer/sec:\s+(\S+)", output, re.M)
    return WrkResult(
        url=url,
        requests=int(total.group(1)),
        seconds=_to_ms(total.group(2), total.group(3)) / 1000,
        requests_per_second=float(rps.group(1)),
        latency_ms=latency,
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
        transfer_per_second=transfer.group(1) if transfer else "",
    )


def run_wrk(wrk: str, settings: WrkSettings, server: Server, path: str, seconds: int) -> WrkResult:
    url = server.url(path)
    cmd = settings.command(wrk, url, seconds)
    cpu_before = server.workers_cpu_seconds()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    cpu_used = server.workers_cpu_seconds() - cpu_before
    if done.returncode != 0:
        raise ServerError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse_wrk(url, done.stdout)
    result.worker_cpu_seconds = round(cpu_used, 3)
    return result


# --- results ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, object]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": f"{platform.system()} {platform.release()}",
        "load_average": list(os.getloadavg()),
        "git_commit": commit + ("-dirty" if dirty else ""),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# --- headline figures ------------------------------------------------------------------
#
# Each benchmark reports the few figures it exists for with `headline(...)` before its
# `write_result(...)`: they are saved in its result JSON under "headlines", and
# `python -m bench` ends with one table of them for every benchmark run (bench/summary.py).

_HEADLINES: list[dict[str, object]] = []
WRITTEN: list[Path] = []  # the result files written by this process, in order

_GOAL = re.compile(r"^\s*(?:(<=|>=|<|>|==)\s*(-?[\d.]+)|(-?[\d.]+)\s*\.\.\s*(-?[\d.]+))\s*$")


def meets(goal: str, value: float) -> bool:
    """Whether `value` meets a goal written "<= 150", ">= 0.8", "< 10", "== 0" or
    "0.9..1.1" (both ends included). NaN meets nothing."""
    match = _GOAL.match(goal)
    if match is None:
        raise ValueError(f"not a goal: {goal!r} (e.g. '<= 150', '>= 0.8', '0.9..1.1')")
    if value != value:  # NaN
        return False
    op, bound, low, high = match.groups()
    if op is None:
        return float(low) <= value <= float(high)
    limit = float(bound)
    return {
        "<=": value <= limit,
        ">=": value >= limit,
        "<": value < limit,
        ">": value > limit,
        "==": value == limit,
    }[op]


def headline(
    figure: str,
    value: float,
    unit: str = "",
    baseline: float | None = None,
    *,
    goal: str | None = None,
    ratio_goal: str | None = None,
) -> None:
    """One headline figure of this run, with what it is measured against (`baseline`, in
    the same unit: the table shows value / baseline as the ratio) and the bench's goals, on
    the value (`goal`) or on the ratio (`ratio_goal`), written as `meets` reads them."""
    for written in (goal, ratio_goal):
        if written is not None:
            meets(written, 0.0)  # a goal that cannot be read fails here, not in the table
    _HEADLINES.append(
        {
            "figure": figure,
            "value": float(value),
            "unit": unit,
            "baseline": None if baseline is None else float(baseline),
            "goal": goal,
            "ratio_goal": ratio_goal,
        }
    )


def write_result(name: str, data: dict[str, object]) -> Path:
    """bench/results/<name>-<UTC stamp>.json, with the headlines reported since the last."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    if _HEADLINES:
        data = {**data, "headlines": list(_HEADLINES)}
        _HEADLINES.clear()
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    WRITTEN.append(path)
    return path


def _json_default(value: object) -> object:
    if isinstance(value, WrkResult):
        return {
            **asdict(value),
            "p99_ms": value.p99_ms,
            "cpu_us_per_request": value.cpu_us_per_request,
        }
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl+C, so the `finally` blocks stop the servers."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
