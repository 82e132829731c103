"""Prompt caching on real Postgres and Redis: breakpoints, the simulator's cache, priming."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import anthropic
import httpx
import pytest
import redis
from sqlalchemy import select

from tests.conftest import Services, clear_settings_caches
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.errors import RateLimited
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import JobStatus
from tierroute.llm.caching import KEY_PREFIX, CacheGate, CacheWarming, enter_with, leave_gate
from tierroute.pipeline.steps import RetryLater, classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.jobs import create_job
from tierroute.store.models import Job, ModelCall
from tierroute.store.report import build_report, format_report

pytestmark = pytest.mark.integration

# About 5,000 tokens at four characters a token: above every tier's minimum.
SHARED_SYSTEM = "You are a meticulous support agent for the ACME product line. " * 320


@pytest.fixture
def rt(
    clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "llm")
    monkeypatch.setenv("TIERROUTE_CACHE_PRIME_WAIT_S", "0.2")
    clear_settings_caches()
    client = redis.Redis.from_url(clean_db.broker_url)
    for key in client.scan_iter(match=f"{KEY_PREFIX}:*"):
        client.delete(key)
    client.close()
    httpx.post(f"{sim.base_url}/_sim/cache/clear").raise_for_status()
    yield get_runtime()
    clear_settings_caches()


def submit(prompt: str, system: str | None, tier: str = "haiku") -> uuid.UUID:
    with session_scope() as session:
        spec = JobSpec(prompt=prompt, system=system, force_tier=tier)
        job, _ = create_job(session, spec, default_max_tokens=100)
        return job.id


def call_of(job_id: uuid.UUID) -> ModelCall:
    with session_scope() as session:
        return session.scalars(
            select(ModelCall).where(ModelCall.job_id == job_id, ModelCall.purpose == "complete")
        ).one()


def job(job_id: uuid.UUID) -> Job:
    with session_scope() as session:
        found = session.get(Job, job_id)
        assert found is not None
        return found


def test_every_call_after_the_first_reads_the_shared_system_prompt(rt: Runtime) -> None:
    ids = [submit(f"Question {n}: how do I reset my password?", SHARED_SYSTEM) for n in range(4)]
    for job_id in ids:
        assert classify_job(rt, job_id) == "haiku"
        assert complete_job(rt, job_id) is None
    calls = [call_of(job_id) for job_id in ids]
    prefix = calls[0].cache_creation_input_tokens
    assert prefix >= rt.tiers.get("haiku").min_cache_tokens
    assert calls[0].cache_read_input_tokens == 0
    for later in calls[1:]:
        assert (later.cache_creation_input_tokens, later.cache_read_input_tokens) == (0, prefix)
        assert later.input_tokens < 50  # only the uncached user turn
    haiku = rt.tiers.get("haiku")
    assert calls[0].cache_savings_usd == -prefix * (haiku.cache_write_5m - haiku.input) / 10**6
    assert calls[1].cache_savings_usd == prefix * (haiku.input - haiku.cache_read) / 10**6
    with session_scope() as session:
        report = build_report(session, rt.tiers)
    assert report["cache_read_input_tokens"] == 3 * prefix
    assert report["cache_creation_input_tokens"] == prefix
    expected = sum(float(c.cache_savings_usd) for c in calls)
    assert report["cache_savings_usd"] == pytest.approx(expected) and expected > 0
    assert "Cache savings:" in format_report(report)


def test_a_short_system_prompt_is_sent_as_is_and_never_touches_the_gate(
    rt: Runtime, clean_db: Services
) -> None:
    job_id = submit("Format this JSON: {}", "You are terse.")
    classify_job(rt, job_id)
    assert complete_job(rt, job_id) is None
    call = call_of(job_id)
    assert (call.cache_creation_input_tokens, call.cache_read_input_tokens) == (0, 0)
    assert call.cache_savings_usd == 0
    client = redis.Redis.from_url(clean_db.broker_url)
    assert list(client.scan_iter(match=f"{KEY_PREFIX}:*")) == []
    client.close()


def test_jobs_wait_for_the_primer_without_using_an_attempt(
    rt: Runtime, sim: RunningSimulator
) -> None:
    sim.configure(latency_ms={"claude-haiku-4-5": 800})
    first, second = (submit(f"Question {n}", SHARED_SYSTEM) for n in range(2))
    for job_id in (first, second):
        classify_job(rt, job_id)
    primer = threading.Thread(target=complete_job, args=(rt, first))
    primer.start()
    time.sleep(0.3)  # the primer holds the lock and is waiting for its answer
    waited = complete_job(rt, second)
    assert isinstance(waited, RetryLater) and waited.delay_s < 1
    held = job(second)
    assert held.attempts == 0 and "writing this prompt prefix" in str(held.error)
    primer.join()
    assert complete_job(rt, second) is None
    assert job(second).status == JobStatus.SUCCEEDED and job(second).attempts == 1
    prefix = call_of(first).cache_creation_input_tokens
    assert prefix > 0 and call_of(second).cache_read_input_tokens == prefix


def test_without_priming_concurrent_calls_all_write(rt: Runtime, sim: RunningSimulator) -> None:
    """Why priming exists: the simulator, like the API, reads an entry only once written."""
    sim.configure(latency_ms={"claude-haiku-4-5": 500})
    client = anthropic.Anthropic(api_key="x", base_url=sim.base_url, max_retries=0)
    system = [{"type": "text", "text": SHARED_SYSTEM, "cache_control": {"type": "ephemeral"}}]
    usages: list[int] = []

    def ask(n: int) -> None:
        message = client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=20,
            system=system,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": f"unprimed {uuid.uuid4()} {n}"}],
        )
        usages.append(message.usage.cache_creation_input_tokens or 0)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(usages) == 3 and all(written > 0 for written in usages)


@pytest.fixture
def gate(services: Services) -> Iterator[CacheGate]:
    client = redis.Redis.from_url(services.broker_url)
    yield CacheGate(client, lock_s=30)
    for key in client.scan_iter(match=f"{KEY_PREFIX}:*"):
        client.delete(key)
    client.close()


def test_the_first_job_primes_the_others_wait_then_read(gate: CacheGate) -> None:
    primer = enter_with(gate, "k", 0.5)
    assert primer is not None  # the first job takes the lock and calls
    with pytest.raises(CacheWarming) as waiting:
        enter_with(gate, "k", 0.5)  # another job, while the primer's call runs
    assert isinstance(waiting.value, RateLimited) and 0.3 < waiting.value.wait_s < 0.7
    leave_gate(primer, warmed=True)
    assert enter_with(gate, "k", 0.5) is None  # warm: the next job calls, no lock to free
    assert gate.enter("k", "t") == "warm"


def test_a_failed_primer_lets_the_next_job_prime(gate: CacheGate) -> None:
    primer = enter_with(gate, "k", 0.5)
    leave_gate(primer, warmed=False)  # its call failed
    assert gate.enter("k", "next") == "primer"  # lock released, nothing marked warm


def test_a_dead_primers_lock_lapses(gate: CacheGate, services: Services) -> None:
    short = CacheGate(redis.Redis.from_url(services.broker_url), lock_s=0.05)
    assert short.enter("lapse", "dead") == "primer"
    assert short.enter("lapse", "other") == "wait"
    time.sleep(0.1)
    assert short.enter("lapse", "other") == "primer"
