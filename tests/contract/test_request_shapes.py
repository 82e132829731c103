"""Every request shape tierroute sends validates against Anthropic's published spec."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prism import assert_batch_accepted, assert_shape_accepted

from tierroute.classify.llm import build_classify_params
from tierroute.domain.tiers import load_tier_table
from tierroute.llm.provider import build_completion_params
from tierroute.pipeline.message_batches.requests import JobRow, batch_request

TABLE = load_tier_table()
OVERRIDES: list[dict[str, Any] | None] = [
    None,
    {"thinking": "none"},
    {"thinking": "adaptive", "effort": "low"},
    {"thinking": "enabled", "budget_tokens": 4096},
    {"effort": "max"},
]


def test_classifier_request_is_valid(prism_url: str) -> None:
    params = build_classify_params(TABLE.cheapest.model, "Format this JSON: {}")
    assert "format" in params["output_config"]
    assert_shape_accepted(prism_url, params)


@pytest.mark.parametrize("tier", TABLE.names)
@pytest.mark.parametrize(
    "override", OVERRIDES, ids=lambda o: "tier-default" if o is None else str(o)
)
def test_completion_request_per_tier_is_valid(
    prism_url: str, tier: str, override: dict[str, Any] | None
) -> None:
    params = build_completion_params(
        TABLE.get(tier), "Explain CAP.", "You are terse.", 700, override
    )
    assert_shape_accepted(prism_url, params)


# About 5,000 tokens: above every tier's minimum cacheable length, so it gets a breakpoint.
LONG_SYSTEM = "You are the ACME help desk; answer briefly and exactly. " * 360


@pytest.mark.parametrize("tier", TABLE.names)
def test_cacheable_system_prompt_per_tier_is_valid(prism_url: str, tier: str) -> None:
    params = build_completion_params(TABLE.get(tier), "Explain CAP.", LONG_SYSTEM, 700)
    assert params["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert_shape_accepted(prism_url, params)


def test_classifier_request_with_a_cached_rubric_is_valid(prism_url: str) -> None:
    params = build_classify_params(TABLE.cheapest.model, "Format this JSON: {}", 1)
    assert params["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert_shape_accepted(prism_url, params)


def test_message_batch_with_every_tier_is_valid(prism_url: str) -> None:
    requests = [
        batch_request(TABLE.get(tier), JobRow(uuid.uuid4(), "Explain CAP.", system, 700, override))
        for tier in TABLE.names
        for system in (None, "You are terse.", LONG_SYSTEM)
        for override in (None, {"thinking": "enabled", "budget_tokens": 2048})
    ]
    assert_batch_accepted(prism_url, requests)
