"""Anthropic's own SDK, pointed at tierroute, drives the live stack (issue 17).

Every response is checked against Anthropic's published OpenAPI spec.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.anthropic_spec import problems
from tierroute.devstack.stack import RunningStack

pytestmark = pytest.mark.e2e

HARD = (
    "Review this distributed system architecture for scalability bottlenecks, "
    "consistency trade-offs, and failure modes: a Postgres primary with two "
    "replicas, Kafka between services, and a Redis cache in front of the API."
)
EASY = 'Format this JSON: {"name":"John","age":30}'
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
# Requests in the big batch: enough to show the ingest and every custom_id coming back.
BATCH_REQUESTS = 1000
TIER_HEADERS = (
    "x-tierroute-tier",
    "x-tierroute-model",
    "x-tierroute-job-id",
    "x-tierroute-cost-usd",
)


@pytest.fixture
def client(stack: RunningStack) -> Iterator[anthropic.Anthropic]:
    # No retries: a retried create would be a second job, and hide our own errors.
    with anthropic.Anthropic(
        base_url=stack.api_url, api_key=stack.api_key, max_retries=0, timeout=120
    ) as sdk:
        yield sdk


def test_messages_create_returns_a_valid_message_routed(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(
        model="tierroute-auto",
        max_tokens=300,
        messages=[{"role": "user", "content": HARD}],
    )
    assert problems("Message", json.loads(raw.http_response.text)) == []
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.model == "claude-opus-4-6"
    assert raw.headers["x-tierroute-tier"] == "opus"
    assert all(raw.headers.get(name) for name in TIER_HEADERS)
    assert float(raw.headers["x-tierroute-cost-usd"]) > 0
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_a_tier_name_or_a_model_forces_the_tier(client: anthropic.Anthropic) -> None:
    for model, tier in (("haiku", "haiku"), ("claude-sonnet-4-6", "sonnet")):
        raw = client.messages.with_raw_response.create(
            model=model, max_tokens=50, messages=[{"role": "user", "content": HARD}]
        )
        assert raw.headers["x-tierroute-tier"] == tier


def test_a_forced_tool_call_comes_back_as_a_tool_use_block(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(
        model="tierroute-auto",
        max_tokens=200,
        messages=[{"role": "user", "content": "What is the weather in Rome?"}],
        tools=[
            {
                "name": "weather",
                "description": "Current weather for a city",
                "input_schema": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            }
        ],
        tool_choice={"type": "tool", "name": "weather"},
    )
    assert problems("Message", json.loads(raw.http_response.text)) == []
    message = raw.parse()
    assert message.stop_reason == "tool_use"
    call = next(block for block in message.content if block.type == "tool_use")
    assert call.name == "weather" and "city" in call.input  # type: ignore[operator]


def test_a_streamed_request_gets_the_whole_answer_as_anthropics_events(
    client: anthropic.Anthropic,
) -> None:
    request: dict[str, Any] = {
        "model": "tierroute-auto",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": HARD}],
    }
    with client.messages.stream(**request) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[-1].type == "text" and final.content[-1].text == text
    assert final.model == "claude-opus-4-6" and final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    # A streamed tool call arrives as its input JSON, which the SDK puts back together.
    tools = [
        {
            "name": "weather",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    with client.messages.stream(
        **request,
        tools=tools,
        tool_choice={"type": "tool", "name": "weather"},  # type: ignore[arg-type]
    ) as stream:
        called = stream.get_final_message()
    call = next(block for block in called.content if block.type == "tool_use")
    assert call.name == "weather" and "city" in call.input  # type: ignore[operator]


def test_a_bearer_key_works_too(stack: RunningStack) -> None:
    with anthropic.Anthropic(
        base_url=stack.api_url, api_key=None, auth_token=stack.api_key, max_retries=0
    ) as sdk:
        message = sdk.messages.create(
            model="haiku", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.content[0].type == "text"


def test_a_bad_key_is_anthropics_authentication_error(stack: RunningStack) -> None:
    sdk = anthropic.Anthropic(base_url=stack.api_url, api_key="nope", max_retries=0)
    with sdk, pytest.raises(anthropic.AuthenticationError) as caught:
        sdk.messages.create(
            model="haiku", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )
    assert problems("ErrorResponse", caught.value.body) == []


@pytest.mark.parametrize(
    ("extra", "parameter"),
    [
        ({"service_tier": "auto"}, "service_tier"),
        ({"container": "c-1"}, "container"),
        ({"temperature": 7}, "temperature"),
        ({"model": "gpt-4o"}, "model"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_an_unsupported_parameter_is_a_400_naming_it(
    client: anthropic.Anthropic, extra: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="tierroute-auto",
            max_tokens=20,
            messages=[{"role": "user", "content": "hi"}],
            extra_body=extra,
        )
    body = caught.value.body
    assert problems("ErrorResponse", body) == []
    assert isinstance(body, dict) and body["error"]["type"] == "invalid_request_error"
    assert parameter in body["error"]["message"]


def test_a_sticky_conversation_never_moves_down_a_tier(client: anthropic.Anthropic) -> None:
    turns: list[dict[str, Any]] = [{"role": "user", "content": HARD}]
    sticky = {"metadata": {"user_id": "u-1", "conversation_id": "e2e-sticky-1"}}
    first = client.messages.with_raw_response.create(
        model="tierroute-auto",
        max_tokens=100,
        messages=turns,
        extra_body=sticky,  # type: ignore[arg-type]
    )
    assert first.headers["x-tierroute-tier"] == "opus"
    # Alone, the easy follow-up is Haiku's; in the conversation it stays on Opus.
    alone = client.messages.with_raw_response.create(
        model="tierroute-auto", max_tokens=100, messages=[{"role": "user", "content": EASY}]
    )
    assert alone.headers["x-tierroute-tier"] == "haiku"
    turns += [
        {"role": "assistant", "content": first.parse().content[0].text},  # type: ignore[union-attr]
        {"role": "user", "content": EASY},
    ]
    second = client.messages.with_raw_response.create(
        model="tierroute-auto",
        max_tokens=100,
        messages=turns,
        extra_body=sticky,  # type: ignore[arg-type]
    )
    assert second.headers["x-tierroute-tier"] == "opus"


def batch_file_lines(count: int, prefix: str) -> list[dict[str, Any]]:
    """An Anthropic-format batch: single turns, multi-turn, structured output, forced tiers."""
    lines = []
    for n in range(count):
        params: dict[str, Any] = {"model": "tierroute-auto", "max_tokens": 64}
        kind = n % 4
        if kind == 0:
            params["messages"] = [{"role": "user", "content": f"{EASY} #{n}"}]
        elif kind == 1:
            params["messages"] = [
                {"role": "user", "content": f"Name a prime above {n}."},
                {"role": "assistant", "content": "Here is one."},
                {"role": "user", "content": [{"type": "text", "text": "And another?"}]},
            ]
            params["system"] = "Be brief."
        elif kind == 2:
            params["messages"] = [{"role": "user", "content": f"Give answer {n} as JSON."}]
            params["output_config"] = {"format": {"type": "json_schema", "schema": SCHEMA}}
        else:
            params["model"] = "claude-haiku-4-5"
            params["messages"] = [{"role": "user", "content": f"{HARD} ({n})"}]
            params["temperature"] = 0.2
        lines.append({"custom_id": f"{prefix}-{n}", "params": params})
    return lines


def wait_ended(client: anthropic.Anthropic, batch_id: str, timeout_s: float = 300) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        raw = client.messages.batches.with_raw_response.retrieve(batch_id)
        assert problems("MessageBatch", json.loads(raw.http_response.text)) == []
        batch = raw.parse()
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.5)
    raise AssertionError(f"batch {batch_id} did not end: {batch}")


def test_message_batches_round_trip_every_custom_id(
    client: anthropic.Anthropic, tmp_path: Any
) -> None:
    # From a JSONL file, as a team's existing batch would be.
    path = tmp_path / "batch.jsonl"
    path.write_text(
        "".join(json.dumps(line) + "\n" for line in batch_file_lines(BATCH_REQUESTS, "r"))
    )
    requests = [json.loads(line) for line in path.read_text().splitlines()]
    created = client.messages.batches.create(requests=requests)
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == BATCH_REQUESTS
    ended = wait_ended(client, created.id)
    assert ended.request_counts.succeeded == BATCH_REQUESTS
    assert ended.results_url and ended.ended_at is not None
    seen: Counter[str] = Counter()
    for result in client.messages.batches.results(created.id):
        seen[result.custom_id] += 1
        assert result.result.type == "succeeded"
    assert seen == Counter({f"r-{n}": 1 for n in range(BATCH_REQUESTS)})
    # The raw lines follow the spec's result shape.
    raw = httpx.get(ended.results_url, headers={"x-api-key": client.api_key or ""}, timeout=60)
    lines = [json.loads(line) for line in raw.text.splitlines()]
    assert len(lines) == BATCH_REQUESTS
    for line in lines[:50]:
        assert problems("MessageBatchIndividualResponse", line) == []
    structured = next(line for line in lines if line["custom_id"] == "r-2")
    assert '"answer"' in structured["result"]["message"]["content"][0]["text"]
    forced = next(line for line in lines if line["custom_id"] == "r-3")
    assert forced["result"]["message"]["model"] == "claude-haiku-4-5"
    listed = client.messages.batches.with_raw_response.list(limit=5)
    assert problems("ListResponse_MessageBatch_", json.loads(listed.http_response.text)) == []
    assert created.id in [batch.id for batch in listed.parse().data]


def test_a_cancelled_batch_ends_with_every_request_accounted_for(
    client: anthropic.Anthropic,
) -> None:
    count = 300
    created = client.messages.batches.create(requests=batch_file_lines(count, "c"))  # type: ignore[arg-type]
    cancelling = client.messages.batches.cancel(created.id)
    assert cancelling.processing_status in ("canceling", "ended")
    ended = wait_ended(client, created.id)
    counts = ended.request_counts
    assert counts.canceled > 0
    assert counts.canceled + counts.succeeded + counts.errored == count
    kinds = Counter(result.result.type for result in client.messages.batches.results(created.id))
    assert kinds["canceled"] == counts.canceled and sum(kinds.values()) == count


def test_batch_violations_are_anthropic_errors(client: anthropic.Anthropic) -> None:
    line = batch_file_lines(1, "d")[0]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.batches.create(requests=[line, line])
    assert "custom_id" in caught.value.body["error"]["message"]  # type: ignore[index]
    bad = {"custom_id": "e-1", "params": {**line["params"], "inference_geo": "us"}}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.batches.create(requests=[bad])
    assert problems("ErrorResponse", caught.value.body) == []
    assert "requests.0: params.inference_geo" in caught.value.body["error"]["message"]  # type: ignore[index]
    small = {
        "custom_id": "x",
        "params": {
            "model": "haiku",
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "x"}],
        },
    }
    too_many = [{**small, "custom_id": f"x{n}"} for n in range(100_001)]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.batches.create(requests=too_many)
    assert "more than 100000" in caught.value.body["error"]["message"]  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.batches.retrieve("msgbatch_nope")
    assert problems("ErrorResponse", missing.value.body) == []


def cli(*args: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tierroute", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TIERROUTE_API_KEY": key},
    )


def test_cli_submits_an_anthropic_batch_file_and_writes_its_results(
    stack: RunningStack, tmp_path: Path
) -> None:
    count = 200
    path = tmp_path / "anthropic_batch.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in batch_file_lines(count, "cli")))
    submitted = cli("submit", str(path), "--wait", "--api", stack.api_url, key=stack.api_key)
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip().splitlines()[-1]
    out = tmp_path / "results.jsonl"
    written = cli(
        "results", batch_id, "--format", "anthropic", "-o", str(out), "--api", stack.api_url,
        key=stack.api_key,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    assert f"{count} results" in written.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert Counter(line["custom_id"] for line in lines) == Counter(
        {f"cli-{n}": 1 for n in range(count)}
    )
    for line in lines[:20]:
        assert problems("MessageBatchIndividualResponse", line) == []
    own = cli("results", batch_id, "--api", stack.api_url, key=stack.api_key)
    views = [json.loads(line) for line in own.stdout.splitlines()]
    assert len(views) == count and all(view["status"] == "succeeded" for view in views)
