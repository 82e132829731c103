"""The simulator's prompt cache and Message Batches, driven by the real SDK where they are HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tierroute.devstack.simulator import RunningSimulator, SimulatorConfig, serve_in_thread
from tierroute.devstack.simulator.cache import PromptCache, breakpoints
from tierroute.domain.tiers import load_tier_table

TABLE = load_tier_table()
HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"
LONG = "Shared instructions for every request in this test. " * 400  # ~5,200 tokens
SHORT = "Be brief."


def cached(text: str, ttl: str | None = None) -> dict[str, Any]:
    control: dict[str, Any] = {"type": "ephemeral"}
    if ttl:
        control["ttl"] = ttl
    return {"type": "text", "text": text, "cache_control": control}


def body(system: Any, question: str = "Hello?", model: str = HAIKU) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 20,
        "system": system,
        "messages": [{"role": "user", "content": question}],
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> PromptCache:
    return PromptCache(clock)


def test_a_miss_writes_the_prefix_and_a_hit_reads_it(cache: PromptCache) -> None:
    first = cache.use(HAIKU, body([cached(LONG)]), TABLE)
    assert first.read == 0 and first.write_5m == len(LONG) // 4 and first.write_1h == 0
    second = cache.use(HAIKU, body([cached(LONG)], "Another question"), TABLE)
    assert (second.read, second.written) == (first.write_5m, 0)
    assert cache.use(SONNET, body([cached(LONG)], model=SONNET), TABLE).read == 0  # per model


def test_entries_live_five_minutes_from_their_last_use(cache: PromptCache, clock: Clock) -> None:
    cache.use(HAIKU, body([cached(LONG)]), TABLE)
    clock.now += 299
    assert cache.use(HAIKU, body([cached(LONG)]), TABLE).read > 0  # refreshes the entry
    clock.now += 299
    assert cache.use(HAIKU, body([cached(LONG)]), TABLE).read > 0
    clock.now += 301
    assert cache.use(HAIKU, body([cached(LONG)]), TABLE).read == 0


def test_a_one_hour_breakpoint_is_billed_as_such(cache: PromptCache, clock: Clock) -> None:
    usage = cache.use(HAIKU, body([cached(LONG, "1h")]), TABLE)
    assert usage.write_1h > 0 and usage.write_5m == 0
    clock.now += 3000
    assert cache.use(HAIKU, body([cached(LONG, "1h")]), TABLE).read == usage.write_1h


def test_an_entry_is_readable_only_once_its_writer_has_answered(
    cache: PromptCache, clock: Clock
) -> None:
    cache.use(HAIKU, body([cached(LONG)]), TABLE, ready_in_s=2.0)
    clock.now += 1
    assert cache.use(HAIKU, body([cached(LONG)]), TABLE, ready_in_s=2.0).written > 0
    clock.now += 1.5
    assert cache.use(HAIKU, body([cached(LONG)]), TABLE).read > 0


def test_prefixes_below_the_model_minimum_are_not_cached(cache: PromptCache) -> None:
    below = "x" * (4 * 4095)  # 4,095 tokens: under Haiku 4.5's 4,096
    assert cache.use(HAIKU, body([cached(below)]), TABLE).written == 0
    assert cache.use(SONNET, body([cached(below)], model=SONNET), TABLE).written == 4095
    assert cache.use(HAIKU, body([cached(SHORT)]), TABLE).written == 0
    assert cache.use(HAIKU, body(LONG), TABLE).written == 0  # a plain string: no breakpoint
    assert cache.use("claude-unknown", body([cached("y" * 4096)], model="x"), TABLE).written == 1024


def test_the_longest_cached_prefix_is_read_and_the_rest_written(cache: PromptCache) -> None:
    system = [cached(LONG), {"type": "text", "text": "Extra rules. " * 400}, cached("End.")]
    points = breakpoints(HAIKU, body(system))
    assert len(points) == 2 and points[0].tokens == len(LONG) // 4
    cache.use(HAIKU, body([cached(LONG)]), TABLE)
    usage = cache.use(HAIKU, body(system), TABLE)
    assert usage.read == len(LONG) // 4
    assert usage.written == points[-1].tokens - usage.read
    assert cache.use(HAIKU, body(system), TABLE).read == points[-1].tokens


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with serve_in_thread(SimulatorConfig(batch_processing_s=0.3)) as running:
        yield running


@pytest.fixture
def client(simulator: RunningSimulator) -> Iterator[anthropic.Anthropic]:
    simulator.reset()
    httpx.post(f"{simulator.base_url}/_sim/cache/clear").raise_for_status()
    with anthropic.Anthropic(api_key="x", base_url=simulator.base_url, max_retries=0) as sdk:
        yield sdk
    simulator.reset()


def test_live_calls_report_writes_then_reads_like_the_api(
    client: anthropic.Anthropic, simulator: RunningSimulator
) -> None:
    params = body([cached(LONG)], "Question A")
    total = client.messages.count_tokens(
        model=HAIKU, system=params["system"], messages=params["messages"]
    ).input_tokens
    first = client.messages.create(**params).usage
    assert first.cache_creation_input_tokens == len(LONG) // 4
    assert first.cache_creation is not None
    assert first.cache_creation.ephemeral_5m_input_tokens == len(LONG) // 4
    assert first.cache_read_input_tokens == 0
    assert first.input_tokens + first.cache_creation_input_tokens == total
    second = client.messages.create(**body([cached(LONG)], "Question B")).usage
    assert second.cache_read_input_tokens == len(LONG) // 4
    assert second.cache_creation_input_tokens == 0 and second.input_tokens < 20
    stats = httpx.get(f"{simulator.base_url}/_sim/cache").json()
    assert stats == {"entries": 1, "hits": 1, "writes": 1}


def batch_requests(n: int, model: str = HAIKU, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"custom_id": f"job-{i}", "params": {**body(SHORT, f"Question {i}", model), **extra}}
        for i in range(n)
    ]


def wait_ended(client: anthropic.Anthropic, batch_id: str) -> Any:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.05)
    raise AssertionError(f"{batch_id} did not end")


def test_a_batch_processes_then_ends_with_the_live_answers(client: anthropic.Anthropic) -> None:
    requests = batch_requests(3)
    created = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert created.processing_status == "in_progress" and created.results_url is None
    assert created.request_counts.processing == 3 and created.request_counts.succeeded == 0
    assert created.expires_at > created.created_at
    ended = wait_ended(client, created.id)
    assert ended.request_counts.succeeded == 3 and ended.request_counts.processing == 0
    assert ended.ended_at is not None and ended.results_url
    results = {r.custom_id: r.result for r in client.messages.batches.results(created.id)}
    assert set(results) == {"job-0", "job-1", "job-2"}
    live = client.messages.create(**requests[1]["params"])
    answer = results["job-1"]
    assert answer.type == "succeeded"
    assert answer.message.content == live.content and answer.message.id == live.id
    assert answer.message.usage.input_tokens == live.usage.input_tokens
    assert answer.message.usage.service_tier == "batch"


def test_requests_in_a_batch_share_the_prompt_cache(client: anthropic.Anthropic) -> None:
    requests = [{"custom_id": f"c{i}", "params": body([cached(LONG)], f"Q{i}")} for i in range(3)]
    created = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    wait_ended(client, created.id)
    usages = {
        r.custom_id: r.result.message.usage for r in client.messages.batches.results(created.id)
    }  # type: ignore[union-attr]
    assert usages["c0"].cache_creation_input_tokens == len(LONG) // 4
    assert usages["c1"].cache_read_input_tokens == usages["c2"].cache_read_input_tokens > 0


def test_injected_and_invalid_requests_give_their_result_types(
    client: anthropic.Anthropic, simulator: RunningSimulator
) -> None:
    simulator.configure(batch_result_sequence=["errored", "expired", "canceled"])
    requests = batch_requests(4)
    requests.append({"custom_id": "bad", "params": {**body(SHORT), "max_tokens": 10**6}})
    created = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    ended = wait_ended(client, created.id)
    counts = ended.request_counts
    assert (counts.succeeded, counts.errored, counts.expired, counts.canceled) == (1, 2, 1, 1)
    results = {r.custom_id: r.result for r in client.messages.batches.results(created.id)}
    assert [results[f"job-{i}"].type for i in range(4)] == [
        "errored", "expired", "canceled", "succeeded"
    ]  # fmt: skip
    injected = results["job-0"]
    assert injected.type == "errored" and injected.error.error.type == "api_error"
    invalid = results["bad"]
    assert invalid.type == "errored" and invalid.error.error.type == "invalid_request_error"
    assert "max_tokens" in invalid.error.error.message


def test_cancel_cancels_what_has_not_been_answered(
    client: anthropic.Anthropic, simulator: RunningSimulator
) -> None:
    simulator.configure(batch_processing_s=60)
    created = client.messages.batches.create(requests=batch_requests(2))  # type: ignore[arg-type]
    cancelling = client.messages.batches.cancel(created.id)
    assert cancelling.processing_status == "canceling"
    assert cancelling.cancel_initiated_at is not None
    ended = client.messages.batches.retrieve(created.id)
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 2
    assert {r.result.type for r in client.messages.batches.results(created.id)} == {"canceled"}


def test_batch_errors_use_the_api_envelope(
    client: anthropic.Anthropic, simulator: RunningSimulator
) -> None:
    simulator.configure(batch_processing_s=60)
    bad_bodies: list[Any] = [
        {"requests": []},
        {"requests": [{"custom_id": "has space", "params": body(SHORT)}]},
        {"requests": batch_requests(1) * 2},  # a custom_id twice
        {"requests": batch_requests(1), "extra": 1},
    ]
    for bad in bad_bodies:
        response = httpx.post(f"{simulator.base_url}/v1/messages/batches", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_nope")
    created = client.messages.batches.create(requests=batch_requests(1))  # type: ignore[arg-type]
    early = httpx.get(f"{simulator.base_url}/v1/messages/batches/{created.id}/results")
    assert early.status_code == 400 and "not ended" in early.json()["error"]["message"]


def test_batch_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERROUTE_SIM_BATCH_PROCESSING_S", "12.5")
    monkeypatch.setenv("TIERROUTE_SIM_BATCH_RESULT_SEQUENCE", '["errored", "expired"]')
    config = SimulatorConfig()
    assert config.batch_processing_s == 12.5
    assert config.batch_result_sequence == ["errored", "expired"]
    with pytest.raises(ValueError):
        SimulatorConfig(batch_result_sequence=["exploded"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        SimulatorConfig(batch_processing_s=-1)
