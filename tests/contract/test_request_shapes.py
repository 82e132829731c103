"""Every request shape tierroute sends validates against Anthropic's published spec."""

from __future__ import annotations

from typing import Any

import pytest
from prism import assert_shape_accepted

from tierroute.classifiers.llm import build_classify_params
from tierroute.provider import build_completion_params
from tierroute.tiers import load_tier_table

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
