"""Prove the contract harness works: Prism accepts valid shapes and rejects bad ones.

All requests go through the real ``anthropic`` SDK, exactly as tierroute sends them.
"""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from prism import (
    assert_batch_accepted,
    assert_shape_accepted,
    make_client,
    parse_violations,
    shape_violations,
)

MINIMAL: dict[str, Any] = {
    "model": "claude-haiku-4-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}

CLASSIFIER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tier": {"type": "string", "enum": ["haiku", "sonnet", "opus"]},
        "confidence": {"type": "number"},
    },
    "required": ["tier", "confidence"],
    "additionalProperties": False,
}


# --------------------------------------------------------------------------- (a) valid


def test_minimal_request_is_accepted_with_2xx(prism_url: str) -> None:
    client = make_client(prism_url)
    raw = client.messages.with_raw_response.create(**MINIMAL)
    assert 200 <= raw.status_code < 300
    assert not [v for v in parse_violations(raw.headers.get("sl-violations")) if v.is_request_error]
    message = raw.parse()  # Prism's static example parses into the SDK's Message model
    assert message.type == "message"


def test_helper_accepts_minimal_request(prism_url: str) -> None:
    assert_shape_accepted(prism_url, MINIMAL)


# --------------------------------------------------------------------------- (b) invalid


def test_thinking_budget_below_minimum_is_rejected_as_4xx(prism_url: str) -> None:
    client = make_client(prism_url)
    with pytest.raises(anthropic.APIStatusError) as excinfo:
        client.messages.create(
            **MINIMAL, extra_body={"thinking": {"type": "enabled", "budget_tokens": 10}}
        )
    assert excinfo.value.status_code == 422
    violations = parse_violations(excinfo.value.response.headers.get("sl-violations"))
    assert any(v.code == "minimum" and v.location[-1] == "budget_tokens" for v in violations), (
        violations
    )


def test_unknown_top_level_field_is_rejected_as_4xx(prism_url: str) -> None:
    client = make_client(prism_url)
    with pytest.raises(anthropic.UnprocessableEntityError):
        client.messages.create(**MINIMAL, extra_body={"routing_hint": "cheap"})


def test_helper_reports_prism_validation_detail(prism_url: str) -> None:
    params = {**MINIMAL, "extra_body": {"thinking": {"type": "enabled", "budget_tokens": 10}}}
    with pytest.raises(AssertionError, match=r"budget_tokens must be >= 1024"):
        assert_shape_accepted(prism_url, params)


@pytest.mark.parametrize(
    ("label", "params"),
    [
        ("max_tokens as string", {**MINIMAL, "max_tokens": "100"}),
        ("model not a string", {**MINIMAL, "model": 42}),
        ("bad role", {**MINIMAL, "messages": [{"role": "robot", "content": "hi"}]}),
        ("bad effort", {**MINIMAL, "output_config": {"effort": "extreme"}}),
        (
            "format without schema",
            {**MINIMAL, "output_config": {"format": {"type": "json_schema"}}},
        ),
        ("unknown thinking type", {**MINIMAL, "thinking": {"type": "sometimes"}}),
        (
            "adaptive with budget",
            {**MINIMAL, "thinking": {"type": "adaptive", "budget_tokens": 2048}},
        ),
        (
            "bad content block",
            {**MINIMAL, "messages": [{"role": "user", "content": [{"type": "txt"}]}]},
        ),
    ],
)
def test_helper_rejects_invalid_shapes(prism_url: str, label: str, params: dict[str, Any]) -> None:
    assert shape_violations(prism_url, params), f"Prism accepted an invalid shape: {label}"
    with pytest.raises(AssertionError, match="spec rejects"):
        assert_shape_accepted(prism_url, params)


# --------------------------------------------------------------------------- (c) newer shapes


def test_structured_output_json_schema_is_accepted(prism_url: str) -> None:
    assert_shape_accepted(
        prism_url,
        {
            **MINIMAL,
            "system": "Classify the prompt's difficulty.",
            "output_config": {"format": {"type": "json_schema", "schema": CLASSIFIER_SCHEMA}},
        },
    )


def test_adaptive_thinking_with_effort_is_accepted(prism_url: str) -> None:
    assert_shape_accepted(
        prism_url,
        {
            "model": "claude-opus-4-6",
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "hi"}],
            "thinking": {"type": "adaptive"},
            "output_config": {"effort": "high"},
        },
    )


def test_adaptive_thinking_effort_and_format_together_are_accepted(prism_url: str) -> None:
    assert_shape_accepted(
        prism_url,
        {
            **MINIMAL,
            "max_tokens": 4096,
            "thinking": {"type": "adaptive"},
            "output_config": {
                "effort": "medium",
                "format": {"type": "json_schema", "schema": CLASSIFIER_SCHEMA},
            },
        },
    )


def test_enabled_thinking_and_prompt_caching_are_accepted(prism_url: str) -> None:
    assert_shape_accepted(
        prism_url,
        {
            **MINIMAL,
            "max_tokens": 4096,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "system": [
                {
                    "type": "text",
                    "text": "You route prompts.",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            "metadata": {"user_id": "job-123"},
        },
    )


# --------------------------------------------------------------------------- batches


def test_batch_helper_accepts_valid_and_rejects_invalid(prism_url: str) -> None:
    assert_batch_accepted(prism_url, [{"custom_id": "job-1", "params": MINIMAL}])
    with pytest.raises(AssertionError, match="additional properties"):
        assert_batch_accepted(
            prism_url, [{"custom_id": "job-2", "params": {**MINIMAL, "routing_hint": "cheap"}}]
        )


# --------------------------------------------------------------------------- helper unit tests


def test_parse_violations_tolerates_truncated_header() -> None:
    entry = '{"location":["request","body"],"severity":"Error","code":"x","message":"m"}'
    header = f'Too many violations! [{entry},{entry},{{"location":["req'
    violations = parse_violations(header)
    assert len(violations) == 2
    assert all(v.is_request_error for v in violations)
    assert parse_violations(None) == []
