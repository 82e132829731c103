"""The most a call can cost: what a daily budget reserves before the call is made.

A budget is a ceiling only if every call is priced at its worst case before it is
made. That worst case is read off the request we would actually send:

- output: the `max_tokens` sent. Thinking tokens bill as output and count toward
  it: manual thinking raises it by `budget_tokens` (provider.build_completion_params),
  adaptive thinking stays within it (the API stops at max_tokens either way).
- input: an upper-bound token estimate (cost.estimate_tokens) of every text the
  model reads, system blocks up to the last cache breakpoint at the cache-write price
  of their TTL (the first call with a prefix writes it), the rest at the input price.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tierroute.classify.llm import build_classify_params
from tierroute.domain.cost import (
    REQUEST_OVERHEAD_TOKENS,
    TokenCounts,
    cost_usd,
    estimate_tokens,
    worst_case_write,
)
from tierroute.domain.tiers import Tier, TierTable
from tierroute.llm.provider import build_completion_params


def _ttl(cache_control: Any) -> str:
    return str(cache_control.get("ttl", "5m")) if isinstance(cache_control, dict) else "5m"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("text", "")) if value.get("type") == "text" else json.dumps(value)
    if isinstance(value, list):
        return "\n".join(_text(item) for item in value)
    return "" if value is None else str(value)


def _system_tokens(tier: Tier, system: Any) -> TokenCounts:
    """The system prompt's tokens: the cached prefix as a cache write, the rest as input."""
    if not isinstance(system, list):
        return TokenCounts(input_tokens=estimate_tokens(_text(system)), output_tokens=0)
    last = max(
        (i for i, b in enumerate(system) if isinstance(b, dict) and "cache_control" in b),
        default=-1,
    )
    rest = sum(estimate_tokens(_text(block)) for block in system[last + 1 :])
    plain = TokenCounts(input_tokens=rest, output_tokens=0)
    if last < 0:
        return plain
    prefix = sum(estimate_tokens(_text(block)) for block in system[: last + 1])
    return plain + worst_case_write(prefix, _ttl(system[last]["cache_control"]), tier)


def params_ceiling(tier: Tier, params: dict[str, Any]) -> Decimal:
    """The most one `messages.create(**params)` on `tier` can bill, in USD."""
    read = sum(estimate_tokens(_text(m.get("content"))) for m in params.get("messages", []))
    output_config = params.get("output_config")
    if isinstance(output_config, dict) and "format" in output_config:
        read += estimate_tokens(json.dumps(output_config["format"], sort_keys=True))
    if params.get("tools"):
        read += estimate_tokens(json.dumps(params["tools"], sort_keys=True))
    tokens = (
        _system_tokens(tier, params.get("system"))
        + TokenCounts(input_tokens=read, output_tokens=int(params["max_tokens"]))
        # The overhead may sit in a cached prefix (a scope marker): priced as a write.
        + worst_case_write(REQUEST_OVERHEAD_TOKENS, "1h", tier)
    )
    return cost_usd(tokens, tier)


def completion_ceiling(
    tier: Tier,
    prompt: str,
    system: str | None,
    max_tokens: int,
    thinking_override: dict[str, Any] | None = None,
) -> Decimal:
    """The most answering a job on `tier` can bill, thinking and cache writes included."""
    params = build_completion_params(tier, prompt, system, max_tokens, thinking_override)
    return params_ceiling(tier, params)


def classifier_ceiling(tiers: TierTable, prompt: str) -> Decimal:
    """The most the llm classifier's own call for `prompt` can bill."""
    cheapest = tiers.cheapest
    params = build_classify_params(cheapest.model, prompt, cheapest.min_cache_tokens)
    return params_ceiling(cheapest, params)
