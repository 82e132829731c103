"""Figures for /metrics, read at scrape time from Postgres and the limiter's Redis.

The API and the Celery workers are different processes, and a worker's in-memory
counters would die with it. Every billed call is already a row in `model_calls`
(tier, purpose, tokens, USD, latency), summed per hour into the rollups as it is
stored, so the counters and the latency histogram are read from those: every API
replica reports the same values, they survive restarts, and pruned calls still
count. The limiter counts its waits in Redis (`llm/ratelimit.py`).

Those aggregates still cost a query per scrape, so an API process keeps them for
`TIERROUTE_METRICS_CACHE_S` (AggregateCache): however many scrapers ask, Postgres
does one pass per window, and a scrape in between runs no SQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from tierroute.domain.status import JobStatus
from tierroute.store import rollups

# Upper bounds (seconds) of the model-call latency histogram; +Inf is implied.
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
NO_TIER = "none"  # the tier label of a job not routed yet

_BUCKET_COLUMNS = ",\n".join(
    f"coalesce(sum(le_{i}), 0) AS le_{i}" for i in range(len(LATENCY_BUCKETS_S))
)
# From the rollups (tierroute/store/rollups.py), whose latency buckets are cumulative
# counts at these same bounds (migration 0009), so a scrape reads a few thousand rows.
CALL_STATS = text(
    f"""
    SELECT tier, purpose,
           sum(calls) AS calls,
           coalesce(sum(cost_usd), 0) AS cost_usd,
           coalesce(sum(cost_if_opus_usd), 0) AS cost_if_opus_usd,
           coalesce(sum(input_tokens), 0) AS input_tokens,
           coalesce(sum(output_tokens), 0) AS output_tokens,
           coalesce(sum(cache_creation_input_tokens), 0) AS cache_creation_input_tokens,
           coalesce(sum(cache_read_input_tokens), 0) AS cache_read_input_tokens,
           coalesce(sum(latency_ms_sum), 0) AS latency_ms_sum,
           {_BUCKET_COLUMNS}
      FROM rollup_calls_hourly
     GROUP BY tier, purpose
     ORDER BY tier, purpose
    """
)
# Finished jobs from the rollups; jobs in flight from the status index, which holds few.
_IN_FLIGHT = ", ".join(f"'{status}'" for status in JobStatus if not status.finished)
JOB_COUNTS = text(
    f"""
    SELECT status, coalesce(tier, :none) AS tier, sum(jobs) AS jobs FROM rollup_jobs_hourly
     GROUP BY 1, 2 HAVING sum(jobs) > 0
    UNION ALL
    SELECT status, coalesce(tier, :none), count(*) FROM jobs
     WHERE status IN ({_IN_FLIGHT})
     GROUP BY 1, 2
    """
)


@dataclass(frozen=True)
class CallStats:
    """Totals of the billed calls of one tier and purpose, since the table began."""

    tier: str
    purpose: str
    calls: int
    cost_usd: float
    cost_if_opus_usd: float
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    latency_sum_s: float
    # Cumulative counts of calls at or under each bound of LATENCY_BUCKETS_S.
    latency_buckets: tuple[int, ...]


def call_stats(session: Session) -> list[CallStats]:
    """Calls, USD, tokens and the latency histogram per tier and purpose."""
    stats = []
    for row in session.execute(CALL_STATS).mappings():
        stats.append(
            CallStats(
                tier=row["tier"],
                purpose=row["purpose"],
                calls=int(row["calls"]),
                cost_usd=float(row["cost_usd"]),
                cost_if_opus_usd=float(row["cost_if_opus_usd"]),
                input_tokens=int(row["input_tokens"]),
                output_tokens=int(row["output_tokens"]),
                cache_creation_input_tokens=int(row["cache_creation_input_tokens"]),
                cache_read_input_tokens=int(row["cache_read_input_tokens"]),
                latency_sum_s=int(row["latency_ms_sum"]) / 1000,
                latency_buckets=tuple(int(row[f"le_{i}"]) for i in range(len(LATENCY_BUCKETS_S))),
            )
        )
    return stats


def job_counts(session: Session) -> dict[tuple[str, str], int]:
    """Jobs by (status, tier); a job not routed yet has tier NO_TIER."""
    rows = session.execute(JOB_COUNTS, {"none": NO_TIER}).all()
    return {(str(status), str(tier)): int(jobs) for status, tier, jobs in rows}


@dataclass(frozen=True)
class Aggregates:
    """What /metrics reads from Postgres: jobs by (status, tier) and call totals."""

    jobs: dict[tuple[str, str], int]
    calls: list[CallStats]


def read_aggregates(session: Session) -> Aggregates:
    """Both aggregates, in one transaction, after folding what is pending."""
    rollups.fold(session)
    return Aggregates(jobs=job_counts(session), calls=call_stats(session))


class AggregateCache:
    """The aggregates, read at most once per `max_age_s` however many scrapes ask.

    Scrapers arriving together share one read (single flight): one takes the lock
    and reads; the others get the previous figures at once, or wait for the read
    when there are none yet. A failed read is remembered for the same window, so
    scrapers facing a Postgres outage do not queue up behind one timeout each.
    """

    def __init__(
        self,
        read: Callable[[], Aggregates],
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        # The last read's outcome, replaced as one object so readers without the
        # lock never see a value and an error from different reads.
        self._last: _Outcome | None = None

    def get(self) -> Aggregates:
        """Fresh enough aggregates; raises what the last read raised if it failed."""
        last = self._last
        if not self._fresh(last) and self._lock.acquire(blocking=last is None):
            try:
                last = self._last
                if not self._fresh(last):  # else another scrape read while this one waited
                    last = self._last = self._refresh()
            finally:
                self._lock.release()
        assert last is not None  # a waiter got the lock only after a read finished
        if last.error is not None:
            raise last.error
        assert last.value is not None
        return last.value

    def _fresh(self, last: _Outcome | None) -> bool:
        return last is not None and self._clock() - last.read_at < self._max_age_s

    def _refresh(self) -> _Outcome:
        try:
            value = self._read()
        except Exception as exc:
            return _Outcome(value=None, error=exc, read_at=self._clock())
        return _Outcome(value=value, error=None, read_at=self._clock())


@dataclass(frozen=True)
class _Outcome:
    value: Aggregates | None
    error: Exception | None
    read_at: float
