"""The table `python -m bench` ends with: every benchmark's headline figures, baselines,
ratios and goals, and the machine they were measured on. `python -m bench --table` prints
it from the latest result of each benchmark in bench/results/ without running anything.

A benchmark reports its headline figures with `harness.headline(...)` (saved in its result
JSON under "headlines"). For a result written before bench/article.py and bench/votes.py
called `harness.headline`, `LEGACY` reads the same figures from the fields they wrote.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import harness

RESULT_NAME = re.compile(r"^(?P<name>[a-z_]+)-(?P<stamp>\d{8}T\d{6}Z)\.json$")
COLUMNS = ("benchmark", "figure", "value", "baseline", "ratio", "goal", "result")


@dataclass(frozen=True)
class Row:
    benchmark: str
    figure: str
    value: float
    unit: str = ""
    baseline: float | None = None
    goal: str | None = None
    ratio_goal: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None:
            return None
        return self.value / self.baseline if self.baseline else math.nan

    @property
    def passed(self) -> bool | None:
        """True or False against the goals; None if the bench states none for it."""
        checks = []
        if self.goal:
            checks.append(harness.meets(self.goal, self.value))
        if self.ratio_goal:
            ratio = self.ratio
            checks.append(ratio is not None and harness.meets(self.ratio_goal, ratio))
        return all(checks) if checks else None

    def cells(self) -> list[str]:
        goals = [f"{self.goal} {self.unit}".strip()] if self.goal else []
        if self.ratio_goal:
            goals.append(f"ratio {self.ratio_goal}")
        ratio = self.ratio
        verdict = {True: "PASS", False: "FAIL", None: "-"}[self.passed]
        return [
            self.benchmark,
            self.figure,
            with_unit(self.value, self.unit),
            "-" if self.baseline is None else with_unit(self.baseline, self.unit),
            "-" if ratio is None else number(ratio, ratio=True),
            "; ".join(goals) or "-",
            verdict,
        ]


def number(value: float, ratio: bool = False) -> str:
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if ratio:
        return f"{value:.2f}"
    if value.is_integer() and abs(value) < 1e12:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def with_unit(value: float, unit: str) -> str:
    text = number(value)
    if not unit:
        return text
    return f"{text}{unit}" if unit.startswith("/") else f"{text} {unit}"


# --- results written before harness.headline, or by benches that do not call it yet ----


def from_article_result(result: Mapping[str, Any]) -> list[Row]:
    """An older bench/article.py result: its headline from the fields it wrote."""
    article, bare = result.get("article", {}), result.get("bare", {})
    return [
        Row(
            "article",
            "anonymous article page vs bare route, req/s",
            float(article.get("requests_per_second", math.nan)),
            "/s",
            float(bare.get("requests_per_second", math.nan)),
            ratio_goal=f">= {result.get('target_ratio', 0.8)}",
        )
    ]


def from_votes_result(result: Mapping[str, Any]) -> list[Row]:
    """An older bench/votes.py result: its headlines from the fields it wrote."""
    failures = sum(int(result.get(k, 0) or 0) for k in ("rows_lost", "rows_duplicated", "errors"))
    return [
        Row(
            "votes",
            "votes and withdrawals/s vs bare writes",
            float(result.get("app_per_second", math.nan)),
            "/s",
            float(result.get("baseline_per_second", math.nan)),
        ),
        Row("votes", "rows lost + duplicated + non-303 answers", float(failures), goal="== 0"),
    ]


LEGACY: dict[str, Callable[[Mapping[str, Any]], list[Row]]] = {
    "article": from_article_result,
    "votes": from_votes_result,
}


def rows_of(name: str, result: Mapping[str, Any]) -> list[Row]:
    """A result's headline figures: its "headlines", else what LEGACY reads from it."""
    headlines = result.get("headlines")
    if headlines:
        return [
            Row(
                name,
                str(h["figure"]),
                float(h["value"]),
                str(h.get("unit") or ""),
                None if h.get("baseline") is None else float(h["baseline"]),
                h.get("goal"),
                h.get("ratio_goal"),
            )
            for h in headlines
        ]
    if name in LEGACY:
        return LEGACY[name](result)
    return []


# --- the table ---------------------------------------------------------------------------


Entries = Mapping[str, Mapping[str, Any] | str]


def build_table(entries: Entries) -> str:
    """A Markdown table (readable as text, pasted as is into the README) of the headline
    figures of each benchmark's result, in the order given; a benchmark given a string
    instead of a result was not measured, and the string says why (e.g. "exit 2")."""
    lines: list[list[str]] = []
    for name, result in entries.items():
        if isinstance(result, str):
            lines.append([name, f"not measured ({result})", *["-"] * 5])
            continue
        rows = rows_of(name, result)
        if not rows:
            lines.append([name, "(no headline figures in this result)", *["-"] * 5])
        lines += [row.cells() for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(COLUMNS)]
    right = {2, 3, 4}

    def fmt(cells: Iterable[str]) -> str:
        padded = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([fmt(COLUMNS), rule, *(fmt(line) for line in lines)])


def machine_line(entries: Entries) -> str:
    """The machine of the latest result: CPUs, load average then, Python, date, commit."""
    environments = [
        r["environment"]
        for r in entries.values()
        if not isinstance(r, str) and r.get("environment")
    ]
    if not environments:
        return "Machine: unknown (no environment in the results)"
    dated = sorted(environments, key=lambda e: str(e.get("measured_at", "")))
    env = dated[-1]
    load = env.get("load_average") or []
    dates = sorted({str(e["measured_at"])[:16].replace("T", " ") for e in dated
                    if e.get("measured_at")})  # fmt: skip
    when = f"{dates[0]} UTC" if dates else "date unknown"
    if len(dates) > 1:
        when = f"{dates[0]} to {dates[-1]} UTC"
    parts = [
        f"{env.get('cpus', '?')} CPUs" + (f" ({env['cpu_model']})" if env.get("cpu_model") else ""),
        f"load average {' / '.join(f'{x:.2f}' for x in load)} (1/5/15 min, at the start)"
        if load
        else "",
        f"Python {env.get('python', '?')}",
        str(env.get("platform") or ""),
        when,
        f"commit {env['git_commit']}" if env.get("git_commit") else "",
    ]
    return "Machine: " + ", ".join(p for p in parts if p)


def render(entries: Entries) -> str:
    return build_table(entries) + "\n\n" + machine_line(entries)


# --- reading results ---------------------------------------------------------------------


def read(path: Path) -> dict[str, Any]:
    """A result file; its environment gets the file's time if it has none of its own."""
    result = dict(json.loads(path.read_text()))
    match = RESULT_NAME.match(path.name)
    env = result.get("environment")
    if match and isinstance(env, dict) and not env.get("measured_at"):
        stamp = match.group("stamp")
        env["measured_at"] = (f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:"
                              f"{stamp[11:13]}:{stamp[13:15]}+00:00")  # fmt: skip
    return result


def name_of(path: Path) -> str | None:
    match = RESULT_NAME.match(path.name)
    return match.group("name") if match else None


def latest_results(names: Iterable[str], folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """The newest result file of each benchmark named (in bench/results/ unless `folder`),
    read; names without one are left out."""
    wanted = list(names)
    newest: dict[str, Path] = {}
    # a name's stamps sort by time
    for path in sorted((folder or harness.RESULTS_DIR).glob("*.json")):
        name = name_of(path)
        if name in wanted:
            newest[name] = path
    return {name: read(newest[name]) for name in wanted if name in newest}
