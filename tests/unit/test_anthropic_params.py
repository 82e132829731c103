"""Anthropic Messages parameters on a job: stored shape, and the call each tier is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.anthropic_spec import problems
from tierroute.cli.prompt_files import check_prompt_file, iter_with_force_tier
from tierroute.domain.anthropic_batch import batch_line_spec_from_json, spec_from_batch_line
from tierroute.domain.anthropic_request import PARAMS_MARKER
from tierroute.domain.errors import InvalidInput
from tierroute.domain.specs import JobSpec, parse_spec
from tierroute.domain.tiers import active_tier_table
from tierroute.llm.adapt import wire_body
from tierroute.llm.provider import build_completion
from tierroute.store.ingest import ndjson_specs

TIERS = active_tier_table()
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}

REQUESTS: list[dict[str, Any]] = [
    {"prompt": "hello"},
    {"prompt": "hello", "temperature": 0.2, "top_p": 0.9, "top_k": 5},
    {
        "messages": [
            {"role": "user", "content": "Name a prime."},
            {"role": "assistant", "content": "7"},
            {"role": "user", "content": [{"type": "text", "text": "Another?"}, IMAGE]},
        ],
        "system": [{"type": "text", "text": "Be brief."}],
        "stop_sequences": ["\n\n"],
        "metadata": {"user_id": "u-1", "conversation_id": "c-1"},
        "custom_id": "req-1",
    },
    {
        "messages": [{"role": "user", "content": "Give the answer as JSON."}],
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "low"},
        "thinking": {"type": "adaptive"},
        "temperature": 0.5,
    },
    {
        "prompt": "Use the tool.",
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "lookup"},
    },
    {"prompt": "think hard", "thinking": {"type": "enabled", "budget_tokens": 2048}},
    {"prompt": "no thinking", "thinking": {"type": "disabled"}, "max_tokens": 100_000},
]


def _call(tier: str, request: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    spec = JobSpec.model_validate(request)
    stored = spec.stored()
    return build_completion(
        TIERS.get(tier),
        stored.prompt,
        stored.system,
        spec.max_tokens or 1024,
        stored.thinking_override,
        request_params=stored.request_params,
    )


@pytest.mark.parametrize("tier", TIERS.names)
@pytest.mark.parametrize("request_body", REQUESTS)
def test_every_call_sent_validates_against_anthropics_spec(
    tier: str, request_body: dict[str, Any]
) -> None:
    params, _ = _call(tier, request_body)
    assert problems("CreateMessageParams", wire_body(params)) == []


def test_a_conversation_keeps_its_turns_and_routes_on_the_last_user_turn() -> None:
    stored = JobSpec.model_validate(REQUESTS[2]).stored()
    assert stored.prompt == "Another?\n[image]"
    assert stored.system is not None and "user: Name a prime.\nassistant: 7" in stored.system
    assert stored.request_params is not None
    assert stored.request_params["custom_id"] == "req-1"
    assert stored.request_params["conversation"] == "id:c-1"
    params, _ = _call("haiku", REQUESTS[2])
    assert params["messages"][2]["content"][1] == IMAGE  # image blocks pass through
    assert params["system"] == [{"type": "text", "text": "Be brief."}]
    # Only the API's own metadata goes out; conversation_id is tierroute's.
    assert params["metadata"] == {"user_id": "u-1"}


def test_a_plain_prompt_stores_nothing_extra() -> None:
    stored = JobSpec.model_validate({"prompt": "hello"}).stored()
    assert stored.request_params is None and stored.thinking_override is None
    stored = JobSpec.model_validate({"messages": [{"role": "user", "content": "hi"}]}).stored()
    assert stored.request_params is None and stored.prompt == "hi"


def test_thinking_the_model_lacks_is_translated_and_the_rule_named() -> None:
    params, rules = _call("haiku", {"prompt": "x", "thinking": {"type": "adaptive"}})
    assert params["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert any("adaptive sent as enabled" in rule for rule in rules)
    _, rules = _call("haiku", REQUESTS[3])
    assert any(rule.startswith("output_config.effort: dropped") for rule in rules)
    params, rules = _call("opus", REQUESTS[3])
    assert params["output_config"] == {
        "effort": "low",
        "format": REQUESTS[3]["output_config"]["format"],
    }
    assert "temperature" not in wire_body(params)
    assert any(rule.startswith("temperature: dropped") for rule in rules)


def test_a_tiers_default_thinking_yields_to_the_callers_sampling() -> None:
    params, rules = _call("sonnet", REQUESTS[1])
    assert "thinking" not in params and params["extra_body"] == {"temperature": 0.2, "top_k": 5}
    assert "top_p" not in wire_body(params)  # temperature or top_p, not both
    assert rules[0].startswith("thinking: the sonnet tier's default thinking is off")
    params, rules = _call("sonnet", REQUESTS[4])
    assert "thinking" not in params and params["tool_choice"]["type"] == "tool"
    params, rules = _call("haiku", REQUESTS[0])
    assert rules == []


def test_max_tokens_beyond_the_model_is_lowered_and_said() -> None:
    params, rules = _call("haiku", REQUESTS[6])
    assert params["max_tokens"] == TIERS.get("haiku").max_output_tokens
    assert rules == ["max_tokens: lowered to 64000, the most claude-haiku-4-5 gives"]


def test_the_marker_tells_the_complete_step_to_load_the_params() -> None:
    assert JobSpec.model_validate(REQUESTS[1]).stored().thinking_override == {PARAMS_MARKER: True}
    # A conversation id alone changes nothing in the call.
    stored = JobSpec.model_validate({"prompt": "x", "metadata": {"conversation_id": "c"}}).stored()
    assert stored.thinking_override is None and stored.request_params == {
        "conversation": "id:c",
        "turn": 1,
    }


def test_sticky_without_an_id_keys_the_conversation_by_its_opening() -> None:
    first = {"messages": [{"role": "user", "content": "Plan a trip"}], "sticky": True}
    follow_up = {
        "messages": [
            {"role": "user", "content": "Plan a trip"},
            {"role": "assistant", "content": "Where to?"},
            {"role": "user", "content": "Rome"},
        ],
        "sticky": True,
    }
    a = JobSpec.model_validate(first).stored().request_params
    b = JobSpec.model_validate(follow_up).stored().request_params
    assert a and b and a["conversation"] == b["conversation"]
    assert (a["turn"], b["turn"]) == (1, 2)


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({}, "exactly one of `prompt` and `messages`"),
        ({"prompt": "x", "messages": [{"role": "user", "content": "y"}]}, "exactly one"),
        ({"messages": [{"role": "assistant", "content": "y"}]}, "at least one user turn"),
        ({"messages": [{"role": "user", "content": [{"text": "y"}]}]}, "messages.0.content"),
        ({"prompt": "x", "temperature": 1.5}, "temperature"),
        ({"prompt": "x", "custom_id": "has space"}, "custom_id"),
        ({"prompt": "x", "service_tier": "auto"}, "service_tier"),
    ],
)
def test_bad_requests_name_the_parameter(item: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_spec(item, "line 1")
    assert fragment in caught.value.detail


def batch_line(custom_id: str, **params: Any) -> bytes:
    body = {
        "model": "tierroute-auto",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    return json.dumps({"custom_id": custom_id, "params": {**body, **params}}).encode()


def test_a_message_batches_line_is_read_as_a_job() -> None:
    plain, forced, ranked = ndjson_specs(
        [
            batch_line("a-1"),
            batch_line("a-2", model="claude-opus-4-6"),
            batch_line("a-3", model="1"),
        ]
    )
    assert plain.custom_id == "a-1" and plain.force_tier is None
    assert forced.force_tier == "opus" and ranked.force_tier == "haiku"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (batch_line("a", service_tier="auto"), "line 1: params.service_tier: is not supported"),
        (batch_line("a", model="gpt-4o"), "line 1: params.model: 'gpt-4o' is not a model here"),
        (batch_line("a", stream=True), "params.stream: a batch request cannot be streamed"),
        (batch_line("a", max_tokens=0), "max_tokens"),
        (b'{"custom_id": "a", "params": {}, "x": 1}', "line 1: x: is not a field"),
    ],
)
def test_a_bad_batch_line_names_its_parameter(line: bytes, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        list(ndjson_specs([line]))
    assert fragment in caught.value.detail


# Requests of a Message Batches file as `params` (REQUESTS' Messages-shaped ones), each
# read both ways: in one pass from JSON, and by json.loads and spec_from_batch_line.
BATCH_PARAMS: list[dict[str, Any]] = [
    {
        "model": "tierroute-auto",
        "max_tokens": 10,
        **{k: v for k, v in item.items() if k != "custom_id"},
    }
    for item in REQUESTS
    if "messages" in item
] + [
    {"model": "opus", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    {
        "model": "claude-haiku-4-5",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "stream": False,
        "sticky": True,
        "metadata": {"conversation_id": "c", "sticky": True},
    },
    {
        "model": "2",
        "max_tokens": 5,
        "system": "Be brief.",
        "top_k": 3,
        "tools": [],
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "y"},
            {"role": "user", "content": "z"},
        ],
    },
]


@pytest.mark.parametrize("params", BATCH_PARAMS)
def test_a_batch_line_read_in_one_pass_is_the_same_job(params: dict[str, Any]) -> None:
    raw = json.dumps({"custom_id": "req-1", "params": params}).encode()
    fast = batch_line_spec_from_json(raw, TIERS)
    slow = spec_from_batch_line(json.loads(raw), TIERS, "line 1")
    assert fast is not None
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_dump_json(exclude_unset=True) == slow.model_dump_json(exclude_unset=True)
    assert fast.stored() == slow.stored()


@pytest.mark.parametrize(
    "raw",
    [
        batch_line("a", service_tier="auto"),
        batch_line("a", model="gpt-4o"),
        batch_line("a", stream=True),
        batch_line("a", stream=0),
        batch_line("a", stream="false"),
        batch_line("a", max_tokens=None),
        batch_line("a", prompt="x"),
        batch_line("a", force_tier="opus"),
        batch_line("a", metadata={"user_id": 7}),
        batch_line("has space"),
        batch_line("a\n"),
        b'{"custom_id": 7, "params": {"model": "tierroute-auto", "max_tokens": 1,'
        b' "messages": [{"role": "user", "content": "x"}]}}',
        # Python's json reads these and pydantic's does not: the slow path decides.
        batch_line("a", temperature=float("nan")),
        b'{"custom_id": "a", "params": {"model": "tierroute-auto", "max_tokens": 1,'
        b' "messages": [{"role": "user", "content": "\\ud800"}]}}',
    ],
)
def test_a_batch_line_the_one_pass_is_unsure_of_goes_the_long_way(raw: bytes) -> None:
    assert batch_line_spec_from_json(raw, TIERS) is None
    with pytest.raises(InvalidInput):
        list(ndjson_specs([raw]))


def test_the_cli_checks_and_forces_anthropic_lines(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(batch_line("a") + b"\n" + b'{"prompt": "x"}\n')
    assert check_prompt_file(path) == 2
    forced = b"".join(iter_with_force_tier(path, "opus")).splitlines()
    assert json.loads(forced[0])["params"]["model"] == "opus"
    assert json.loads(forced[1])["force_tier"] == "opus"
