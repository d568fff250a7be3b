"""SVG charts for the dashboard: pure functions from numbers to escaped markup.

:func:`line_chart` draws time series (x in epoch seconds, a ``None`` y breaks the line) with
'nice' axis ticks (1, 2 or 5 x 10^n; bytes in powers of 1024), ``HH:MM`` UTC time labels, a
legend and a tooltip (``<title>``) on every point. :func:`sparkline` is a tiny line without
axes. :func:`format_value` is the one formatter for values with a unit, for charts and pages.

Colours come only from CSS classes (``series s-rate`` ...) and ``currentColor``, so the page's
stylesheet decides light and dark; sizes come from the ``viewBox`` (the page's CSS sets the
width). Every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

NONE = "—"
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
               43200, 86400)  # fmt: skip
_SVG = 'xmlns="http://www.w3.org/2000/svg"'
_CHAR_WIDTH = 6.5  # approximate width of a legend character at 11 px


@dataclass(frozen=True, slots=True)
class Series:
    """One line: ``(epoch seconds, value or None)`` points; ``css_class`` gives its colour."""

    name: str
    points: Sequence[tuple[float, float | None]]
    css_class: str


def _number(value: float) -> str:
    """About three significant digits, no exponent, no trailing zeros."""
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size == 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(size)))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_value(value: float | None, unit: str) -> str:
    """``value`` for people: ``"%"`` takes a 0..1 ratio (``0.25`` -> ``25%``); ``"s"`` shows
    ``250 ms`` below a second, then ``1.2 s`` and ``2.5 min``; ``"bytes"`` uses KiB, MiB, GiB;
    other units follow the number. ``—`` for None (or a value that is not finite)."""
    if value is None or not math.isfinite(value):
        return NONE
    if unit == "%":
        return f"{_number(value * 100)}%"
    if unit == "s":
        size = abs(value)
        if size < 1:
            return f"{_number(value * 1000)} ms"
        return f"{_number(value)} s" if size < 60 else f"{_number(value / 60)} min"
    if unit == "duration":  # an uptime or a window: 45 s, 12 min, 3.5 h, 2.1 d
        for limit, size, name in ((60, 1, "s"), (3600, 60, "min"), (86400, 3600, "h")):
            if abs(value) < limit:
                return f"{_number(value / size)} {name}"
        return f"{_number(value / 86400)} d"
    if unit == "x":  # a burn rate
        return f"{_number(value)}x"
    if unit == "bytes":
        power = _binary_power(value)
        return f"{_number(value / 1024**power)} {_BINARY[power]}"
    return f"{_number(value)} {unit}".rstrip()


def _binary_power(value: float) -> int:
    power, size = 0, abs(value)
    while size >= 1024 and power < len(_BINARY) - 1:
        size /= 1024
        power += 1
    return power


def nice_step(span: float, count: int) -> float:
    """The 1, 2 or 5 x 10^n step that cuts ``span`` into at most about ``count`` parts."""
    raw = span / max(1, count)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Ticks at multiples of a nice step, from at or below ``low`` to at or above ``high``."""
    if not high > low:
        high = low + (abs(low) or 1.0)
    step = nice_step(high - low, count)
    decimals = max(0, -math.floor(math.log10(step)) + 1)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(k * step, decimals) or 0.0 for k in range(first, last + 1)]


def value_ticks(low: float, high: float, unit: str, count: int = 5) -> list[float]:
    """:func:`nice_ticks`; for bytes, nice in the binary unit the values are shown in."""
    if unit != "bytes":
        return nice_ticks(low, high, count)
    scale = 1024 ** _binary_power(max(abs(low), abs(high)))
    return [t * scale for t in nice_ticks(low / scale, high / scale, count)]


