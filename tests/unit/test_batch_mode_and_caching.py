"""Batch mode's request building and body parsing, cache breakpoints, priming, cache pricing."""

from __future__ import annotations

import io
import json
import uuid
from decimal import Decimal
from typing import Any

import fakeredis
import pytest
import redis

from tierroute.classify.llm import RUBRIC, build_classify_params
from tierroute.domain.cost import BATCH_RATE, TokenCounts, cache_savings_usd, cost_usd
from tierroute.domain.errors import InvalidInput
from tierroute.domain.status import BatchMode
from tierroute.domain.tiers import load_tier_table
from tierroute.llm.caching import (
    CacheGate,
    PrimerPass,
    cached_system,
    enter_with,
    leave_gate,
    prefix_key,
)
from tierroute.llm.provider import build_completion_params
from tierroute.pipeline.message_batches.body import read_batch_body, resolve_mode
from tierroute.pipeline.message_batches.requests import JobRow, batch_request, request_bytes, split
from tierroute.store.report import format_report
from worker.batch_tasks import POLL, beat_schedule

TABLE = load_tier_table()
HAIKU, SONNET = TABLE.get("haiku"), TABLE.get("sonnet")


def specs_of(raw: bytes, content_type: str = "application/json") -> tuple[list[str], Any]:
    specs, mode = read_batch_body(io.BytesIO(raw), content_type)
    return [spec.prompt for spec in specs], mode


def test_batch_bodies_name_their_mode_or_leave_it_to_the_query() -> None:
    assert specs_of(b'[{"prompt": "a"}]') == (["a"], None)
    assert specs_of(b'{"prompt": "a"}\n{"prompt": "b"}\n') == (["a", "b"], None)
    assert specs_of(b'{"prompt": "a"}', "application/x-ndjson") == (["a"], None)
    one_line = json.dumps({"jobs": [{"prompt": "a"}], "mode": "batch_api"}).encode()
    assert specs_of(one_line) == (["a"], BatchMode.BATCH_API)
    pretty = json.dumps({"mode": "live", "jobs": [{"prompt": "a"}, {"prompt": "b"}]}, indent=2)
    assert specs_of(pretty.encode()) == (["a", "b"], BatchMode.LIVE)
    assert specs_of(b'{"jobs": [{"prompt": "a"}]}') == (["a"], None)


def test_bad_batch_bodies_name_the_problem() -> None:
    with pytest.raises(InvalidInput, match="line 1"):
        specs_of(b'{"prompt": \n{"prompt": "b"}\n')
    with pytest.raises(InvalidInput, match="not a batch mode"):
        specs_of(b'{"jobs": [{"prompt": "a"}], "mode": "cheap"}')
    with pytest.raises(InvalidInput, match="extra: unknown field"):
        specs_of(b'{"jobs": [], "extra": 1}')
    with pytest.raises(InvalidInput, match="jobs item 2"):
        specs_of(b'{"jobs": [{"prompt": "a"}, {"prompt": ""}]}')
    assert resolve_mode(None, None) is BatchMode.LIVE
    assert resolve_mode("batch_api", None) is BatchMode.BATCH_API
    assert resolve_mode(None, BatchMode.BATCH_API) is BatchMode.BATCH_API
    assert resolve_mode("batch_api", BatchMode.BATCH_API) is BatchMode.BATCH_API
    with pytest.raises(InvalidInput, match="disagree"):
        resolve_mode("live", BatchMode.BATCH_API)


