"""Prometheus metrics: this process's HTTP counter, plus figures read at scrape time.

Jobs, dollars, tokens and call latency are aggregates over Postgres (the workers
write every call there), queue depth comes from the broker, and rate-limiter waits
from the limiter's Redis counters (tierroute/store/aggregates.py says why). The Postgres
aggregates come through the app's AggregateCache, so a scrape costs no SQL while
they are fresh. A source that cannot be read is reported by
`tierroute_scrape_source_up` instead of failing the scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from tierroute.config import default_tier_table
from tierroute.domain.status import CallPurpose, JobStatus
from tierroute.messages import all_queues
from tierroute.runtime import Runtime
from tierroute.store.aggregates import (
    LATENCY_BUCKETS_S,
    NO_TIER,
    AggregateCache,
    Aggregates,
    CallStats,
    read_aggregates,
)
from tierroute.store.engine import session_scope

log = logging.getLogger(__name__)

REQUESTS = Counter("tierroute_http_requests", "HTTP requests", ["method", "route", "status"])
QUEUES = all_queues(default_tier_table())
TOKEN_KINDS = ("input", "output", "cache_creation", "cache_read")
WAIT_LIMITS = ("requests", "input_tokens", "output_tokens", "cooldown")

# Every series /metrics serves, for docs/operations.md, Grafana and the tests.
SERIES = (
    "tierroute_http_requests_total",
    "tierroute_jobs",
    "tierroute_jobs_by_tier",
    "tierroute_model_calls_total",
    "tierroute_cost_usd_total",
    "tierroute_cost_if_opus_usd_total",
    "tierroute_tokens_total",
    "tierroute_model_call_latency_seconds",
    "tierroute_queue_depth",
    "tierroute_ratelimit_waits_total",
    "tierroute_ratelimit_wait_seconds_total",
    "tierroute_scrape_source_up",
)


class QueueReader(Protocol):
    def queue_depths(self, queues: Iterable[str]) -> dict[str, int]: ...


@dataclass
class Snapshot:
    """What one scrape read; a None part means its source could not be read."""

    tiers: list[str]
    models: dict[str, str]  # model → tier
    jobs: dict[tuple[str, str], int] | None = None
    calls: list[CallStats] | None = None
    queues: dict[str, int] | None = None
    waits: dict[tuple[str, str], tuple[int, float]] | None = None


def aggregate_cache(max_age_s: float) -> AggregateCache:
    """A cache of this process's Postgres aggregates, read through its engine."""

    def read() -> Aggregates:
        with session_scope() as session:
            return read_aggregates(session)

    return AggregateCache(read, max_age_s)


def take_snapshot(rt: Runtime, broker: QueueReader, aggregates: AggregateCache) -> Snapshot:
    """Read Postgres (or its cached figures), the broker and the limiter; log what fails."""
    snap = Snapshot(tiers=list(rt.tiers.names), models={t.model: t.name for t in rt.tiers.tiers})
    try:
        figures = aggregates.get()
        snap.jobs, snap.calls = figures.jobs, figures.calls
    except Exception as exc:
        log.warning("metrics: cannot read Postgres: %s", exc)
    try:
        snap.queues = broker.queue_depths(QUEUES)
    except Exception as exc:
        log.warning("metrics: cannot read queue depths from the broker: %s", exc)
    try:
        limiter = rt.limiter()
        snap.waits = limiter.wait_counts() if limiter is not None else {}
    except Exception as exc:
        log.warning("metrics: cannot read rate-limiter waits: %s", exc)
    return snap


