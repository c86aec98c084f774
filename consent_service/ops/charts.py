"""Inline SVG charts for the reports page: drawn on the server, no script, nothing fetched.

Every label passes through format_html, so a purpose key or a reason cannot inject markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 40  # room for the axes' labels
LEGEND_COLUMNS = 4
COLOURS = ("#417690", "#e07b39", "#5b9a45", "#b94a8c", "#8c6d31", "#4b6cb7", "#999999")


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def bar_chart(
    *, days: Sequence[date], series: Mapping[str, Sequence[int]], title: str, stacked: bool
) -> SafeString:
    """One bar per day (stacked series), or one bar per series side by side per day."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    peaks = [max(values, default=0) for values in series.values()]
    top = _nice(max(totals if stacked else peaks, default=0))
    slot = _plot_width() / max(len(days), 1)
    groups = 1 if stacked else max(len(series), 1)
    bar = max(slot * 0.8 / groups, 1.0)
    parts: list[SafeString] = []
    for position, day in enumerate(days):
        base = 0
        for index, (name, values) in enumerate(series.items()):
            value = values[position]
            if not value:
                continue
            x = LEFT + position * slot + slot * 0.1 + (0 if stacked else index * bar)
            y, height = _y(base + value, top), _y(base, top) - _y(base + value, top)
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{} {}: {}</title></rect>",
                    _n(x),
                    _n(y),
                    _n(bar),
                    _n(height),
                    colour(index),
                    day.isoformat(),
                    name,
                    value,
                )
            )
            if stacked:
                base += value
    return _svg(title, days, top, "", parts, list(series))


def line_chart(
    *, days: Sequence[date], series: Mapping[str, Sequence[float | None]], title: str
) -> SafeString:
    """Percentages (0-100) per day; a day without data (None) has no point."""
    slot = _plot_width() / max(len(days), 1)
    parts: list[SafeString] = []
    for index, (name, values) in enumerate(series.items()):
        points = [
            (LEFT + position * slot + slot / 2, _y(value, 100), day, value)
            for position, (day, value) in enumerate(zip(days, values, strict=True))
            if value is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            parts.append(
                format_html(
                    '<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"/>',
                    path,
                    colour(index),
                )
            )
        parts.extend(
            format_html(
                '<circle cx="{}" cy="{}" r="2.5" fill="{}"><title>{} {}: {}%</title></circle>',
                _n(x),
                _n(y),
                colour(index),
                day.isoformat(),
                name,
                _n(value),
            )
            for x, y, day, value in points
        )
    return _svg(title, days, 100, "%", parts, list(series))


def _day_labels(count: int) -> list[tuple[int, str]]:
    """First, middle and last day; the outer ones lean inwards so they are not cut off."""
    if not count:
        return []
    anchors = {0: "start", count // 2: "middle", count - 1: "end"}
    if count == 1:
        anchors = {0: "middle"}
    return sorted(anchors.items())


def _svg(
    title: str,
    days: Sequence[date],
    top: int,
    unit: str,
    marks: list[SafeString],
    names: list[str],
) -> SafeString:
    bottom = HEIGHT - BOTTOM
    ticks = format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>'
        '<text x="{}" y="{}" text-anchor="end" font-size="11">{}{}</text>',
        (
            (LEFT, WIDTH - RIGHT, _n(_y(value, top)), _n(_y(value, top)), LEFT - 4)
            + (_n(_y(value, top) + 4), value, unit)
            for value in (0, top // 2, top)
        ),
    )
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="{}" font-size="11">{}</text>',
        (
            (_n(LEFT + (i + 0.5) * _plot_width() / len(days)), bottom + 14, anchor)
            + (days[i].isoformat(),)
            for i, anchor in _day_labels(len(days))
        ),
    )
    legend = format_html_join(
        "",
        '<rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
        '<text x="{}" y="{}" font-size="11">{}</text>',
        (
            (x, y, colour(i), x + 14, y + 9, name)
            for i, name in enumerate(names)
            for x, y in [_legend_at(i)]
        ),
    )
    height = _legend_at(len(names) - 1)[1] + 14 if names else HEIGHT
    body = mark_safe("".join([ticks, labels, legend, *marks]))  # each part is escaped
    return format_html(
        '<svg class="report-chart" role="img" viewBox="0 0 {} {}" width="100%" '
        'preserveAspectRatio="xMinYMin meet"><title>{}</title>{}</svg>',
        WIDTH,
        height,
        title,
        body,
    )


def _legend_at(index: int) -> tuple[int, int]:
    """Four names a row, under the plot; the chart grows a row at a time."""
    row, column = divmod(index, LEGEND_COLUMNS)
    return LEFT + column * (WIDTH - LEFT) // LEGEND_COLUMNS, HEIGHT - 14 + row * 16


def _n(value: float) -> str:
    return f"{value:.1f}"


def _plot_width() -> float:
    return float(WIDTH - LEFT - RIGHT)


def _y(value: float, top: int) -> float:
    plot = HEIGHT - TOP - BOTTOM
    return TOP + plot * (1 - value / top)


def _nice(peak: int) -> int:
    """An axis top at or above `peak` that halves into round numbers."""
    for step in (2, 4, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        if peak <= step:
            return step
    return ((peak + 9999) // 10000) * 10000
