"""SVG charts: well-formed XML, nice ticks covering the data, unit labels, gaps, tooltips,
escaping, the empty chart, sparklines and the shared value formatter."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from gateway.dashboard.charts import (
    Series,
    format_value,
    line_chart,
    nice_ticks,
    sparkline,
    time_ticks,
    value_ticks,
)

NS = "{http://www.w3.org/2000/svg}"
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def parse(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    return ET.fromstring(str(markup))


def all_of(root: ET.Element, tag: str) -> list[ET.Element]:
    return list(root.iter(NS + tag))


def y_labels(root: ET.Element) -> list[str]:
    return [t.text or "" for t in all_of(root, "text") if t.get("text-anchor") == "end"]


def x_labels(root: ET.Element) -> list[str]:
    grid = next(g for g in all_of(root, "g") if g.get("class") == "grid")
    return [t.text or "" for t in grid.iter(NS + "text") if t.get("text-anchor") == "middle"]


def minutes(values: list[float | None], start: float = T0) -> list[tuple[float, float | None]]:
    return [(start + 60 * i, v) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (None, "s", "—"),
        (math.nan, "%", "—"),
        (0.25, "%", "25%"),
        (0.999, "%", "99.9%"),
        (0.0005, "%", "0.05%"),
        (0, "%", "0%"),
        (0.25, "s", "250 ms"),
        (0.0004, "s", "0.4 ms"),
        (1.2, "s", "1.2 s"),
        (90, "s", "1.5 min"),
        (512, "bytes", "512 B"),
        (1536, "bytes", "1.5 KiB"),
        (200 * 2**20, "bytes", "200 MiB"),
        (3 * 2**30, "bytes", "3 GiB"),
        (12.3456, "req/s", "12.3 req/s"),
        (12345.6, "req/s", "12,346 req/s"),
        (0, "req/s", "0 req/s"),
        (-2.5, "req/s", "-2.5 req/s"),
        (7, "", "7"),
    ],
)
def test_format_value(value, unit, text):
    assert format_value(value, unit) == text


@pytest.mark.parametrize(
    ("low", "high"),
    [(0, 0.97), (0, 1234), (-3, 7), (0.0013, 0.0047), (5, 5), (0, 0), (12, 987_654), (0.1, 0.3)],
)
def test_nice_ticks_are_1_2_5_steps_covering_the_range(low, high):
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and ticks[-1] > ticks[0]
    assert 2 <= len(ticks) <= 7
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6, ticks
    for a, b in itertools.pairwise(ticks):
        assert b - a == pytest.approx(step)
    assert all(t / step == pytest.approx(round(t / step)) for t in ticks)
    assert all(repr(t).count("0000") == 0 or t >= 1000 for t in ticks)  # no 0.30000000000000004


def test_byte_ticks_are_nice_in_binary_units():
    ticks = value_ticks(0, 300 * 2**20, "bytes")
    assert [format_value(t, "bytes") for t in ticks] == ["0 B", "100 MiB", "200 MiB", "300 MiB"]


def test_time_ticks_are_round_utc_times():
    ticks = time_ticks(T0 + 17, T0 + 3600 + 17)
    assert all(t % 900 == 0 for t in ticks) and ticks[0] >= T0 + 17 and ticks[-1] <= T0 + 3617
    assert len(ticks) == 4  # 08:15 .. 09:00


def test_line_chart_structure_ticks_labels_and_tooltips():
    p95 = Series("p95", minutes([0.25, 0.4, 1.3, 0.9]), "s-p95")
    p50 = Series("p50", minutes([0.1, 0.12, 0.2, 0.15]), "s-p50")
    root = parse(line_chart([p95, p50], unit="s", title="checkout latency"))
    assert root.tag == NS + "svg"
    assert root.get("role") == "img" and root.get("aria-label") == "checkout latency"
    assert root.get("viewBox") == "0 0 640 200" and root.get("preserveAspectRatio")
    assert root.get("width") is None  # the page's CSS decides
    assert root[0].tag == NS + "title" and root[0].text == "checkout latency"
    assert y_labels(root) == ["0 ms", "500 ms", "1 s", "1.5 s"]
    assert x_labels(root) == ["08:00", "08:01", "08:02", "08:03"]
    lines = all_of(root, "polyline")
    assert [pl.get("class") for pl in lines] == ["series s-p95", "series s-p50"]
    assert len(lines[0].get("points", "").split()) == 4
    hits = [c for c in all_of(root, "circle") if "hit" in (c.get("class") or "").split()]
    assert len(hits) == 8
    tips = [c.find(NS + "title").text for c in hits]  # type: ignore[union-attr]
    assert tips[0] == "checkout latency · 08:00 · p95 250 ms"
    assert tips[6] == "checkout latency · 08:02 · p50 200 ms"
    legend = next(g for g in all_of(root, "g") if g.get("class") == "legend")
    assert [t.text for t in legend.iter(NS + "text")] == ["p95", "p50"]
    assert [r.get("class") for r in legend.iter(NS + "rect")] == ["s-p95", "s-p50"]
    # y of a point: 1.3 s sits between the 1 s and 1.5 s grid lines.
    grid = {t.text: float(t.get("y", "0")) for t in all_of(root, "text")}
    y13 = float(lines[0].get("points", "").split()[2].split(",")[1])
    assert grid["1.5 s"] < y13 < grid["1 s"]


def test_colours_come_only_from_css_classes_and_current_color():
    chart = str(line_chart([Series("a", minutes([1, 2]), "s-rate")], unit="req/s", title="t"))
    chart += str(sparkline([1, 2, 3], unit="req/s", label="x"))
    root = ET.fromstring(f"<root>{chart}</root>")
    for element in root.iter():
        for name in ("fill", "stroke", "color", "style"):
            assert element.get(name) in (None, "none", "currentColor"), (element.tag, name)


def test_gaps_break_the_polyline_and_a_lone_point_is_a_dot():
    values = [1.0, 2.0, None, 3.0, None, None, 4.0, 5.0, 6.0]
    root = parse(line_chart([Series("rate", minutes(values), "s-rate")], unit="req/s", title="t"))
    assert [len(pl.get("points", "").split()) for pl in all_of(root, "polyline")] == [2, 3]
    dots = [c for c in all_of(root, "circle") if c.get("class") == "series-dot s-rate"]
    assert len(dots) == 1
    assert len([c for c in all_of(root, "circle") if "hit" in (c.get("class") or "")]) == 6


def test_y_axis_follows_y_min_y_max_and_widens_for_data_beyond():
    series = [Series("cpu", minutes([0.2, 0.3]), "s-1")]
    root = parse(line_chart(series, unit="%", title="cpu", y_max=1))
    assert y_labels(root) == ["0%", "20%", "40%", "60%", "80%", "100%"]
    root = parse(line_chart([Series("x", minutes([5, 1500]), "s-1")], unit="bytes", title="b"))
    assert y_labels(root)[0] == "0 B" and y_labels(root)[-1] == "1.5 KiB"
    root = parse(line_chart([Series("x", minutes([-3, 7]), "s-1")], unit="", title="t"))
    assert y_labels(root) == ["-4", "-2", "0", "2", "4", "6", "8"]
    root = parse(
        line_chart([Series("x", minutes([101, 104]), "s-1")], unit="", title="t", y_min=None)
    )
    labels = [float(v) for v in y_labels(root)]
    assert labels[0] <= 101 and labels[-1] >= 104 and labels[0] > 0


def test_hostile_names_are_escaped_everywhere():
    hostile = '<script>alert("x")</script>'
    series = [Series(hostile, minutes([1.0]), '"><script>')]
    markup = line_chart(series, unit=hostile, title=hostile)
    spark = sparkline([1.0], unit="%", label=hostile)
    for text in (str(markup), str(spark)):
        assert "<script>" not in text
        parse(Markup(text))
    root = parse(markup)
    assert root.get("aria-label") == hostile and root[0].text == hostile
    legend = next(g for g in all_of(root, "g") if g.get("class") == "legend")
    assert legend.find(NS + "text").text == hostile  # type: ignore[union-attr]
    assert legend.find(NS + "rect").get("class") == '"><script>'  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "series",
    [[], [Series("rate", [], "s-rate")], [Series("rate", minutes([None, None]), "s-rate")]],
)
def test_no_data_draws_axes_and_says_so(series):
    root = parse(line_chart(series, unit="req/s", title="Requests"))
    empty = [t for t in all_of(root, "text") if t.get("class") == "empty"]
    assert [t.text for t in empty] == ["No data yet"]
    assert float(empty[0].get("x", "0")) == pytest.approx((60 + 628) / 2)
    assert y_labels(root) == ["0 req/s", "0.2 req/s", "0.4 req/s", "0.6 req/s", "0.8 req/s",
                              "1 req/s"]  # fmt: skip
    assert any(ln.get("class") == "axis" for ln in all_of(root, "line"))
    assert all_of(root, "polyline") == []


def test_a_single_point_has_a_time_axis_around_it():
    root = parse(line_chart([Series("a", [(T0, 3.0)], "s-1")], unit="req/s", title="t"))
    assert "08:00" in x_labels(root)


def test_sparkline():
    root = parse(sparkline([0.1, 0.2, None, 0.5, 0.4], unit="%", label="Host CPU"))
    assert root.get("class") == "sparkline" and root.get("role") == "img"
    assert root.get("viewBox") == "0 0 120 28"
    summary = "Host CPU: 40% (min 10%, max 50%)"
    assert root.get("aria-label") == summary and root[0].text == summary
    assert [len(pl.get("points", "").split()) for pl in all_of(root, "polyline")] == [2, 2]
    assert all_of(root, "text") == []  # no axes
    ys = [
        float(p.split(",")[1])
        for pl in all_of(root, "polyline")
        for p in pl.get("points", "").split()
    ]
    assert all(0 <= y <= 28 for y in ys)
    empty = parse(sparkline([], unit="bytes", label="RSS"))
    assert empty[0].text == "RSS: no data yet" and all_of(empty, "polyline") == []
    flat = parse(sparkline([2048, 2048], unit="bytes", label="RSS", width=60, height=10))
    assert flat[0].text == "RSS: 2 KiB (min 2 KiB, max 2 KiB)"
    assert flat.get("viewBox") == "0 0 60 10"


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(45, "duration", "45 s"), (720, "duration", "12 min"), (12600, "duration", "3.5 h"),
     (2 * 86400, "duration", "2 d"), (14.4, "x", "14.4x"), (0.5, "x", "0.5x")],
)  # fmt: skip
def test_durations_and_burn_rates(value, unit, text):
    assert format_value(value, unit) == text
