"""Anthropic-shaped jobs (issue 17): the calls and Message Batch requests tierroute sends for
them, per tier, are accepted by Prism serving Anthropic's spec."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prism import assert_batch_accepted, assert_shape_accepted

from tierroute.domain.specs import JobSpec
from tierroute.domain.tiers import load_tier_table
from tierroute.llm.provider import build_completion
from tierroute.pipeline.message_batches.requests import JobRow, batch_request

TABLE = load_tier_table()
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
REQUESTS: dict[str, dict[str, Any]] = {
    "multi-turn": {
        "messages": [
            {"role": "user", "content": "Name a prime."},
            {"role": "assistant", "content": "7"},
            {"role": "user", "content": [{"type": "text", "text": "Another?"}]},
        ],
        "system": [{"type": "text", "text": "Be brief."}],
        "stop_sequences": ["\n\n"],
        "metadata": {"user_id": "u-1", "conversation_id": "c-1"},
    },
    "sampling": {"prompt": "hi", "temperature": 0.3, "top_p": 0.9, "top_k": 5},
    "structured": {
        "prompt": "a number",
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "low"},
        "thinking": {"type": "adaptive"},
    },
    "tools": {
        "prompt": "weather?",
        "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "weather"},
    },
}


def _job(request: dict[str, Any]) -> JobRow:
    stored = JobSpec.model_validate(request).stored()
    return JobRow(
        uuid.uuid4(),
        stored.prompt,
        stored.system,
        700,
        stored.thinking_override,
        request_params=stored.request_params,
    )


@pytest.mark.parametrize("tier", TABLE.names)
@pytest.mark.parametrize("name", REQUESTS)
def test_anthropic_shaped_call_per_tier_is_valid(prism_url: str, tier: str, name: str) -> None:
    job = _job(REQUESTS[name])
    params, _ = build_completion(
        TABLE.get(tier),
        job.prompt,
        job.system,
        job.max_tokens,
        job.thinking_override,
        request_params=job.request_params,
    )
    assert_shape_accepted(prism_url, params)  # the SDK merges extra_body itself


def test_anthropic_shaped_message_batch_is_valid(prism_url: str) -> None:
    requests = [
        batch_request(TABLE.get(tier), _job(request))
        for tier in TABLE.names
        for request in REQUESTS.values()
    ]
    assert_batch_accepted(prism_url, requests)
