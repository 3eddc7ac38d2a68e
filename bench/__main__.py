"""Run the benchmarks: every bench/<name>.py that defines main(), or the ones named.

    python -m bench               # all of them, in name order
    python -m bench article       # just bench/article.py
    python -m bench --table       # no run: the table of the latest results (or of those named)

Modules are found by reading their source (a top-level `def main`), so helper modules
such as bench/wsgi.py are never imported here. The exit status is the highest of the
benchmarks' own (0 = measured, whatever the numbers; 2 = a tool such as wrk is missing).

A run ends with one table (bench/summary.py): each benchmark's headline figures with their
baseline, the ratio, the goal the benchmark states and PASS or FAIL against it, then the
machine they were measured on. It is Markdown: the README's benchmark section shows it.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path
from typing import Any

from bench import harness, summary

BENCH_DIR = Path(__file__).resolve().parent


def _defines_main(path: Path) -> bool:
    tree = ast.parse(path.read_text(), filename=str(path))
    return any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)


def available() -> list[str]:
    return [
        path.stem
        for path in sorted(BENCH_DIR.glob("*.py"))
        if not path.stem.startswith("_") and _defines_main(path)
    ]


def print_table(entries: summary.Entries) -> None:
    print("\n### summary\n")
    print(summary.render(entries))


def main(argv: list[str]) -> int:
    names = available()
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__.strip())
        print("\nAvailable:", ", ".join(names) or "(none)")
        return 0
    table_only = "--table" in argv
    argv = [arg for arg in argv if arg != "--table"]
    unknown = [arg for arg in argv if arg not in names]
    if unknown:
        print(f"Unknown benchmark(s): {', '.join(unknown)}", file=sys.stderr)
        print(f"Available: {', '.join(names) or '(none)'}", file=sys.stderr)
        return 2
    if table_only:
        found = summary.latest_results(argv or names)
        print(
            summary.render({n: found.get(n, "no result in bench/results/") for n in argv or names})
        )
        return 0
    status = 0
    entries: dict[str, dict[str, Any] | str] = {}
    for name in argv or names:
        print(f"\n### bench {name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        already = len(harness.WRITTEN)
        code = int(module.main() or 0)
        status = max(status, code)
        written = [p for p in harness.WRITTEN[already:] if summary.name_of(p) == name]
        entries[name] = summary.read(written[-1]) if written else f"exit {code}, no result"
        if code == 130:  # interrupted: run nothing more
            break
    print_table(entries)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
