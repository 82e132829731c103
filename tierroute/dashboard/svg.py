"""Chart primitives drawn as inline SVG strings: stacked bars, lines, horizontal bars.

No JavaScript and nothing fetched: a chart is a self-contained <svg> element, so
the page works from the API, from a static file, and in a browser without network.
Each mark carries data-series/data-category/data-value and a <title> tooltip, so
tests (and people) can read the numbers behind a shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

Format = Callable[[float], str]

FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif"
AXIS = "#6b7280"
GRID = "#e5e7eb"
INK = "#111827"


@dataclass(frozen=True)
class Series:
    """One named, coloured row of values, one per category."""

    name: str
    color: str
    values: Sequence[float]


@dataclass(frozen=True)
class Frame:
    """A chart's size and the margins around its plot area."""

    width: int = 640
    height: int = 280
    left: int = 72
    right: int = 16
    top: int = 36
    bottom: int = 40

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.height - self.top - self.bottom


def _num(value: float) -> str:
    """A coordinate, short: two decimals at most."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round axis ticks from 0 to at least `top` (about `count` steps)."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    steps = math.ceil(top / step - 1e-9)
    return [round(i * step, 12) for i in range(steps + 1)]


def _open(chart_id: str, title: str, frame: Frame, empty: bool) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{_attr(chart_id)}" data-empty="{str(empty).lower()}" '
        f'viewBox="0 0 {frame.width} {frame.height}" width="{frame.width}" '
        f'height="{frame.height}" role="img" aria-label="{_attr(title)}" '
        f'font-family="{_attr(FONT)}" font-size="12">',
        f"<title>{escape(title)}</title>",
    ]


def _empty(parts: list[str], frame: Frame, message: str) -> str:
    parts.append(
        f'<text class="empty" x="{frame.width / 2:.0f}" y="{frame.height / 2:.0f}" '
        f'text-anchor="middle" fill="{AXIS}" font-size="14">{escape(message)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _legend(parts: list[str], series: Sequence[Series], frame: Frame) -> None:
    x = float(frame.left)
    for s in series:
        parts.append(
            f'<g class="legend" data-series="{_attr(s.name)}">'
            f'<rect x="{_num(x)}" y="10" width="12" height="12" rx="2" fill="{_attr(s.color)}"/>'
            f'<text x="{_num(x + 17)}" y="20.5" fill="{INK}">{escape(s.name)}</text></g>'
        )
        x += 30 + 7.2 * len(s.name)


def _y_axis(parts: list[str], ticks: list[float], frame: Frame, fmt: Format) -> None:
    top = ticks[-1]
    for tick in ticks:
        y = frame.top + frame.plot_h * (1 - tick / top)
        parts.append(
            f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{_num(y)}" '
            f'y2="{_num(y)}" stroke="{GRID}"/>'
            f'<text class="tick" x="{frame.left - 6}" y="{_num(y + 4)}" text-anchor="end" '
            f'fill="{AXIS}">{escape(fmt(tick))}</text>'
        )


def _x_labels(parts: list[str], categories: Sequence[str], centers: list[float], f: Frame) -> None:
    # Thin the labels so they never overlap: about one per 70 px.
    step = max(1, math.ceil(len(categories) / max(1, int(f.plot_w // 70))))
    for i, (label, x) in enumerate(zip(categories, centers, strict=True)):
        if i % step == 0:
            parts.append(
                f'<text class="category" x="{_num(x)}" y="{f.height - f.bottom + 18}" '
                f'text-anchor="middle" fill="{AXIS}">{escape(label)}</text>'
            )


def stacked_bars(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    fmt: Format,
    frame: Frame | None = None,
    empty_message: str = "no data yet",
) -> str:
    """Vertical bars, one per category, stacked by series (one series: plain bars)."""
    f = frame or Frame()
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    empty = not categories or max(totals, default=0) <= 0
    parts = _open(chart_id, title, f, empty)
    if empty:
        return _empty(parts, f, empty_message)
    _legend(parts, series, f)
    ticks = nice_ticks(max(totals))
    _y_axis(parts, ticks, f, fmt)
    slot = f.plot_w / len(categories)
    bar_w = max(2.0, min(48.0, slot * 0.7))
    centers = []
    for i, category in enumerate(categories):
        x = f.left + slot * i + (slot - bar_w) / 2
        centers.append(x + bar_w / 2)
        base = f.top + f.plot_h
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = f.plot_h * value / ticks[-1]
            base -= h
            parts.append(
                f'<rect class="bar" data-series="{_attr(s.name)}" '
                f'data-category="{_attr(category)}" data-value="{value!r}" x="{_num(x)}" '
                f'y="{_num(base)}" width="{_num(bar_w)}" height="{_num(max(h, 0.5))}" '
                f'fill="{_attr(s.color)}"><title>{escape(category)} · {escape(s.name)}: '
                f"{escape(fmt(value))}</title></rect>"
            )
    _x_labels(parts, categories, centers, f)
    parts.append("</svg>")
    return "\n".join(parts)


def line_chart(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    fmt: Format,
    frame: Frame | None = None,
    empty_message: str = "no data yet",
) -> str:
    """One line per series over the categories, with a marker on each point."""
    f = frame or Frame()
    peak = max((v for s in series for v in s.values), default=0.0)
    empty = not categories or peak <= 0
    parts = _open(chart_id, title, f, empty)
    if empty:
        return _empty(parts, f, empty_message)
    _legend(parts, series, f)
    ticks = nice_ticks(peak)
    _y_axis(parts, ticks, f, fmt)
    slot = f.plot_w / len(categories)
    centers = [f.left + slot * (i + 0.5) for i in range(len(categories))]
    for s in series:
        points = [
            (x, f.top + f.plot_h * (1 - v / ticks[-1]))
            for x, v in zip(centers, s.values, strict=True)
        ]
        path = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
        parts.append(
            f'<polyline class="line" data-series="{_attr(s.name)}" points="{path}" '
            f'fill="none" stroke="{_attr(s.color)}" stroke-width="2.5" '
            f'stroke-linejoin="round"/>'
        )
        for (x, y), category, value in zip(points, categories, s.values, strict=True):
            parts.append(
                f'<circle class="point" data-series="{_attr(s.name)}" '
                f'data-category="{_attr(category)}" data-value="{value!r}" cx="{_num(x)}" '
                f'cy="{_num(y)}" r="3.5" fill="{_attr(s.color)}"><title>{escape(category)} · '
                f"{escape(s.name)}: {escape(fmt(value))}</title></circle>"
            )
    _x_labels(parts, categories, centers, f)
    parts.append("</svg>")
    return "\n".join(parts)


def hbars(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    colors: Sequence[str],
    fmt: Format,
    *,
    notes: Sequence[str] | None = None,
    max_value: float | None = None,
    frame: Frame | None = None,
    empty_message: str = "no data yet",
) -> str:
    """One horizontal bar per label; a None value is drawn as a 'no data' note."""
    f = frame or Frame(height=max(120, 44 + 34 * len(labels)), left=120, top=12, bottom=28)
    present = [v for v in values if v is not None]
    empty = not present or (max_value is None and max(present) <= 0)
    parts = _open(chart_id, title, f, empty)
    if empty:
        return _empty(parts, f, empty_message)
    top = max_value if max_value is not None else nice_ticks(max(present))[-1]
    row_h = f.plot_h / len(labels)
    bar_h = min(22.0, row_h * 0.7)
    for i, (label, value, color) in enumerate(zip(labels, values, colors, strict=True)):
        y = f.top + row_h * i + (row_h - bar_h) / 2
        parts.append(
            f'<text class="category" x="{f.left - 8}" y="{_num(y + bar_h / 2 + 4)}" '
            f'text-anchor="end" fill="{INK}">{escape(label)}</text>'
        )
        note = f" · {notes[i]}" if notes else ""
        if value is None:
            parts.append(
                f'<text class="note" x="{f.left + 4}" y="{_num(y + bar_h / 2 + 4)}" '
                f'fill="{AXIS}">no data{escape(note)}</text>'
            )
            continue
        w = f.plot_w * 0.8 * min(value, top) / top if top > 0 else 0.0
        parts.append(
            f'<rect class="bar" data-series="{_attr(label)}" data-category="{_attr(label)}" '
            f'data-value="{value!r}" x="{f.left}" y="{_num(y)}" width="{_num(max(w, 1.0))}" '
            f'height="{_num(bar_h)}" rx="2" fill="{_attr(color)}"><title>{escape(label)}: '
            f"{escape(fmt(value))}{escape(note)}</title></rect>"
            f'<text class="value" x="{_num(f.left + max(w, 1.0) + 6)}" '
            f'y="{_num(y + bar_h / 2 + 4)}" fill="{INK}">{escape(fmt(value) + note)}</text>'
        )
    parts.append(
        f'<line x1="{f.left}" x2="{f.left}" y1="{f.top}" y2="{f.top + f.plot_h}" stroke="{AXIS}"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)
