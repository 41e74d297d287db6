"""Charts drawn on the server: the geometry of simple bar charts, which the templates write as inline SVG
(``gateways/_chart_*.html``) with presentation attributes and CSS classes only — no script, no style
attribute — so they render with the Content-Security-Policy and without JavaScript.

Coordinates are in the SVG's own units (``viewBox``); the image scales to its container's width.
"""
from dataclasses import dataclass, field
from datetime import date

from django.utils.formats import date_format
from django.utils.translation import gettext as _

from billers.dte.display import format_clp

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 12, 28


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Tick:
    position: float
    text: str


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    hbars: list = field(default_factory=list)
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM
    right: float = WIDTH - RIGHT

    @property
    def center_x(self) -> float:
        return self.width / 2

    @property
    def center_y(self) -> float:
        return self.height / 2

    @property
    def empty(self) -> bool:
        return not self.bars and not self.hbars


def _nice_max(value: int) -> int:
    """The axis' top: 1, 2 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1
    power = 1
    while True:
        for step in (1, 2, 5):
            if step * power >= value:
                return step * power
        power *= 10


def _steps(top: int) -> int:
    """How many grid intervals divide ``top`` (1, 2 or 5 × 10ⁿ) into whole numbers."""
    if top <= 5:
        return top
    return 4 if top % 4 == 0 else 5


def _day(day: date) -> str:
    return date_format(day, "j M")


def stacked_by_day(days: list[date], series: dict, *, css, label, money: bool = False) -> Chart:
    """One bar per day, stacked by series (e.g. per document type). ``css(key)`` and ``label(key)`` name
    each series' class and legend; ``money`` writes values as CLP."""
    fmt = format_clp if money else str
    totals = [sum(values[n] for values in series.values()) for n in range(len(days))]
    top = _nice_max(max(totals, default=0))
    chart = Chart()
    plot_h = chart.bottom - TOP
    slot = (chart.right - chart.left) / max(len(days), 1)
    bar_w = max(slot * 0.7, 1)
    for n, day in enumerate(days):
        y = chart.bottom
        for key, values in series.items():
            if not values[n]:
                continue
            h = values[n] / top * plot_h
            y -= h
            chart.bars.append(Bar(
                round(chart.left + n * slot + (slot - bar_w) / 2, 1), round(y, 1), round(bar_w, 1), round(h, 1), css(key),
                _("%(day)s: %(value)s %(series)s") % {"day": _day(day), "value": fmt(values[n]), "series": label(key)},
            ))
        if (len(days) - 1 - n) % 7 == 0:
            chart.x_ticks.append(Tick(round(chart.left + n * slot + slot / 2, 1), _day(day)))
    steps = _steps(top)
    chart.y_ticks = [Tick(round(chart.bottom - plot_h * part / steps, 1), fmt(top * part // steps)) for part in range(steps + 1)]
    chart.legend = [(css(key), label(key)) for key in series]
    return chart


@dataclass(frozen=True)
class HBar:
    """A horizontal bar with its label above it and its value at its end."""

    y: float
    width: float
    label: str
    label_y: float
    value: str
    value_x: float
    value_y: float


def horizontal(items: list[tuple[str, int]]) -> Chart:
    """One horizontal bar per (label, count), in the order given."""
    row = 34
    chart = Chart(height=max(len(items), 1) * row + 4)
    chart.left, chart.right = 4, WIDTH - 56
    top = max((count for _label, count in items), default=0) or 1
    chart.hbars = [
        HBar(
            y=n * row + 18, width=round(max(count / top * (chart.right - chart.left), 2), 1), label=label, label_y=n * row + 13,
            value=str(count), value_x=round(chart.left + max(count / top * (chart.right - chart.left), 2) + 6, 1), value_y=n * row + 28,
        )
        for n, (label, count) in enumerate(items)
    ]
    return chart
