"""Bar charts drawn on the server as SVG: shapes with classes (the CSP forbids inline
styles and scripts), drawn from the same figures as the table printed under each chart."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 12, 40


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]
    labels: list[tuple[float, str]]  # x, text under each group
    ticks: list[tuple[float, str]]  # y, value on the left axis
    legend: list[tuple[str, str]] = field(default_factory=list)  # css, series name
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def baseline(self) -> float:
        return self.height - BOTTOM


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^n at or above `value` (an axis that reads well)."""
    if value <= 0:
        return 1
    step = 1.0
    while step * 10 <= value:
        step *= 10
    while step > value:
        step /= 10
    for factor in (1, 2, 2.5, 5, 10):
        if step * factor >= value:
            return step * factor
    return step * 10


def count(value: float) -> str:
    """1234 → "1,234"; 2.5 → "2.5" (an axis tick between whole numbers)."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    fmt: Callable[[float], str] = count,
    log: bool = False,
) -> Chart:
    """Grouped bars: one group per label, one bar per series (name, css class, values).
    `log`: a logarithmic scale, for steps that differ a hundredfold (a funnel)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    highest = max((max(v, default=0) for _n, _c, v in series), default=0)
    if log:
        return _log_chart(title, labels, series, fmt, highest)
    top = _nice_max(highest)
    group_w = plot_w / max(len(labels), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    bars, names = [], []
    for index, label in enumerate(labels):
        for number, (name, css, values) in enumerate(series):
            value = max(values[index], 0)
            height = plot_h * value / top
            x = LEFT + index * group_w + group_w * 0.1 + number * bar_w
            title_text = f"{label} · {name}: {fmt(values[index])}"
            top_y = TOP + plot_h - height
            box = (round(x, 1), round(top_y, 1), round(bar_w, 1), round(height, 1))
            bars.append(Bar(*box, css, title_text))
        names.append((round(LEFT + (index + 0.5) * group_w, 1), label))
    step = max(1, len(labels) // 12)  # at most about twelve labels under the axis
    ticks = [(round(TOP + plot_h * (1 - i / 4), 1), fmt(top * i / 4)) for i in range(5)]
    return Chart(title, bars, names[::step], ticks, [(css, name) for name, css, _v in series])


def _log_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    fmt: Callable[[float], str],
    highest: float,
) -> Chart:
    """The same bars on a log10 scale from 1 to the next power of ten (0 draws no bar)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    decades = max(1, math.ceil(math.log10(max(highest, 1)) or 1))
    group_w = plot_w / max(len(labels), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    bars, names = [], []
    for index, label in enumerate(labels):
        for number, (name, css, values) in enumerate(series):
            value = values[index]
            height = plot_h * math.log10(value) / decades if value >= 1 else 0
            x = LEFT + index * group_w + group_w * 0.1 + number * bar_w
            box = (round(x, 1), round(TOP + plot_h - height, 1), round(bar_w, 1), round(height, 1))
            bars.append(Bar(*box, css, f"{label} · {name}: {fmt(value)}"))
        names.append((round(LEFT + (index + 0.5) * group_w, 1), label))
    ticks = [(round(TOP + plot_h * (1 - i / decades), 1), fmt(10**i)) for i in range(decades + 1)]
    return Chart(title, bars, names, ticks, [(css, name) for name, css, _v in series])