def test_a_batch_request_carries_the_live_calls_params() -> None:
    job = JobRow(uuid.uuid4(), "Explain CAP.", "x" * 20000, 500, {"effort": "low"})
    request = batch_request(SONNET, job)
    assert request == {
        "custom_id": str(job.id),
        "params": build_completion_params(
            SONNET, "Explain CAP.", "x" * 20000, 500, {"effort": "low"}
        ),
    }
    assert len(request["custom_id"]) <= 64
    assert request["params"]["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_batches_split_at_the_request_count_and_the_byte_limit() -> None:
    requests = [{"custom_id": str(n), "params": {"text": "y" * 100}} for n in range(5)]
    assert [len(c) for c in split(requests, 2, 10**6)] == [2, 2, 1]
    size = request_bytes(requests[0])
    assert [len(c) for c in split(requests, 100, 16 + 2 * size)] == [2, 2, 1]
    assert [len(c) for c in split(requests, 100, 10)] == [1, 1, 1, 1, 1]  # each alone


def test_long_system_prompts_get_a_cache_breakpoint_at_the_model_minimum() -> None:
    assert cached_system("short", HAIKU.min_cache_tokens) == "short"
    # ASCII is estimated at two characters a token (cost.estimate_tokens).
    just_below, at = "a" * (2 * 4096 - 2), "a" * (2 * 4096)
    assert cached_system(just_below, HAIKU.min_cache_tokens) == just_below
    assert cached_system(at, HAIKU.min_cache_tokens) == [
        {"type": "text", "text": at, "cache_control": {"type": "ephemeral"}}
    ]
    assert cached_system(at, 0) == at  # 0 in the tier table turns caching off
    assert isinstance(build_completion_params(SONNET, "q", "b" * 4096, 100)["system"], list)
    assert isinstance(build_completion_params(HAIKU, "q", "b" * 4096, 100)["system"], str)


def test_the_rubric_is_cached_only_when_long_enough() -> None:
    assert (
        build_classify_params("claude-haiku-4-5", "p", HAIKU.min_cache_tokens)["system"] == RUBRIC
    )
    blocks = build_classify_params("claude-haiku-4-5", "p", 10)["system"]
    assert blocks == [{"type": "text", "text": RUBRIC, "cache_control": {"type": "ephemeral"}}]


def test_prefix_keys_depend_on_model_and_prefix_only() -> None:
    params = build_completion_params(SONNET, "q1", "s" * 9000, 100)
    same = build_completion_params(SONNET, "another question", "s" * 9000, 300)
    assert prefix_key(params) is not None and prefix_key(params) == prefix_key(same)
    assert prefix_key(params) != prefix_key(build_completion_params(TABLE.top, "q1", "s" * 9000, 1))
    assert prefix_key(build_completion_params(SONNET, "q", "short", 100)) is None
    assert prefix_key({"model": "m"}) is None


def test_priming_never_blocks_on_a_broken_redis() -> None:
    broken = CacheGate(fakeredis.FakeRedis(), lock_s=1)

    def down(*_: Any, **__: Any) -> Any:
        raise redis.ConnectionError("down")

    broken._enter = down  # type: ignore[method-assign]
    assert enter_with(broken, "k", 0.5) is None  # call without priming
    assert enter_with(None, "k", 0.5) is None
    broken._leave = down  # type: ignore[method-assign]
    leave_gate(PrimerPass(broken, "k", "token"), warmed=True)  # logged, not raised


def test_cache_savings_net_the_write_premium_against_reads() -> None:
    write = TokenCounts(input_tokens=10, output_tokens=5, cache_write_5m_tokens=1_000_000)
    read = TokenCounts(input_tokens=10, output_tokens=5, cache_read_tokens=1_000_000)
    hour = TokenCounts(input_tokens=0, output_tokens=0, cache_write_1h_tokens=1_000_000)
    assert cache_savings_usd(write, HAIKU) == Decimal("-0.25")  # 1.25 - 1.00
    assert cache_savings_usd(read, HAIKU) == Decimal("0.90")  # 1.00 - 0.10
    assert cache_savings_usd(hour, SONNET) == Decimal("-3.00")  # 6.00 - 3.00
    assert cache_savings_usd(TokenCounts(10, 5), HAIKU) == 0
    assert BATCH_RATE * cost_usd(read, HAIKU) == cost_usd(read, HAIKU) / 2


def test_bundled_minimum_cacheable_lengths() -> None:
    assert {t.name: t.min_cache_tokens for t in TABLE.tiers} == {
        "haiku": 4096, "sonnet": 2048, "opus": 4096
    }  # fmt: skip


def test_report_shows_cache_and_batch_savings_lines_when_they_apply() -> None:
    report: dict[str, Any] = {
        "simulated": True, "jobs_succeeded": 1, "jobs_failed": 0, "distribution": [],
        "classifier_cost_usd": 0.0, "classifier_calls": 0, "completion_cost_usd": 1.0,
        "total_cost_usd": 1.0, "cost_if_all_opus_usd": 2.0, "saved_usd": 1.0, "saved_pct": 50.0,
        "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
        "cache_savings_usd": 0.0, "batch_api_calls": 0, "batch_api_savings_usd": 0.0,
    }  # fmt: skip
    assert "Cache savings" not in format_report(report)
    assert "Batch API savings" not in format_report(report)
    report.update(
        cache_read_input_tokens=15000, cache_creation_input_tokens=5000, cache_savings_usd=0.0123,
        batch_api_calls=1000, batch_api_savings_usd=1.5,
    )  # fmt: skip
    text = format_report(report)
    assert "Cache savings:       $0.012300  (15,000 tokens read from cache, 5,000 written)" in text
    assert "Batch API savings:   $1.500000  (1,000 calls at the 50% batch rate)" in text


def test_the_beat_polls_on_the_classify_queue() -> None:
    (entry,) = [e for e in beat_schedule(5.0).values() if e["task"] == POLL]
    assert entry["task"] == POLL and entry["schedule"] == 5.0
    assert entry["options"]["queue"] == "classify" and entry["options"]["expires"] >= 60
