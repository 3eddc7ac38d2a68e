"""The table `python -m bench` ends with (bench/summary.py) and the headline figures each
benchmark reports for it (bench/harness.py): built from sample results, nothing timed."""

from __future__ import annotations

import json
import math

import pytest

from bench import __main__ as bench_main
from bench import harness, summary

ENV = {
    "python": "3.11.7",
    "cpus": 2,
    "cpu_model": "Test CPU",
    "platform": "Linux 6.1",
    "load_average": [0.5, 0.25, 0.125],
    "git_commit": "abc1234",
    "measured_at": "2026-12-06T18:00:00+00:00",
}


def headline(
    figure: str,
    value: float,
    unit: str = "",
    baseline: float | None = None,
    goal: str | None = None,
    ratio_goal: str | None = None,
) -> dict[str, object]:
    return {"figure": figure, "value": value, "unit": unit, "baseline": baseline,
            "goal": goal, "ratio_goal": ratio_goal}  # fmt: skip


def cells(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]


@pytest.mark.parametrize(
    ("goal", "value", "met"),
    [
        ("<= 150", 150, True),
        ("<= 150", 150.1, False),
        ("< 10", 9.99, True),
        ("< 10", 10, False),
        (">= 0.8", 0.8, True),
        (">= 0.8", 0.79, False),
        ("> 0", 0, False),
        ("== 0", 0, True),
        ("== 0", 1, False),
        ("0.90..1.10", 0.9, True),
        ("0.90..1.10", 1.1, True),
        ("0.90..1.10", 1.11, False),
        ("<= 150", math.nan, False),
    ],
)
def test_goals(goal, value, met):
    assert harness.meets(goal, value) is met


def test_a_goal_that_cannot_be_read_is_refused_when_reported():
    with pytest.raises(ValueError, match="not a goal"):
        harness.headline("x", 1, goal="fast")


def test_headlines_go_into_the_next_result_only(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path)
    harness.headline("dashboard", 120.5, "ms", 40, goal="<= 150", ratio_goal="< 10")
    first = harness.write_result("reports", {"environment": ENV})
    saved = json.loads(first.read_text())
    assert saved["headlines"] == [headline("dashboard", 120.5, "ms", 40.0, "<= 150", "< 10")]
    second = harness.write_result("reports", {"environment": ENV})
    assert "headlines" not in json.loads(second.read_text())
    assert harness.WRITTEN[-2:] == [first, second]
    assert summary.name_of(first) == "reports"


def test_the_table_shows_value_baseline_ratio_goal_and_verdict():
    results = {
        "reports": {
            "environment": ENV,
            "headlines": [
                headline("dashboard median", 120, "ms", 40, "<= 150", "< 10"),
                headline("dashboard at 2x", 300, "ms", 100, "<= 150"),
            ],
        },
        "login": {"environment": ENV, "headlines": [headline("sign-ins/s", 20, "/s", 25)]},
        "enumeration": {
            "environment": ENV,
            "headlines": [
                headline("/reset", 10.5, "ms", 10, ratio_goal="0.90..1.10"),
                headline("/signup", 13, "ms", 10, ratio_goal="0.90..1.10"),
            ],
        },  # fmt: skip
        "soak": {"environment": ENV},
        "webhooks": "exit 2, no result",
    }
    table = summary.build_table(results)
    header, rule = table.splitlines()[:2]
    assert [c.strip() for c in header.strip("|").split("|")] == list(summary.COLUMNS)
    assert set(rule) <= {"|", "-", ":"}
    assert cells(table) == [
        ["reports", "dashboard median", "120 ms", "40 ms", "3.00", "<= 150 ms; ratio < 10",
         "PASS"],
        ["reports", "dashboard at 2x", "300 ms", "100 ms", "3.00", "<= 150 ms", "FAIL"],
        ["login", "sign-ins/s", "20/s", "25/s", "0.80", "-", "-"],
        ["enumeration", "/reset", "10.5 ms", "10 ms", "1.05", "ratio 0.90..1.10", "PASS"],
        ["enumeration", "/signup", "13 ms", "10 ms", "1.30", "ratio 0.90..1.10", "FAIL"],
        ["soak", "(no headline figures in this result)", "-", "-", "-", "-", "-"],
        ["webhooks", "not measured (exit 2, no result)", "-", "-", "-", "-", "-"],
    ]  # fmt: skip
    # every line is as wide as the header: a plain-text table as well as Markdown
    assert len({len(line) for line in table.splitlines()}) == 1


