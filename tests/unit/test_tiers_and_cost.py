"""The tier table, user tier choices, and dollars from usage."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from anthropic.types import Usage
from anthropic.types.cache_creation import CacheCreation

from tierroute.domain.cost import (
    TokenCounts,
    batch_api_saving_usd,
    cost_usd,
    worst_case_write,
)
from tierroute.domain.errors import ConfigurationError, InvalidInput
from tierroute.domain.tiers import ThinkingMode, load_tier_table

TABLE = load_tier_table()


def test_bundled_table_has_three_tiers_cheapest_first() -> None:
    assert TABLE.names == ["haiku", "sonnet", "opus"]
    assert TABLE.top.model == "claude-opus-4-6"
    assert TABLE.cheapest.model == "claude-haiku-4-5"


def test_prices_match_the_published_list() -> None:
    haiku, sonnet, opus = (TABLE.get(n) for n in TABLE.names)
    assert (haiku.input, haiku.output) == (Decimal(1), Decimal(5))
    assert (sonnet.input, sonnet.output) == (Decimal(3), Decimal(15))
    assert (opus.input, opus.output) == (Decimal(5), Decimal(25))
    for tier in (haiku, sonnet, opus):
        assert tier.cache_write_5m == tier.input * Decimal("1.25")
        assert tier.cache_write_1h == tier.input * 2
        assert tier.cache_read == tier.input * Decimal("0.1")


def test_haiku_never_thinks_and_the_others_are_adaptive() -> None:
    assert TABLE.get("haiku").thinking is ThinkingMode.NONE
    assert TABLE.get("sonnet").thinking is ThinkingMode.ADAPTIVE
    assert TABLE.get("opus").thinking is ThinkingMode.ADAPTIVE


@pytest.mark.parametrize(
    ("value", "name"), [(1, "haiku"), ("2", "sonnet"), (3, "opus"), ("Opus", "opus")]
)
def test_parse_accepts_ranks_and_names(value: object, name: str) -> None:
    assert TABLE.parse(value).name == name


@pytest.mark.parametrize("value", [0, 7, "7", "gpt-4", True, 2.5, None])
def test_parse_rejects_unknown_tiers(value: object) -> None:
    with pytest.raises(InvalidInput, match="force_tier"):
        TABLE.parse(value)


def test_cost_ratio_comes_from_prices_not_a_constant() -> None:
    assert TABLE.cost_ratio(TABLE.get("opus")) == 1.0
    assert TABLE.cost_ratio(TABLE.get("sonnet")) == pytest.approx(0.6)
    assert TABLE.cost_ratio(TABLE.get("haiku")) == pytest.approx(0.2)


def test_a_deployment_can_override_the_table(tmp_path: Path) -> None:
    custom = tmp_path / "tiers.toml"
    custom.write_text(
        """
[[tier]]
name = "small"
rank = 1
model = "claude-haiku-4-5"
input = 0.5
output = 2
cache_write_5m = 0.625
cache_write_1h = 1
cache_read = 0.05
context_window = 200000
max_output_tokens = 8192
supports_adaptive_thinking = false
supports_effort = false

[[tier]]
name = "big"
rank = 2
model = "claude-opus-4-6"
input = 5
output = 25
cache_write_5m = 6.25
cache_write_1h = 10
cache_read = 0.5
context_window = 200000
max_output_tokens = 128000
supports_adaptive_thinking = true
supports_effort = true
thinking = "adaptive"
"""
    )
    table = load_tier_table(custom)
    assert table.names == ["small", "big"]
    assert table.top.name == "big"


def test_a_table_cannot_ask_a_model_for_what_it_lacks(tmp_path: Path) -> None:
    bad = tmp_path / "tiers.toml"
    bad.write_text(
        """
[[tier]]
name = "haiku"
rank = 1
model = "claude-haiku-4-5"
input = 1
output = 5
cache_write_5m = 1.25
cache_write_1h = 2
cache_read = 0.1
context_window = 200000
max_output_tokens = 64000
supports_adaptive_thinking = false
supports_effort = false
thinking = "adaptive"
"""
    )
    with pytest.raises(ConfigurationError, match="no adaptive thinking"):
        load_tier_table(bad)


def test_cost_counts_every_kind_of_token() -> None:
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cache_creation_input_tokens=3_000_000,
        cache_read_input_tokens=1_000_000,
        cache_creation=CacheCreation(
            ephemeral_5m_input_tokens=1_000_000, ephemeral_1h_input_tokens=2_000_000
        ),
    )
    tokens = TokenCounts.from_usage(usage)
    sonnet = TABLE.get("sonnet")
    # 3 in + 15 out + 3.75 (5m write) + 2 * 6 (1h write) + 0.30 read
    assert cost_usd(tokens, sonnet) == Decimal("34.05")


def test_cache_writes_without_breakdown_bill_at_the_5_minute_price() -> None:
    usage = Usage(
        input_tokens=0, output_tokens=0, cache_creation_input_tokens=1_000_000,
        cache_read_input_tokens=None,
    )  # fmt: skip
    tokens = TokenCounts.from_usage(usage)
    assert tokens.cache_read_tokens == 0
    assert cost_usd(tokens, TABLE.get("haiku")) == Decimal("1.25")


def test_same_usage_on_opus_costs_five_times_haiku() -> None:
    tokens = TokenCounts(input_tokens=1234, output_tokens=567)
    assert cost_usd(tokens, TABLE.top) == 5 * cost_usd(tokens, TABLE.get("haiku"))


def test_token_counts_add_kind_by_kind() -> None:
    a = TokenCounts(1, 2, cache_write_5m_tokens=3, cache_write_1h_tokens=4, cache_read_tokens=5)
    b = TokenCounts(
        10, 20, cache_write_5m_tokens=30, cache_write_1h_tokens=40, cache_read_tokens=50
    )
    total = a + b
    assert total == TokenCounts(11, 22, 33, 44, 55)
    assert cost_usd(total, TABLE.get("sonnet")) == cost_usd(a, TABLE.get("sonnet")) + cost_usd(
        b, TABLE.get("sonnet")
    )


def test_a_worst_case_write_is_priced_at_its_ttl_or_as_input_when_dearer() -> None:
    sonnet = TABLE.get("sonnet")
    assert cost_usd(worst_case_write(1_000_000, "5m", sonnet), sonnet) == Decimal("3.75")
    assert cost_usd(worst_case_write(1_000_000, "1h", sonnet), sonnet) == Decimal(6)
    # A table whose writes undercut input: the prefix might not be cached and bill as input.
    odd = replace(sonnet, cache_write_5m=Decimal(1), cache_write_1h=Decimal(2))
    for ttl in ("5m", "1h"):
        assert cost_usd(worst_case_write(1_000_000, ttl, odd), odd) == Decimal(3)


def test_batch_api_saving_is_what_the_same_calls_cost_live_minus_the_bill() -> None:
    billed = Decimal("1.25")
    assert batch_api_saving_usd(billed) == Decimal("1.25")  # at half price, live costs double
    assert batch_api_saving_usd(Decimal(0)) == 0
