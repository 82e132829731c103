"""Up-front token estimates never undercount: CJK, emoji and dense ASCII included."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from tierroute.domain.tiers import load_tier_table
from tierroute.llm.ratelimit import estimate_input_tokens
from tierroute.pipeline.budgets import worst_case_cost

TABLE = load_tier_table()
HAIKU = TABLE.get("haiku")
# Texts with a conservative count of what Claude's tokenizer makes of them: CJK at
# least a token a character, an emoji at least two, hex at least one per 2.5 digits.
CASES = [
    ("数据库的预写日志保证崩溃后的一致性。" * 50, 1.0),
    ("ログ先行書き込みの仕組みを説明してください。" * 50, 1.0),
    ("🙂🚀🔥👍🏽" * 50, 2.0),
    ("Привет, как работает журнал предзаписи? " * 50, 0.5),
    ("3f9a0c1be47d2a58" * 100, 0.4),
]


@pytest.mark.parametrize(("text", "tokens_per_char"), CASES)
def test_the_rate_limiter_estimate_does_not_undercount(text: str, tokens_per_char: float) -> None:
    params = {"messages": [{"role": "user", "content": text}]}
    assert estimate_input_tokens(params) >= len(text) * tokens_per_char


@pytest.mark.parametrize(("text", "tokens_per_char"), CASES)
def test_the_budget_worst_case_does_not_undercount(text: str, tokens_per_char: float) -> None:
    least = (Decimal(len(text) * tokens_per_char) * HAIKU.input + HAIKU.output) / 1_000_000
    assert worst_case_cost(HAIKU, text, None, 1) >= least


def test_thinking_budget_is_priced_as_output() -> None:
    # Haiku has no adaptive thinking: an override sends max_tokens + budget_tokens.
    thinking = {"thinking": "enabled", "budget_tokens": 4096}
    worst = worst_case_cost(HAIKU, "hi", None, 1, thinking)
    assert worst >= (1 + 4096) * HAIKU.output / 1_000_000
    # Adaptive thinking stays within max_tokens, which the API enforces.
    sonnet = TABLE.get("sonnet")
    adaptive = worst_case_cost(sonnet, "hi", None, 100, {"thinking": "adaptive"})
    assert adaptive < 200 * sonnet.output / 1_000_000


def test_a_cacheable_system_prompt_is_priced_at_the_cache_write_price() -> None:
    system = "You are a careful database engineer. " * 1000
    cached = worst_case_cost(HAIKU, "hi", system, 1)
    never_cached = worst_case_cost(replace(HAIKU, min_cache_tokens=0), "hi", system, 1)
    # The first call with the prefix writes it: 1.25x the input price for its tokens.
    premium = (HAIKU.cache_write_5m - HAIKU.input) * Decimal(len(system)) / 4 / 1_000_000
    assert cached - never_cached >= premium
