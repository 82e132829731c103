"""Reading Prometheus exposition text in tests: one value per (sample name, labels)."""

from __future__ import annotations

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import TOKEN_KINDS
from tierroute.store.aggregates import LATENCY_BUCKETS_S

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(exposition: str) -> Samples:
    """Every sample of a /metrics answer, keyed by its name and label set."""
    samples: Samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample with exactly these labels; KeyError names what is missing."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        raise KeyError(f"no sample {name}{labels}")
    return samples[key]


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def assert_matches_postgres(samples: Samples, database_url: str) -> None:
    """Jobs, calls, USD, tokens and the latency histogram equal the sums in Postgres."""
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        jobs = conn.execute(
            "SELECT status, coalesce(tier, 'none'), count(*) FROM jobs GROUP BY 1, 2"
        ).fetchall()
        calls = conn.execute(
            "SELECT tier, purpose, count(*), sum(cost_usd), sum(cost_if_opus_usd),"
            " sum(input_tokens), sum(output_tokens), sum(cache_creation_input_tokens),"
            " sum(cache_read_input_tokens), sum(latency_ms), array_agg(latency_ms)"
            " FROM model_calls GROUP BY 1, 2"
        ).fetchall()
    assert jobs and calls, "nothing to compare: run some jobs first"
    by_status: dict[str, int] = {}
    for status, tier, count in jobs:
        assert value(samples, "tierroute_jobs_by_tier", status=status, tier=tier) == count
        by_status[status] = by_status.get(status, 0) + count
    for status, count in by_status.items():
        assert value(samples, "tierroute_jobs", status=status) == count
    for tier, purpose, n, cost, if_opus, inp, out, cwrite, cread, lat_ms, lats in calls:
        labels = {"tier": tier, "purpose": purpose}
        assert value(samples, "tierroute_model_calls_total", **labels) == n
        assert value(samples, "tierroute_cost_usd_total", **labels) == pytest.approx(
            float(cost), abs=1e-12
        )
        assert value(samples, "tierroute_cost_if_opus_usd_total", **labels) == pytest.approx(
            float(if_opus), abs=1e-12
        )
        for kind, tokens in zip(TOKEN_KINDS, (inp, out, cwrite, cread), strict=True):
            assert value(samples, "tierroute_tokens_total", kind=kind, **labels) == tokens
        latency = "tierroute_model_call_latency_seconds"
        assert value(samples, f"{latency}_count", **labels) == n
        assert value(samples, f"{latency}_sum", **labels) == pytest.approx(lat_ms / 1000)
        for bound in LATENCY_BUCKETS_S:
            expected = sum(1 for ms in lats if ms <= bound * 1000)
            assert value(samples, f"{latency}_bucket", le=str(bound), **labels) == expected
        assert value(samples, f"{latency}_bucket", le="+Inf", **labels) == n
