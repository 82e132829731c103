"""What the cost dashboard shows, read from the analyst views or one key's rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tierroute.domain.tiers import TierTable
from tierroute.store import rollups
from tierroute.store.models import ApiKey
from tierroute.store.report import build_report

CLASSIFIER = "classifier"  # the series of the router's own calls
LEARNING = "learning"  # shadow judging's shadow and judge calls (tierroute/pipeline/shadow.py)
LEARNING_PURPOSES = frozenset({"shadow", "judge"})

# Global: the analyst view itself. Key-scoped: the same columns over the key's jobs,
# as in store/report.py (a /v1/route call has no job and names its key itself).
GLOBAL_DAILY = "SELECT * FROM cost_by_tier_day WHERE day >= :since"
# Key-scoped days and the top batches read the rollups (tierroute/store/rollups.py).


@dataclass(frozen=True)
class DailyCost:
    """One row of cost_by_tier_day: a day's calls of one tier and purpose."""

    day: date
    tier: str
    purpose: str
    calls: int
    cost_usd: float
    cost_if_opus_usd: float
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    # What caching saved, as stored on each call when it was billed (model_calls); kept
    # exact so the window's sum is the report's to the last digit.
    cache_savings_usd: Decimal


@dataclass(frozen=True)
class BatchCost:
    """A batch and what its jobs cost so far."""

    id: str
    created_at: datetime
    jobs: int
    succeeded: int
    cost_usd: float
    cost_if_opus_usd: float

    @property
    def saved_usd(self) -> float:
        return self.cost_if_opus_usd - self.cost_usd


@dataclass(frozen=True)
class CacheSavings:
    """Prompt caching's effect: reads billed below the input price, writes above it."""

    read_tokens: int
    write_tokens: int
    saved_usd: float


@dataclass(frozen=True)
class DashboardData:
    """Everything the page draws, already aggregated."""

    scope: str
    generated_at: datetime
    days: list[date]  # the x axis: every day of the window that is drawn
    report: dict[str, Any]  # build_report's figures, all time
    daily: list[DailyCost]
    top_batches: list[BatchCost]  # the costliest of the newest rollups.RECENT_BATCHES
    cache: CacheSavings


def load_dashboard(
    session: Session,
    tiers: TierTable,
    api_key_id: uuid.UUID | None = None,
    *,
    days: int = 30,
    top: int = 10,
    now: datetime | None = None,
) -> DashboardData:
    """The dashboard's figures: global (the views) or one API key's jobs only."""
    rollups.fold(session)
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date()
    since = today - timedelta(days=days - 1)
    if api_key_id is None:
        rows = session.execute(text(GLOBAL_DAILY), {"since": since}).mappings()
        scope = "all API keys"
    else:
        params = {"key": api_key_id, "since": since}
        rows = session.execute(text(rollups.SCOPED_DAILY), params).mappings()
        key = session.get(ApiKey, api_key_id)
        scope = f"API key {key.name} ({key.prefix}…)" if key else "one API key"
    daily = [
        DailyCost(
            day=row["day"],
            tier=row["tier"],
            purpose=row["purpose"],
            calls=int(row["calls"]),
            cost_usd=float(row["cost_usd"] or 0),
            cost_if_opus_usd=float(row["cost_if_opus_usd"] or 0),
            cache_creation_input_tokens=int(row["cache_creation_input_tokens"] or 0),
            cache_read_input_tokens=int(row["cache_read_input_tokens"] or 0),
            cache_savings_usd=Decimal(row["cache_savings_usd"] or 0),
        )
        for row in rows
    ]
    daily.sort(key=lambda d: (d.day, d.tier, d.purpose))
    scope_sql, scope_params = rollups.key_scope(api_key_id)
    batches = [
        BatchCost(
            id=str(row["id"]),
            created_at=row["created_at"],
            jobs=int(row["job_count"]),
            succeeded=int(row["succeeded"]),
            cost_usd=float(row["cost_usd"]),
            cost_if_opus_usd=float(row["cost_if_opus_usd"]),
        )
        for row in session.execute(
            text(rollups.TOP_BATCHES.format(scope=scope_sql)),
            {**scope_params, "top": top, "recent": rollups.RECENT_BATCHES},
        ).mappings()
    ]
    first = min((d.day for d in daily), default=today)
    return DashboardData(
        scope=scope,
        generated_at=now,
        days=[first + timedelta(days=i) for i in range((today - first).days + 1)],
        report=build_report(session, tiers, api_key_id=api_key_id),
        daily=daily,
        top_batches=batches,
        cache=cache_savings(daily),
    )


def cache_savings(daily: list[DailyCost]) -> CacheSavings:
    """What caching saved in the window: the stored per-call figures, summed as the
    report sums them, so the two never disagree."""
    return CacheSavings(
        read_tokens=sum(row.cache_read_input_tokens for row in daily),
        write_tokens=sum(row.cache_creation_input_tokens for row in daily),
        saved_usd=float(sum((row.cache_savings_usd for row in daily), Decimal(0))),
    )


def spend_by_day(data: DashboardData, tiers: TierTable) -> dict[str, list[float]]:
    """USD per day: one series per tier's completions, the classifier's calls, and learning.

    Shadow judging's calls are a series of their own, shown only when there are some.
    """
    index = {day: i for i, day in enumerate(data.days)}
    # Every tier gets a series, in tier order, so colours and the legend never move.
    series = {name: [0.0] * len(data.days) for name in [*tiers.names, CLASSIFIER]}
    for row in data.daily:
        if row.day in index:
            name = CLASSIFIER if row.purpose == "classify" else row.tier
            if row.purpose in LEARNING_PURPOSES:
                name = LEARNING
            series.setdefault(name, [0.0] * len(data.days))[index[row.day]] += row.cost_usd
    return series


def cumulative_savings(data: DashboardData) -> tuple[list[float], list[float]]:
    """Running totals over the window: (actual USD, USD if every call were on Opus)."""
    index = {day: i for i, day in enumerate(data.days)}
    actual, if_opus = [0.0] * len(data.days), [0.0] * len(data.days)
    for row in data.daily:
        if row.day in index:
            actual[index[row.day]] += row.cost_usd
            if_opus[index[row.day]] += row.cost_if_opus_usd
    for i in range(1, len(data.days)):
        actual[i] += actual[i - 1]
        if_opus[i] += if_opus[i - 1]
    return actual, if_opus
