"""The simulator, driven over real HTTP by the real anthropic SDK."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tierroute.devstack.simulator import (
    RunningSimulator,
    SimulatorConfig,
    classify,
    serve_in_thread,
)
from tierroute.devstack.simulator.schema import generate_instance
from tierroute.domain.tiers import load_tier_table

# The SDK warns that claude-sonnet-4-5 is deprecated; that is not what these tests check.
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-6"

CLASSIFIER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tier": {"type": "integer", "enum": [1, 2, 3]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reasoning": {"type": "string"},
    },
    "required": ["tier", "confidence", "reasoning"],
    "additionalProperties": False,
}
LESSON_EXAMPLES = [
    ('Format this JSON: {"name":"John","age":30}', 1),
    ("Write a Python function to merge two sorted lists into one sorted list", 2),
    (
        "Review this distributed system architecture for scalability bottlenecks, consistency "
        "trade-offs, and failure modes: three regions, one primary Postgres, Kafka in between.",
        3,
    ),
]


# The bundled table changes as models come and go; these tests pin their own so the
# capability checks below do not depend on it.
PINNED_TIERS = """
[[tier]]
name = "haiku"
rank = 1
model = "claude-haiku-4-5"
input = 1.00
output = 5.00
cache_write_5m = 1.25
cache_write_1h = 2.00
cache_read = 0.10
context_window = 200000
max_output_tokens = 64000
supports_adaptive_thinking = false
supports_effort = false

[[tier]]
name = "sonnet"
rank = 2
model = "claude-sonnet-4-5"
input = 3.00
output = 15.00
cache_write_5m = 3.75
cache_write_1h = 6.00
cache_read = 0.30
context_window = 200000
max_output_tokens = 64000
supports_adaptive_thinking = false
supports_effort = false
thinking = "enabled"
thinking_budget_tokens = 2048

[[tier]]
name = "opus"
rank = 3
model = "claude-opus-4-6"
input = 5.00
output = 25.00
cache_write_5m = 6.25
cache_write_1h = 10.00
cache_read = 0.50
context_window = 200000
max_output_tokens = 128000
supports_adaptive_thinking = true
supports_effort = true
thinking = "adaptive"
effort = "high"
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    tiers = tmp_path_factory.mktemp("sim") / "tiers.toml"
    tiers.write_text(PINNED_TIERS)
    with serve_in_thread(SimulatorConfig(tiers_file=tiers)) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(sim: RunningSimulator) -> None:
    sim.reset()


@pytest.fixture
def client(sim: RunningSimulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="sim", base_url=sim.base_url, max_retries=0)


def ask(client: anthropic.Anthropic, text: str, model: str = HAIKU, **kwargs: Any) -> Any:
    kwargs.setdefault("max_tokens", 1024)
    return client.messages.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )


