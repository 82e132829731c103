"""A call's worst-case cost, read off the request it would send (pipeline/budget_costs.py)."""

from __future__ import annotations

from decimal import Decimal

from tierroute.domain.cost import REQUEST_OVERHEAD_TOKENS
from tierroute.domain.tiers import load_tier_table
from tierroute.pipeline.budget_costs import params_ceiling

TABLE = load_tier_table()


def test_ceiling_prices_the_cached_prefix_as_a_write_and_the_rest_as_input() -> None:
    sonnet = TABLE.get("sonnet")
    params = {
        "max_tokens": 1000,
        "system": [
            {
                "type": "text",
                "text": "a" * 4000,
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            },
            {"type": "text", "text": "b" * 200},
        ],
        "messages": [{"role": "user", "content": "c" * 100}],
    }
    # ASCII at two characters a token: a 2,000-token prefix at the 1-hour write price (6),
    # 100 + 50 input tokens at 3, 1,000 output tokens at 15, and the overhead as a 1-hour write.
    expected = (2000 * 6 + 150 * 3 + 1000 * 15 + REQUEST_OVERHEAD_TOKENS * 6) / Decimal(10**6)
    assert params_ceiling(sonnet, params) == expected
    # Without the breakpoint the whole system prompt is plain input.
    del params["system"][0]["cache_control"]  # type: ignore[index]
    plain = (2100 * 3 + 50 * 3 + 1000 * 15 + REQUEST_OVERHEAD_TOKENS * 6) / Decimal(10**6)
    assert params_ceiling(sonnet, params) == plain