def test_a_zero_baseline_gives_no_ratio_and_a_ratio_goal_then_fails():
    row = summary.Row("x", "fig", 5, "", 0, ratio_goal=">= 0.5")
    assert row.cells()[4] == "n/a"
    assert row.passed is False


def test_results_without_headlines_from_article_and_votes_are_read_from_their_fields():
    article = {"target_ratio": 0.8, "article": {"requests_per_second": 900.0},
               "bare": {"requests_per_second": 1000.0}}  # fmt: skip
    votes = {"app_per_second": 180.0, "baseline_per_second": 1140.0, "rows_lost": 0,
             "rows_duplicated": 1, "errors": 0}  # fmt: skip
    assert cells(summary.build_table({"article": article, "votes": votes})) == [
        ["article", "anonymous article page vs bare route, req/s", "900/s", "1,000/s", "0.90",
         "ratio >= 0.8", "PASS"],
        ["votes", "votes and withdrawals/s vs bare writes", "180/s", "1,140/s", "0.16", "-",
         "-"],
        ["votes", "rows lost + duplicated + non-303 answers", "1", "-", "-", "== 0", "FAIL"],
    ]  # fmt: skip
    # once they report headlines, those are shown instead
    article["headlines"] = [headline("article", 1, "/s", 2, ratio_goal=">= 0.8")]
    assert [r.figure for r in summary.rows_of("article", article)] == ["article"]


def test_the_machine_line_is_the_latest_results():
    older = {**ENV, "measured_at": "2026-12-05T10:00:00+00:00", "cpus": 8}
    line = summary.machine_line({"a": {"environment": older}, "b": {"environment": ENV},
                                 "c": "exit 2"})  # fmt: skip
    assert line == (
        "Machine: 2 CPUs (Test CPU), load average 0.50 / 0.25 / 0.12 (1/5/15 min, at the "
        "start), Python 3.11.7, Linux 6.1, 2026-12-05 10:00 to 2026-12-06 18:00 UTC, "
        "commit abc1234"
    )
    assert summary.machine_line({"c": "exit 2"}).startswith("Machine: unknown")


def test_table_only_reads_the_latest_result_of_each_benchmark(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path)
    old = {"environment": {**ENV, "measured_at": None},
           "headlines": [headline("old", 1, "ms")]}  # fmt: skip
    new = {"environment": {k: v for k, v in ENV.items() if k != "measured_at"},
           "headlines": [headline("new", 2, "ms")]}  # fmt: skip
    (tmp_path / "reports-20261201T000000Z.json").write_text(json.dumps(old))
    (tmp_path / "reports-20261206T120000Z.json").write_text(json.dumps(new))
    (tmp_path / "soak-logs-abc").mkdir()
    (tmp_path / "notes.json").write_text("{}")
    found = summary.latest_results(["reports", "login"])
    assert list(found) == ["reports"]
    assert found["reports"]["environment"]["measured_at"] == "2026-12-06T12:00:00+00:00"

    monkeypatch.setattr(bench_main, "importlib", None)  # would fail on any import
    assert bench_main.main(["--table", "reports", "login"]) == 0
    out = capsys.readouterr().out
    assert cells(out.split("\n\n")[0]) == [
        ["reports", "new", "2 ms", "-", "-", "-", "-"],
        ["login", "not measured (no result in bench/results/)", "-", "-", "-", "-", "-"],
    ]
    assert "2026-12-06 12:00 UTC" in out
