"""The dashboard's SVG charts and HTML page, from figures made up here (no database)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any, ClassVar

import pytest

from tierroute.config import default_tier_table
from tierroute.dashboard.data import (
    BatchCost,
    CacheSavings,
    DailyCost,
    DashboardData,
    cache_savings,
    cumulative_savings,
    spend_by_day,
)
from tierroute.dashboard.render import render_dashboard, usd
from tierroute.dashboard.svg import Series, hbars, line_chart, nice_ticks, stacked_bars

TIERS = default_tier_table()
DAY0 = date(2026, 11, 20)
NONE, CACHED = Decimal(0), Decimal("0.0135")


class Elements(HTMLParser):
    """Start tags with their attributes, in document order; fails on mismatched nesting."""

    VOID: ClassVar[set[str]] = {"meta", "rect", "line", "circle", "polyline", "br"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()


def parse(markup: str) -> Elements:
    parser = Elements()
    parser.feed(markup)
    parser.close()
    assert parser.open in ([], ["html"], ["html", "body"]), parser.open
    return parser


def marks(markup: str, cls: str) -> list[dict[str, str | None]]:
    return [a for tag, a in parse(markup).tags if (a.get("class") or "").split() == [cls]]


def sample(days: int = 3, with_cache: bool = True) -> DashboardData:
    daily = []
    for i in range(days):
        day = DAY0 + timedelta(days=i)
        daily += [
            DailyCost(day, "haiku", "classify", 4, 0.002, 0.0, 0, 0, NONE),
            DailyCost(day, "haiku", "complete", 3, 0.001 * (i + 1), 0.009, 0, 0, NONE),
            DailyCost(
                day,
                "sonnet",
                "complete",
                1,
                0.01,
                0.02,
                0,
                *((5000, CACHED) if with_cache else (0, NONE)),
            ),
            DailyCost(day, "opus", "complete", 1, 0.05, 0.05, 0, 0, NONE),
        ]
    report: dict[str, Any] = {
        "simulated": True,
        "jobs_succeeded": 12,
        "jobs_failed": 1,
        "distribution": [
            {"tier": "haiku", "model": "m", "jobs": 9, "share_pct": 75.0, "cost_usd": 0.006,
             "rated_jobs": 2, "avg_satisfaction": 0.6},
            {"tier": "sonnet", "model": "m", "jobs": 3, "share_pct": 25.0, "cost_usd": 0.03,
             "rated_jobs": 0, "avg_satisfaction": None},
            {"tier": "opus", "model": "m", "jobs": 0, "share_pct": 0.0, "cost_usd": 0.0,
             "rated_jobs": 0, "avg_satisfaction": None},
        ],
        "classifier_calls": 12,
        "classifier_cost_usd": 0.006,
        "completion_cost_usd": 0.18,
        "total_cost_usd": 0.186,
        "cost_if_all_opus_usd": 0.237,
        "saved_usd": 0.051,
        "saved_pct": 21.5,
    }  # fmt: skip
    batch = BatchCost("0123456789abcdef", datetime(2026, 11, 21, tzinfo=UTC), 8, 7, 0.05, 0.08)
    return DashboardData(
        scope="API key <b>ops</b> (trk_abc…)",
        generated_at=datetime(2026, 11, 22, 12, tzinfo=UTC),
        days=[DAY0 + timedelta(days=i) for i in range(days)],
        report=report,
        daily=daily,
        top_batches=[batch],
        cache=cache_savings(daily),
    )


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (0.0, [0.0, 1.0]),
        (1.0, [0.0, 0.25, 0.5, 0.75, 1.0]),
        (0.17, [0.0, 0.05, 0.1, 0.15, 0.2]),
        (7, [0.0, 2.0, 4.0, 6.0, 8.0]),
        (1234, [0.0, 500.0, 1000.0, 1500.0]),
    ],
)
def test_nice_ticks_are_round_and_cover_the_top(top: float, ticks: list[float]) -> None:
    assert nice_ticks(top) == ticks


def test_usd_keeps_small_figures_readable() -> None:
    assert [usd(v) for v in (0, 0.5, 0.817, 2.5, 1234.5, 0.0012, -0.004)] == [
        "$0", "$0.50", "$0.817", "$2.50", "$1,234", "$0.0012", "-$0.004",
    ]  # fmt: skip


def test_stacked_bars_stack_each_series_and_carry_their_values() -> None:
    svg = stacked_bars(
        "spend",
        "Spend",
        ["Mon", "Tue"],
        [Series("a", "#111", [1.0, 0.0]), Series("b", "#222", [2.0, 3.0])],
        usd,
    )
    bars = marks(svg, "bar")
    assert [(b["data-series"], b["data-category"], b["data-value"]) for b in bars] == [
        ("a", "Mon", "1.0"), ("b", "Mon", "2.0"), ("b", "Tue", "3.0"),
    ]  # fmt: skip
    heights = [float(b["height"] or 0) for b in bars]
    # Scale: a tick of 3.0 is the top of the axis, and 1 + 2 = 3 fills the plot.
    assert heights[0] + heights[1] == pytest.approx(heights[2])
    assert 'data-empty="false"' in svg


def test_a_chart_without_data_says_so() -> None:
    svg = stacked_bars("spend", "Spend", ["Mon"], [Series("a", "#111", [0.0])], usd)
    assert 'data-empty="true"' in svg and "no data yet" in svg and not marks(svg, "bar")
    assert 'data-empty="true"' in line_chart("l", "L", [], [], usd)
    assert "no ratings" in hbars("h", "H", ["x"], [None], ["#111"], str, empty_message="no ratings")


def test_labels_are_escaped() -> None:
    svg = hbars("h", "<T>", ['<script>"x"'], [1.0], ['"red'], usd)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&quot;red" in svg
    parse(svg)


def test_line_chart_draws_one_point_per_category() -> None:
    svg = line_chart("l", "L", ["a", "b", "c"], [Series("s", "#111", [1.0, 2.0, 4.0])], usd)
    assert len(marks(svg, "line")) == 1
    assert [p["data-value"] for p in marks(svg, "point")] == ["1.0", "2.0", "4.0"]
    ys = [float(p["cy"] or 0) for p in marks(svg, "point")]
    assert ys[0] > ys[1] > ys[2]  # higher values sit higher on the page


def test_spend_and_cumulative_series_from_daily_rows() -> None:
    data = sample()
    spend = spend_by_day(data, TIERS)
    assert list(spend) == ["haiku", "sonnet", "opus", "classifier"]
    assert spend["haiku"] == pytest.approx([0.001, 0.002, 0.003])
    assert spend["classifier"] == pytest.approx([0.002] * 3)
    actual, if_opus = cumulative_savings(data)
    assert actual[-1] == pytest.approx(sum(row.cost_usd for row in data.daily))
    assert if_opus == pytest.approx([0.079, 0.158, 0.237])


def test_cache_savings_sum_the_stored_figures_not_the_token_counts() -> None:
    # A write that nobody read stores a negative saving (its premium).
    rows = [
        DailyCost(DAY0, "sonnet", "complete", 2, 0.0, 0.0, 1_000_000, 2_000_000, Decimal("4.65")),
        DailyCost(DAY0, "haiku", "complete", 1, 0.0, 0.0, 3_000, 0, Decimal("-0.00075")),
        DailyCost(DAY0, "retired", "complete", 1, 0.0, 0.0, 0, 10, Decimal("0.00001")),
    ]
    assert cache_savings(rows) == CacheSavings(2_000_010, 1_003_000, 4.64926)


def test_page_is_self_contained_with_five_charts() -> None:
    page = render_dashboard(sample(), TIERS)
    tags = parse(page).tags
    charts = [a["data-chart"] for tag, a in tags if tag == "svg"]
    assert charts == [
        "spend-per-day", "savings-over-time", "tier-distribution", "satisfaction-by-tier",
        "top-batches",
    ]  # fmt: skip
    # Nothing is fetched: no script, stylesheet link, image or external URL.
    assert not [tag for tag, _ in tags if tag in ("script", "link", "img", "iframe")]
    assert not re.search(r"https?://", page)
    assert "&lt;b&gt;ops&lt;/b&gt;" in page  # the scope (a key's name) is escaped
    assert "SIMULATED" in page and "$0.186" in page and "21.5%" in page
    assert "0123456" in page and "saved" in page
    satisfaction = page.split('data-chart="satisfaction-by-tier"')[1].split("</svg>")[0]
    assert satisfaction.count('class="bar"') == 1 and "no data" in satisfaction


def test_cache_tile_says_when_nothing_was_cached() -> None:
    page = render_dashboard(sample(with_cache=False), TIERS)
    assert "no cached tokens in this window" in page
    assert "15,000 tokens read from cache" in render_dashboard(sample(), TIERS)