class SnapshotCollector:
    """Turns one Snapshot into metric families; a fresh one serves each scrape."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        snap = self.snap
        yield from self._jobs()
        yield from self._calls()
        if snap.queues is not None:
            depth = GaugeMetricFamily(
                "tierroute_queue_depth", "Messages waiting in each broker queue", labels=["queue"]
            )
            for queue in QUEUES:
                depth.add_metric([queue], snap.queues.get(queue, 0))
            yield depth
        yield from self._waits()
        up = GaugeMetricFamily(
            "tierroute_scrape_source_up",
            "1 if this scrape could read the source, else 0",
            labels=["source"],
        )
        for source, part in (("postgres", snap.calls), ("broker", snap.queues)):
            up.add_metric([source], 0 if part is None else 1)
        up.add_metric(["ratelimiter"], 0 if snap.waits is None else 1)
        yield up

    def _jobs(self) -> Iterator[Metric]:
        if self.snap.jobs is None:
            return
        by_status = GaugeMetricFamily("tierroute_jobs", "Jobs by status", labels=["status"])
        by_tier = GaugeMetricFamily(
            "tierroute_jobs_by_tier",
            f"Jobs by status and tier (tier {NO_TIER!r}: not routed yet)",
            labels=["status", "tier"],
        )
        tiers = [*self.snap.tiers, NO_TIER]
        tiers += sorted({tier for _, tier in self.snap.jobs} - set(tiers))
        for status in JobStatus:
            counts = [self.snap.jobs.get((status.value, tier), 0) for tier in tiers]
            by_status.add_metric([status.value], sum(counts))
            for tier, count in zip(tiers, counts, strict=True):
                by_tier.add_metric([status.value, tier], count)
        yield by_status
        yield by_tier

    def _calls(self) -> Iterator[Metric]:
        if self.snap.calls is None:
            return
        labels = ["tier", "purpose"]
        calls = CounterMetricFamily("tierroute_model_calls", "Billed model calls", labels=labels)
        cost = CounterMetricFamily(
            "tierroute_cost_usd", "USD billed for model calls", labels=labels
        )
        if_opus = CounterMetricFamily(
            "tierroute_cost_if_opus_usd",
            "USD the same calls would cost on the top tier (0 for classifier calls)",
            labels=labels,
        )
        tokens = CounterMetricFamily(
            "tierroute_tokens", "Tokens billed, by kind", labels=[*labels, "kind"]
        )
        latency = HistogramMetricFamily(
            "tierroute_model_call_latency_seconds",
            "Model call latency, from request to answer",
            labels=labels,
        )
        rows = {(s.tier, s.purpose): s for s in self.snap.calls}
        # Every tier's completions exist from the first scrape, so rate() has a start.
        for tier in self.snap.tiers:
            rows.setdefault((tier, CallPurpose.COMPLETE.value), _no_calls(tier))
        for (tier, purpose), s in sorted(rows.items()):
            calls.add_metric([tier, purpose], s.calls)
            cost.add_metric([tier, purpose], s.cost_usd)
            if_opus.add_metric([tier, purpose], s.cost_if_opus_usd)
            counts = (
                s.input_tokens,
                s.output_tokens,
                s.cache_creation_input_tokens,
                s.cache_read_input_tokens,
            )
            for kind, count in zip(TOKEN_KINDS, counts, strict=True):
                tokens.add_metric([tier, purpose, kind], count)
            buckets = [
                (_bound(b), n) for b, n in zip(LATENCY_BUCKETS_S, s.latency_buckets, strict=True)
            ]
            buckets.append(("+Inf", s.calls))
            latency.add_metric([tier, purpose], buckets, s.latency_sum_s)
        yield from (calls, cost, if_opus, tokens, latency)

    def _waits(self) -> Iterator[Metric]:
        if self.snap.waits is None:
            return
        labels = ["tier", "model", "limit"]
        waits = CounterMetricFamily(
            "tierroute_ratelimit_waits",
            "Times the shared rate limiter held a call back (the task retried later)",
            labels=labels,
        )
        seconds = CounterMetricFamily(
            "tierroute_ratelimit_wait_seconds",
            "Seconds the shared rate limiter asked held-back calls to wait",
            labels=labels,
        )
        rows = dict(self.snap.waits)
        for model in self.snap.models:
            for limit in WAIT_LIMITS:
                rows.setdefault((model, limit), (0, 0.0))
        for (model, limit), (count, wait_s) in sorted(rows.items()):
            tier = self.snap.models.get(model, "unknown")
            waits.add_metric([tier, model, limit], count)
            seconds.add_metric([tier, model, limit], wait_s)
        yield waits
        yield seconds


def _no_calls(tier: str) -> CallStats:
    return CallStats(
        tier=tier,
        purpose=CallPurpose.COMPLETE.value,
        calls=0,
        cost_usd=0.0,
        cost_if_opus_usd=0.0,
        input_tokens=0,
        output_tokens=0,
        cache_creation_input_tokens=0,
        cache_read_input_tokens=0,
        latency_sum_s=0.0,
        latency_buckets=(0,) * len(LATENCY_BUCKETS_S),
    )


def _bound(seconds: float) -> str:
    return repr(float(seconds))


def render_metrics(rt: Runtime, broker: QueueReader, aggregates: AggregateCache) -> bytes:
    """The exposition text: this process's own counters, then the scrape-time figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(take_snapshot(rt, broker, aggregates)))
    return generate_latest(REGISTRY) + generate_latest(registry)