def time_ticks(start: float, end: float, count: int = 5) -> list[float]:
    """Round times (whole steps of 1 s .. 1 d since the epoch, UTC) within start..end."""
    span = max(end - start, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= count), 86400 * math.ceil(span / 86400))
    first = math.ceil(start / step) * step
    return [float(first + i * step) for i in range(int((end - first) // step) + 1)]


def _clock(at: float, seconds: bool = False) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S" if seconds else "%H:%M")


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _polylines(points: Sequence[tuple[float, float] | None], css: str) -> Iterable[str]:
    """A polyline per run of points without a gap (``None``); a lone point is a dot."""
    css = f" {css}" if css else ""
    run: list[tuple[float, float]] = []
    for point in [*points, None]:
        if point is not None:
            run.append(point)
            continue
        if len(run) == 1:
            x, y = run[0]
            yield (
                f'<circle class="series-dot{css}" cx="{_f(x)}" cy="{_f(y)}" r="2" '
                'fill="currentColor"/>'
            )
        elif run:
            coords = " ".join(f"{_f(x)},{_f(y)}" for x, y in run)
            yield (
                f'<polyline class="series{css}" points="{coords}" fill="none" '
                'stroke="currentColor" vector-effect="non-scaling-stroke"/>'
            )
        run = []


def line_chart(
    series: Sequence[Series],
    *,
    unit: str,
    title: str,
    width: int = 640,
    height: int = 200,
    y_min: float | None = 0,
    y_max: float | None = None,
) -> Markup:
    """Time series as an SVG line chart; a tooltip per point; "No data yet" without data.

    ``y_min`` / ``y_max`` fix the axis ends (None: from the data); data beyond them widens the
    axis rather than being cut off.
    """
    left, right, top, bottom = 60.0, 12.0, 24.0, 22.0
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points if y is not None and math.isfinite(y)]
    low = min([*ys, *([] if y_min is None else [y_min])], default=0.0)
    high = max([*ys, *([] if y_max is None else [y_max])], default=1.0)
    yticks = value_ticks(low, high, unit)
    ylow, yhigh = yticks[0], yticks[-1]
    start, end = (min(xs), max(xs)) if xs else (0.0, 0.0)
    if end - start < 1:
        start, end = start - 150, end + 150  # five minutes around a single time

    def px(x: float) -> float:
        return x0 + (x - start) / (end - start) * (x1 - x0)

    def py(y: float) -> float:
        return y1 - (y - ylow) / (yhigh - ylow) * (y1 - y0)

    label = escape(title)
    out = [
        f'<svg {_SVG} class="chart" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{label}">',
        f"<title>{label}</title>",
        '<g class="grid" fill="currentColor" font-size="11">',
    ]
    for tick in yticks:
        y = _f(py(tick))
        out.append(
            f'<line class="grid-line" x1="{_f(x0)}" x2="{_f(x1)}" y1="{y}" y2="{y}" '
            'stroke="currentColor" stroke-opacity="0.2"/>'
            f'<text x="{_f(x0 - 6)}" y="{y}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(format_value(tick, unit))}</text>"
        )
    if xs:
        ticks = time_ticks(start, end)
        seconds = len(ticks) > 1 and ticks[1] - ticks[0] < 60
        for tick in ticks:
            x = _f(px(tick))
            out.append(
                f'<line class="axis" x1="{x}" x2="{x}" y1="{_f(y1)}" y2="{_f(y1 + 4)}" '
                'stroke="currentColor"/>'
                f'<text x="{x}" y="{_f(height - 6)}" text-anchor="middle">'
                f"{_clock(tick, seconds)}</text>"
            )
    out.append(
        f'<line class="axis" x1="{_f(x0)}" x2="{_f(x1)}" y1="{_f(y1)}" y2="{_f(y1)}" '
        'stroke="currentColor"/></g>'
    )
    out.extend(_legend(series, x0))
    if not ys:
        out.append(
            f'<text class="empty" x="{_f((x0 + x1) / 2)}" y="{_f((y0 + y1) / 2)}" '
            'text-anchor="middle" dominant-baseline="middle" fill="currentColor">'
            "No data yet</text>"
        )
    for s in series:
        css = escape(s.css_class)
        placed = [
            (px(x), py(y)) if y is not None and math.isfinite(y) else None for x, y in s.points
        ]
        out.extend(_polylines(placed, css))
        out.append(f'<g class="hits {css}">')
        for spot, (at, value) in zip(placed, s.points, strict=True):
            if spot is None or value is None:
                continue
            tip = escape(f"{title} · {_clock(at)} · {s.name} {format_value(value, unit)}")
            out.append(
                f'<circle class="hit {css}" cx="{_f(spot[0])}" cy="{_f(spot[1])}" r="5" '
                f'fill="none" pointer-events="all"><title>{tip}</title></circle>'
            )
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))


def _legend(series: Sequence[Series], x: float) -> Iterable[str]:
    yield '<g class="legend" font-size="11">'
    for s in series:
        yield (
            f'<rect class="{escape(s.css_class)}" x="{_f(x)}" y="6" width="10" height="10" '
            'fill="currentColor"/>'
            f'<text x="{_f(x + 14)}" y="15" fill="currentColor">{escape(s.name)}</text>'
        )
        x += 14 + _CHAR_WIDTH * len(s.name) + 12
    yield "</g>"


def sparkline(
    values: Sequence[float | None],
    *,
    unit: str,
    label: str,
    width: int = 120,
    height: int = 28,
) -> Markup:
    """A tiny line of equally spaced values (None: a gap); the tooltip names the last value and
    the range. Ratios (``%``) are drawn on 0..100 %, other units from 0 (or below) up."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    last = next((v for v in reversed(values) if v is not None and math.isfinite(v)), None)
    if known:
        summary = (
            f"{label}: {format_value(last, unit)} "
            f"(min {format_value(min(known), unit)}, max {format_value(max(known), unit)})"
        )
    else:
        summary = f"{label}: no data yet"
    low = min(0.0, *known) if known else 0.0
    high = max(known, default=1.0)
    if unit == "%":
        high = max(high, 1.0)
    if high <= low:
        high = low + 1.0
    pad = 2.0
    step = (width - 2 * pad) / max(1, len(values) - 1)
    placed = [
        (pad + i * step, height - pad - (v - low) / (high - low) * (height - 2 * pad))
        if v is not None and math.isfinite(v)
        else None
        for i, v in enumerate(values)
    ]
    text = escape(summary)
    return Markup(
        f'<svg {_SVG} class="sparkline" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="none" role="img" aria-label="{text}">'
        f"<title>{text}</title>{''.join(_polylines(placed, ''))}</svg>"
    )
