"""Shadow judging's judge request validates against Anthropic's published spec."""

from __future__ import annotations

import pytest
from prism import assert_shape_accepted

from tierroute.domain.tiers import load_tier_table
from tierroute.pipeline.shadow import build_judge_params

TABLE = load_tier_table()


@pytest.mark.parametrize("judge", TABLE.names)
def test_judge_request_with_structured_output_is_valid(prism_url: str, judge: str) -> None:
    params = build_judge_params(
        TABLE.get(judge), "Explain CAP.", TABLE.cheapest, "Short answer.", "Longer answer."
    )
    assert params["output_config"]["format"]["type"] == "json_schema"
    assert_shape_accepted(prism_url, params)
