"""A key-scoped cacheable system prompt (marker block first) validates against the spec."""

from __future__ import annotations

import uuid

import pytest
from prism import assert_batch_accepted, assert_shape_accepted

from tierroute.config import Settings
from tierroute.domain.tiers import load_tier_table
from tierroute.llm.caching import cache_scope
from tierroute.llm.provider import build_completion_params
from tierroute.pipeline.message_batches.requests import JobRow, batch_request

TABLE = load_tier_table()
LONG_SYSTEM = "You are the ACME help desk; answer briefly and exactly. " * 360
SCOPE = cache_scope(Settings(anthropic_base_url="http://sim"), uuid.uuid4())


@pytest.mark.parametrize("tier", TABLE.names)
def test_scoped_cacheable_system_prompt_is_valid(prism_url: str, tier: str) -> None:
    params = build_completion_params(
        TABLE.get(tier), "Explain CAP.", LONG_SYSTEM, 700, cache_scope=SCOPE
    )
    assert SCOPE in params["system"][0]["text"]
    assert params["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert_shape_accepted(prism_url, params)


def test_scoped_message_batch_is_valid(prism_url: str) -> None:
    requests = [
        batch_request(TABLE.get(tier), JobRow(uuid.uuid4(), "Q.", LONG_SYSTEM, 700, None), SCOPE)
        for tier in TABLE.names
    ]
    assert_batch_accepted(prism_url, requests)