def classify_via_api(client: anthropic.Anthropic, prompt: str, schema: dict[str, Any]) -> Any:
    message = ask(
        client,
        f"Classify the prompt into tier 1, 2 or 3.\n<prompt>{prompt}</prompt>",
        max_tokens=512,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    return json.loads(message.content[0].text)


# --- plain messages -----------------------------------------------------------------


def test_plain_message_has_the_sdk_shape(client: anthropic.Anthropic) -> None:
    message = ask(client, "Explain what a hash map is")
    assert message.id.startswith("msg_sim_")
    assert message._request_id is not None and message._request_id.startswith("req_sim_")
    assert message.type == "message" and message.role == "assistant" and message.model == HAIKU
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith(f"[simulated {HAIKU}]")
    usage = message.usage
    assert usage.input_tokens >= 1 and usage.output_tokens >= 1
    assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0
    assert usage.service_tier == "standard"
    assert usage.output_tokens == -(-len(message.content[0].text) // 4)


def test_response_has_every_field_the_spec_requires(sim: RunningSimulator) -> None:
    spec_path = Path(
        os.environ.get("TIERROUTE_ANTHROPIC_SPEC")
        or Path(__file__).resolve().parents[3] / "shared" / "data" / "anthropic-openapi.json"
    )
    if not spec_path.exists():
        pytest.skip(f"no OpenAPI spec at {spec_path}")
    schemas = json.loads(spec_path.read_text())["components"]["schemas"]
    body = {
        "model": OPUS,
        "max_tokens": 500,
        "thinking": {"type": "adaptive"},
        "messages": [{"role": "user", "content": "hello"}],
    }
    message = httpx.post(f"{sim.base_url}/v1/messages", json=body).json()
    assert set(schemas["Message"]["required"]) <= set(message)
    assert set(schemas["Usage"]["required"]) <= set(message["usage"])
    assert set(schemas["ResponseThinkingBlock"]["required"]) <= set(message["content"][0])
    assert set(schemas["ResponseTextBlock"]["required"]) <= set(message["content"][1])


def test_same_request_same_reply(client: anthropic.Anthropic) -> None:
    first, second = ask(client, "Describe the water cycle"), ask(client, "Describe the water cycle")
    assert first.id == second.id
    assert first.content[0].text == second.content[0].text
    assert first.usage == second.usage
    assert ask(client, "Describe the carbon cycle").content[0].text != first.content[0].text


def test_bigger_models_answer_longer(client: anthropic.Anthropic) -> None:
    prompt = "Explain how garbage collection works in a managed runtime. " * 5
    haiku, opus = ask(client, prompt, HAIKU), ask(client, prompt, OPUS)
    assert opus.usage.output_tokens > haiku.usage.output_tokens


def test_answer_is_cut_at_max_tokens(client: anthropic.Anthropic) -> None:
    message = ask(client, "Explain the history of computing in detail", max_tokens=5)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens <= 5


def test_system_prompt_counts_as_input(client: anthropic.Anthropic) -> None:
    bare = ask(client, "Hello")
    with_system = ask(client, "Hello", system="You are a terse assistant. " * 10)
    assert with_system.usage.input_tokens > bare.usage.input_tokens


def test_streaming_gives_the_same_message(client: anthropic.Anthropic) -> None:
    params: dict[str, Any] = {
        "model": OPUS,
        "max_tokens": 2000,
        "thinking": {"type": "adaptive"},
        "messages": [{"role": "user", "content": "Explain how DNS resolution works"}],
    }
    with client.messages.stream(**params) as stream:
        streamed = stream.get_final_message()
    plain = client.messages.create(**params)
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in plain.content]
    assert streamed.usage == plain.usage and streamed.stop_reason == plain.stop_reason


def test_abandoned_stream_is_counted_and_freed(sim: RunningSimulator) -> None:
    sim.configure(default_latency_ms=3000)
    body = {
        "model": HAIKU,
        "max_tokens": 200,
        "stream": True,
        "messages": [{"role": "user", "content": "hello"}],
    }
    with httpx.stream("POST", f"{sim.base_url}/v1/messages", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert next(response.iter_lines()).startswith("event: message_start")
    deadline = time.monotonic() + 3
    while sim.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = sim.stats()
    assert stats["in_flight"] == 0 and stats["by_status"] == {"499": 1}


def test_max_tokens_zero_generates_nothing(sim: RunningSimulator) -> None:
    body = {"model": HAIKU, "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]}
    payload = httpx.post(f"{sim.base_url}/v1/messages", json=body).json()
    assert payload["content"] == [] and payload["usage"]["output_tokens"] == 0


def test_unknown_model_accepts_every_shape(client: anthropic.Anthropic) -> None:
    message = ask(
        client,
        "Think hard",
        model="claude-future-9",
        thinking={"type": "adaptive"},
        output_config={"effort": "max"},
    )
    assert [block.type for block in message.content] == ["thinking", "text"]


# --- structured output and the classifier -------------------------------------------


def test_structured_output_is_valid_for_the_schema(client: anthropic.Anthropic) -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 30},
            "count": {"type": "integer", "minimum": 3, "maximum": 7},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "ok": {"type": "boolean"},
            "kind": {"enum": ["a", "b"]},
            "version": {"const": 2},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "owner": {"$ref": "#/$defs/person"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["title", "count", "score", "ok", "kind", "version", "tags", "owner"],
        "additionalProperties": False,
        "$defs": {
            "person": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
                "additionalProperties": False,
            }
        },
    }
    output_config = {"format": {"type": "json_schema", "schema": schema}}
    message = ask(client, "Describe a book", output_config=output_config)
    value = json.loads(message.content[0].text)
    assert set(value) <= set(schema["properties"]) and set(schema["required"]) <= set(value)
    assert isinstance(value["title"], str) and len(value["title"]) <= 30
    assert isinstance(value["count"], int) and 3 <= value["count"] <= 7
    assert 0 <= value["score"] <= 1 and isinstance(value["ok"], bool)
    assert value["kind"] in ("a", "b") and value["version"] == 2
    assert len(value["tags"]) >= 1 and all(isinstance(t, str) for t in value["tags"])
    assert set(value["owner"]) == {"name"}
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize(("prompt", "tier"), LESSON_EXAMPLES)
def test_classifier_lesson_examples(client: anthropic.Anthropic, prompt: str, tier: int) -> None:
    verdict = classify_via_api(client, prompt, CLASSIFIER_SCHEMA)
    assert set(verdict) == {"tier", "confidence", "reasoning"}
    assert verdict["tier"] == tier
    assert 0.7 <= verdict["confidence"] <= 1.0
    assert "simulated" in verdict["reasoning"]


def test_classifier_fits_a_string_tier_enum(client: anthropic.Anthropic) -> None:
    schema = json.loads(json.dumps(CLASSIFIER_SCHEMA))
    schema["properties"]["tier"] = {"type": "string", "enum": ["haiku", "sonnet", "opus"]}
    assert classify_via_api(client, LESSON_EXAMPLES[2][0], schema)["tier"] == "opus"


def test_classifier_without_prompt_tags_uses_whole_message(client: anthropic.Anthropic) -> None:
    message = ask(
        client,
        LESSON_EXAMPLES[0][0],
        output_config={"format": {"type": "json_schema", "schema": CLASSIFIER_SCHEMA}},
    )
    assert json.loads(message.content[0].text)["tier"] == 1


def test_rubric_is_unsure_about_short_vague_prompts() -> None:
    assert classify("hi there").confidence < 0.7
    assert classify("Prove that the square root of 2 is irrational").tier == 3
    assert classify("Translate 'thank you' into French").tier == 1
    assert classify("Draft an email to my team about the release").tier == 2


def test_schema_generator_is_deterministic() -> None:
    schema = {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 9}}
    assert generate_instance(schema, 5) == generate_instance(schema, 5)


