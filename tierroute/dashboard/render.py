"""The dashboard as one self-contained HTML page: inline CSS and SVG, no script, no links."""

from __future__ import annotations

from html import escape
from typing import Any

from tierroute.dashboard.data import (
    CLASSIFIER,
    LEARNING,
    DashboardData,
    cumulative_savings,
    spend_by_day,
)
from tierroute.dashboard.svg import Frame, Series, hbars, line_chart, stacked_bars
from tierroute.domain.tiers import TierTable
from tierroute.store import rollups

TIER_COLORS = {
    "haiku": "#10b981", "sonnet": "#3b82f6", "opus": "#8b5cf6", CLASSIFIER: "#9ca3af",
    LEARNING: "#f59e0b",
}  # fmt: skip
OTHER_COLORS = ("#f59e0b", "#ef4444", "#14b8a6", "#6366f1")
ACTUAL_COLOR = "#0f766e"
IF_OPUS_COLOR = "#c026d3"
# What the page may load: nothing but itself (the API sends this as its CSP header).
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif;
       margin: 0; background: #f3f4f6; color: #111827; }
header { background: #111827; color: #f9fafb; padding: 18px 28px; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; color: #d1d5db; font-size: 13px; }
main { padding: 20px 28px 32px; max-width: 1400px; }
.banner { background: #fef3c7; border: 1px solid #f59e0b; padding: 8px 12px;
          border-radius: 6px; margin-bottom: 16px; font-size: 14px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr));
         gap: 12px; margin-bottom: 18px; }
.tile { background: #fff; border-radius: 8px; padding: 12px 14px;
        box-shadow: 0 1px 2px rgba(0,0,0,.06); }
.tile .label { font-size: 12px; color: #6b7280; text-transform: uppercase;
               letter-spacing: .04em; }
.tile .value { font-size: 22px; font-weight: 600; margin-top: 4px; }
.tile .sub { font-size: 12px; color: #6b7280; margin-top: 2px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(660px, 1fr));
        gap: 16px; }
section.card { background: #fff; border-radius: 8px; padding: 14px 16px;
               box-shadow: 0 1px 2px rgba(0,0,0,.06); }