def test_classifier_fault_malformed(sim: RunningSimulator, client: anthropic.Anthropic) -> None:
    sim.configure(classifier_fault="malformed")
    message = ask(
        client,
        "<prompt>Format this</prompt>",
        output_config={"format": {"type": "json_schema", "schema": CLASSIFIER_SCHEMA}},
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(message.content[0].text)


def test_classifier_fault_refusal(sim: RunningSimulator, client: anthropic.Anthropic) -> None:
    sim.configure(classifier_fault="refusal")
    message = ask(
        client,
        "<prompt>Format this</prompt>",
        output_config={"format": {"type": "json_schema", "schema": CLASSIFIER_SCHEMA}},
    )
    assert message.stop_reason == "refusal"
    assert message.stop_details is not None and message.stop_details.type == "refusal"
    # Plain requests are unaffected: the fault targets structured output only.
    assert ask(client, "hello").stop_reason == "end_turn"


# --- thinking and capability checks --------------------------------------------------


def test_adaptive_thinking_adds_a_thinking_block(client: anthropic.Anthropic) -> None:
    message = ask(client, "Plan a migration", OPUS, thinking={"type": "adaptive"})
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.signature.startswith("sim")
    assert thinking.thinking.startswith("[simulated thinking")
    assert text.type == "text"
    text_tokens = -(-len(text.text) // 4)
    assert message.usage.output_tokens == -(-len(thinking.thinking) // 4) + text_tokens
    assert message.usage.output_tokens <= 1024


def test_enabled_thinking_stays_within_budget(client: anthropic.Anthropic) -> None:
    message = ask(
        client,
        "Analyse this long document. " * 2000,
        SONNET,
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    thinking = message.content[0]
    assert thinking.type == "thinking"
    assert -(-len(thinking.thinking) // 4) <= 1024
    assert message.usage.output_tokens <= 4000


@pytest.mark.parametrize(
    ("model", "kwargs", "needle"),
    [
        (HAIKU, {"thinking": {"type": "adaptive"}}, "adaptive"),
        (SONNET, {"thinking": {"type": "adaptive"}}, "adaptive"),
        (SONNET, {"output_config": {"effort": "high"}}, "effort"),
        (HAIKU, {"output_config": {"effort": "low"}}, "effort"),
        (SONNET, {"thinking": {"type": "enabled", "budget_tokens": 512}}, "budget_tokens"),
        (
            SONNET,
            {"max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 2048}},
            "budget_tokens",
        ),
    ],
)
def test_rejects_shapes_the_model_does_not_support(
    client: anthropic.Anthropic, model: str, kwargs: dict[str, Any], needle: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        ask(client, "hello", model, **kwargs)
    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"
    assert needle in (caught.value.api_message or "")


def test_bundled_table_capabilities_are_enforced() -> None:
    table = load_tier_table()
    with serve_in_thread(SimulatorConfig(tiers_file=None)) as running:
        client = anthropic.Anthropic(api_key="sim", base_url=running.base_url, max_retries=0)
        for tier in table.tiers:
            shapes: list[dict[str, Any]] = [
                {"thinking": {"type": "adaptive"}},
                {"output_config": {"effort": "high"}},
            ]
            for shape, supported in zip(
                shapes, (tier.supports_adaptive_thinking, tier.supports_effort), strict=True
            ):
                if supported:
                    assert ask(client, "hello", tier.model, **shape).stop_reason == "end_turn"
                else:
                    with pytest.raises(anthropic.BadRequestError):
                        ask(client, "hello", tier.model, **shape)


def test_opus_accepts_adaptive_thinking_and_effort(client: anthropic.Anthropic) -> None:
    message = ask(
        client, "hello", OPUS, thinking={"type": "adaptive"}, output_config={"effort": "high"}
    )
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize(
    "body",
    [
        {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
        {"model": HAIKU, "messages": [{"role": "user", "content": "hi"}]},
        {"model": HAIKU, "max_tokens": "ten", "messages": [{"role": "user", "content": "hi"}]},
        {"model": HAIKU, "max_tokens": 10, "messages": []},
        {"model": HAIKU, "max_tokens": 10, "messages": [{"role": "bot", "content": "hi"}]},
        # Above the model's output limit (the SDK itself refuses to send this one).
        {"model": HAIKU, "max_tokens": 100_000, "messages": [{"role": "user", "content": "hi"}]},
    ],
)
def test_basic_shape_errors_use_the_api_envelope(
    sim: RunningSimulator, body: dict[str, Any]
) -> None:
    response = httpx.post(f"{sim.base_url}/v1/messages", json=body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["error"]["message"]


# --- faults ----------------------------------------------------------------------------


def test_429_carries_retry_after(sim: RunningSimulator, client: anthropic.Anthropic) -> None:
    sim.configure(fault_sequence=[429], retry_after_s=3)
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(client, "hello")
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.type == "rate_limit_error"
    assert caught.value.request_id is not None


def test_429_without_retry_after(sim: RunningSimulator, client: anthropic.Anthropic) -> None:
    sim.configure(fault_sequence=[429], retry_after_s=None)
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(client, "hello")
    assert "retry-after" not in caught.value.response.headers


def test_529_is_overloaded(sim: RunningSimulator, client: anthropic.Anthropic) -> None:
    sim.configure(fault_rate_529=1.0)
    with pytest.raises(anthropic.OverloadedError) as caught:
        ask(client, "hello")
    assert isinstance(caught.value, anthropic.InternalServerError)
    assert caught.value.status_code == 529 and caught.value.type == "overloaded_error"


def test_fault_sequence_then_normal(sim: RunningSimulator, client: anthropic.Anthropic) -> None:
    sim.configure(fault_sequence=[429, 529, 500, 400, 200])
    expected: list[type[Exception]] = [
        anthropic.RateLimitError,
        anthropic.OverloadedError,
        anthropic.InternalServerError,
        anthropic.BadRequestError,
    ]
    for error in expected:
        with pytest.raises(error):
            ask(client, "hello")
    assert ask(client, "hello").stop_reason == "end_turn"
    assert ask(client, "hello").stop_reason == "end_turn"
    stats = sim.stats()
    assert stats["by_model"][HAIKU] == {"200": 2, "400": 1, "429": 1, "500": 1, "529": 1}


def test_faults_only_hit_listed_models(sim: RunningSimulator, client: anthropic.Anthropic) -> None:
    sim.configure(fault_rate_429=1.0, fault_models=[OPUS])
    assert ask(client, "hello", HAIKU).stop_reason == "end_turn"
    with pytest.raises(anthropic.RateLimitError):
        ask(client, "hello", OPUS)


def test_fault_rates_are_seeded(sim: RunningSimulator, client: anthropic.Anthropic) -> None:
    def pattern() -> list[int]:
        codes = []
        for _ in range(12):
            try:
                ask(client, "hello", max_tokens=16)
                codes.append(200)
            except anthropic.APIStatusError as exc:
                codes.append(exc.status_code)
        return codes

    sim.configure(fault_rate_429=0.3, fault_rate_500=0.2, seed=7)
    first = pattern()
    sim.reset(keep_config=True)
    assert pattern() == first
    assert {200, 429} <= set(first)


def test_timeout_fault_hangs_past_the_client_timeout(
    sim: RunningSimulator, client: anthropic.Anthropic
) -> None:
    sim.configure(fault_sequence=[0], timeout_sleep_s=5)
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        ask(client, "hello", timeout=0.3)
    assert time.monotonic() - started < 3
    # The server notices the hang-up and frees the request instead of sleeping on.
    deadline = time.monotonic() + 3
    while sim.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.stats()["by_status"] == {"499": 1}


# --- tokens, latency, concurrency, admin ------------------------------------------------


def test_count_tokens_matches_billed_input(client: anthropic.Anthropic) -> None:
    messages: Any = [{"role": "user", "content": "Summarise the plot of Hamlet in two lines"}]
    counted = client.messages.count_tokens(model=SONNET, messages=messages, system="Be brief.")
    sent = client.messages.create(
        model=SONNET, max_tokens=64, messages=messages, system="Be brief."
    )
    assert counted.input_tokens == sent.usage.input_tokens > 0


def test_latency_per_model(sim: RunningSimulator, client: anthropic.Anthropic) -> None:
    sim.configure(latency_ms={HAIKU: 200})
    started = time.monotonic()
    ask(client, "hello")
    assert time.monotonic() - started >= 0.15


def test_concurrent_requests_overlap(sim: RunningSimulator) -> None:
    sim.configure(default_latency_ms=300)

    async def burst() -> list[Any]:
        async with anthropic.AsyncAnthropic(
            api_key="sim", base_url=sim.base_url, max_retries=0
        ) as aclient:
            calls = [
                aclient.messages.create(
                    model=SONNET,
                    max_tokens=64,
                    messages=[{"role": "user", "content": f"request {i}"}],
                )
                for i in range(50)
            ]
            return await asyncio.gather(*calls)

    started = time.monotonic()
    replies = asyncio.run(burst())
    elapsed = time.monotonic() - started
    assert len(replies) == 50 and elapsed < 5
    stats = sim.stats()
    assert stats["by_status"] == {"200": 50}
    assert stats["peak_in_flight"] >= 25 and stats["in_flight"] == 0


def test_in_flight_is_counted_per_client_header(sim: RunningSimulator) -> None:
    sim.configure(default_latency_ms=300)

    async def burst(client_name: str | None, count: int) -> list[Any]:
        headers = {"x-tierroute-client": client_name} if client_name else None
        async with anthropic.AsyncAnthropic(
            api_key="sim", base_url=sim.base_url, max_retries=0, default_headers=headers
        ) as aclient:
            calls = [
                aclient.messages.create(
                    model=HAIKU,
                    max_tokens=16,
                    messages=[{"role": "user", "content": f"{client_name} {i}"}],
                )
                for i in range(count)
            ]
            return await asyncio.gather(*calls)

    async def both() -> None:
        await asyncio.gather(burst("tiers-1", 20), burst("classify-2", 5), burst(None, 3))

    asyncio.run(both())
    stats = sim.stats()
    assert stats["by_status"] == {"200": 28} and stats["in_flight"] == 0
    # Only named clients are tracked; peaks are per client, not shared.
    assert set(stats["peak_in_flight_by_client"]) == {"tiers-1", "classify-2"}
    assert 10 <= stats["peak_in_flight_by_client"]["tiers-1"] <= 20
    assert 1 <= stats["peak_in_flight_by_client"]["classify-2"] <= 5
    assert stats["in_flight_by_client"] == {}
    sim.reset()
    assert sim.stats()["peak_in_flight_by_client"] == {}


def test_admin_endpoints(sim: RunningSimulator, client: anthropic.Anthropic) -> None:
    base = sim.base_url
    changed = httpx.post(f"{base}/_sim/config", json={"fault_sequence": [529]})
    assert changed.status_code == 200 and changed.json()["fault_sequence"] == [529]
    with pytest.raises(anthropic.OverloadedError):
        ask(client, "hello")
    stats = httpx.get(f"{base}/_sim/stats").json()
    assert stats["total"] == 1 and stats["by_model"] == {HAIKU: {"529": 1}}
    assert {"in_flight", "peak_in_flight", "tokens", "by_status"} <= set(stats)
    assert httpx.post(f"{base}/_sim/config", json={"nonsense": 1}).status_code == 400
    assert httpx.post(f"{base}/_sim/config", json={"fault_rate_429": 2}).status_code == 400
    assert httpx.post(f"{base}/_sim/reset").json()["ok"] is True
    assert httpx.get(f"{base}/_sim/stats").json()["total"] == 0
    assert httpx.get(f"{base}/_sim/config").json()["fault_sequence"] == []
    assert httpx.get(f"{base}/_sim/health").json()["simulated"] is True


def test_unknown_path_is_an_api_error(sim: RunningSimulator) -> None:
    response = httpx.get(f"{sim.base_url}/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERROUTE_SIM_LATENCY_MS", json.dumps({OPUS: 2000}))
    monkeypatch.setenv("TIERROUTE_SIM_FAULT_SEQUENCE", "[429, 200]")
    monkeypatch.setenv("TIERROUTE_SIM_RETRY_AFTER_S", "0.5")
    monkeypatch.setenv("TIERROUTE_SIM_CLASSIFIER_FAULT", "refusal")
    config = SimulatorConfig()
    assert config.latency_for(OPUS) == 2000 and config.latency_for(HAIKU) == 0
    assert config.fault_sequence == [429, 200]
    assert config.retry_after_s == 0.5 and config.classifier_fault == "refusal"


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(fault_rate_429=0.8, fault_rate_529=0.5)
    with pytest.raises(ValueError):
        SimulatorConfig(fault_sequence=[418])