section.card h2 { font-size: 15px; margin: 0 0 2px; }
section.card p.hint { font-size: 12px; color: #6b7280; margin: 0 0 8px; }
svg.chart { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 8px; }
th, td { text-align: right; padding: 4px 8px; border-bottom: 1px solid #e5e7eb; }
th:first-child, td:first-child { text-align: left; font-family: ui-monospace, monospace; }
footer { color: #6b7280; font-size: 12px; margin-top: 20px; }
"""


def usd(value: float) -> str:
    """Dollars with as many decimals as a small figure needs."""
    sign, size = ("-" if value < 0 else ""), abs(value)
    if size >= 100:
        return f"{sign}${size:,.0f}"
    if size >= 1:
        return f"{sign}${size:,.2f}"
    if size == 0:
        return "$0"
    if size >= 0.01:  # cents always, a third decimal when it says something
        text = f"{size:.3f}"
        return f"{sign}${text[:-1] if text.endswith('0') else text}"
    return f"{sign}${size:.2g}" if size >= 1e-6 else f"{sign}${size:.1e}"


def tier_color(name: str, tiers: TierTable) -> str:
    """A stable colour per tier; tiers outside the bundled table cycle a palette."""
    if name in TIER_COLORS:
        return TIER_COLORS[name]
    names = tiers.names
    index = names.index(name) if name in names else len(names)
    return OTHER_COLORS[index % len(OTHER_COLORS)]


def _tile(label: str, value: str, sub: str = "", name: str = "") -> str:
    sub_html = f'<div class="sub">{escape(sub)}</div>' if sub else ""
    return (
        f'<div class="tile" data-tile="{escape(name, quote=True)}">'
        f'<div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div>{sub_html}</div>'
    )


def _card(title: str, hint: str, body: str, name: str) -> str:
    return (
        f'<section class="card" id="{name}"><h2>{escape(title)}</h2>'
        f'<p class="hint">{escape(hint)}</p>{body}</section>'
    )


def _tiles(data: DashboardData) -> str:
    r = data.report
    pct = r["saved_pct"]
    cache = data.cache
    if cache.read_tokens or cache.write_tokens:
        cache_tile = _tile(
            "Prompt caching",
            usd(cache.saved_usd),
            f"{cache.read_tokens:,} tokens read from cache ({data.days[0]:%b %d} on)",
            "cache",
        )
    else:
        cache_tile = _tile("Prompt caching", "—", "no cached tokens in this window", "cache")
    return "".join(
        [
            _tile("Total cost", usd(r["total_cost_usd"]), "all time, classifier included", "total"),
            _tile(
                "Cost if all Opus",
                usd(r["cost_if_all_opus_usd"]),
                "same usage, top tier",
                "if-opus",
            ),
            _tile(
                "Saved",
                usd(r["saved_usd"]),
                f"{pct:.1f}% of the all-Opus cost" if pct is not None else "no calls yet",
                "saved",
            ),
            _tile(
                "Jobs answered", f"{r['jobs_succeeded']:,}", f"{r['jobs_failed']:,} failed", "jobs"
            ),
            _tile(
                "Classifier cost",
                usd(r["classifier_cost_usd"]),
                f"{r['classifier_calls']:,} routing calls",
                "classifier",
            ),
            cache_tile,
            *_learning_tile(r),
        ]
    )


def _learning_tile(r: dict[str, Any]) -> list[str]:
    """Shadow judging's cost, apart from the cost of answering; none while it is off."""
    if not (r.get("shadow_calls") or r.get("judge_calls")):
        return []
    share = r.get("learning_share_today_pct")
    today = f"; today {share:.1f}% of completions" if share is not None else ""
    sub = f"{r['judged_jobs']:,} jobs shadow-judged{today}"
    return [_tile("Learning cost", usd(r["learning_cost_usd"]), sub, "learning")]


def _batches_table(data: DashboardData) -> str:
    if not data.top_batches:
        return ""
    rows = "".join(
        f"<tr><td>{escape(b.id[:8])}</td><td>{b.created_at:%Y-%m-%d %H:%M}</td>"
        f"<td>{b.succeeded:,} / {b.jobs:,}</td><td>{usd(b.cost_usd)}</td>"
        f"<td>{usd(b.cost_if_opus_usd)}</td><td>{usd(b.saved_usd)}</td></tr>"
        for b in data.top_batches
    )
    return (
        "<table><thead><tr><th>batch</th><th>created (UTC)</th><th>succeeded / jobs</th>"
        "<th>cost</th><th>if all Opus</th><th>saved</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def render_dashboard(data: DashboardData, tiers: TierTable) -> str:
    """The whole page. Every chart is inline SVG, so it also works as a static file."""
    days = [f"{day:%b %d}" for day in data.days]
    spend = spend_by_day(data, tiers)
    spend_chart = stacked_bars(
        "spend-per-day",
        "Spend per tier per day (USD)",
        days,
        [Series(name, tier_color(name, tiers), values) for name, values in spend.items()],
        usd,
    )
    actual, if_opus = cumulative_savings(data)
    savings_chart = line_chart(
        "savings-over-time",
        "Cumulative cost against all-Opus (USD)",
        days,
        [
            Series("cost if all Opus", IF_OPUS_COLOR, if_opus),
            Series("actual cost", ACTUAL_COLOR, actual),
        ],
        usd,
    )
    dist = data.report["distribution"]
    names = [row["tier"] for row in dist]
    colors = [tier_color(name, tiers) for name in names]
    distribution_chart = hbars(
        "tier-distribution",
        "Jobs answered per tier",
        names,
        [float(row["jobs"]) for row in dist],
        colors,
        lambda v: f"{v:,.0f} jobs",
        notes=[f"{row['share_pct']:.1f}% · {usd(row['cost_usd'])}" for row in dist],
    )
    satisfaction_chart = hbars(
        "satisfaction-by-tier",
        "Average satisfaction per tier (0 to 1)",
        names,
        [row["avg_satisfaction"] for row in dist],
        colors,
        lambda v: f"{v:.2f}",
        notes=[f"{row['rated_jobs']:,} rated" for row in dist],
        max_value=1.0,
        empty_message="no ratings yet: tierroute rate JOB_ID SCORE",
    )
    batches = data.top_batches
    batches_chart = hbars(
        "top-batches",
        "Top batches by cost (USD)",
        [b.id[:8] for b in batches],
        [b.cost_usd for b in batches],
        ["#0ea5e9"] * len(batches),
        usd,
        notes=[f"{b.jobs:,} jobs" for b in batches],
        frame=Frame(height=max(120, 40 + 28 * len(batches)), left=90, top=10, bottom=24),
        empty_message="no batches yet",
    )
    window = f"{data.days[0]:%Y-%m-%d} to {data.days[-1]:%Y-%m-%d} (UTC)"
    banner = ""
    if data.report["simulated"]:
        banner = (
            '<div class="banner">SIMULATED: these calls went to the Messages API '
            "simulator (no ANTHROPIC_API_KEY); dollars use list prices.</div>"
        )
    cards = [
        _card(
            "Spend per tier per day",
            f"completions by tier, plus the classifier; {window}",
            spend_chart,
            "spend",
        ),
        _card(
            "Savings against all-Opus",
            "running totals over the window; the gap is what routing saved",
            savings_chart,
            "savings",
        ),
        _card("Tier distribution", "succeeded jobs, all time", distribution_chart, "distribution"),
        _card(
            "Satisfaction by tier",
            "average rating of rated jobs, all time",
            satisfaction_chart,
            "satisfaction",
        ),
        _card(
            "Top batches by cost",
            "classifier and completion calls of each batch's jobs; "
            f"the costliest of the newest {rollups.RECENT_BATCHES} batches",
            batches_chart + _batches_table(data),
            "batches",
        ),
    ]
    generated = f"{data.generated_at:%Y-%m-%d %H:%M:%S} UTC"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>tierroute cost dashboard</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>tierroute · cost dashboard</h1>
<p>{escape(data.scope)} · generated {generated}</p>
</header>
<main>
{banner}
<div class="tiles">{_tiles(data)}</div>
<div class="grid">
{"".join(cards)}
</div>
<footer>Data: Postgres views cost_by_tier_day, savings and tier_quality (or the same sums
over one API key's jobs). Totals are all time; the day charts cover {escape(window)}.</footer>
</main>
</body>
</html>
"""
