"""A request's own Anthropic parameters, fitted to the model of the tier it was routed to.

The router picks the model, so a request may ask for what that model refuses. Each
rule below translates or drops one such parameter and says so in one sentence; the
complete step keeps the sentences on the job (jobs.request_params.adaptations).
"""

from __future__ import annotations

from typing import Any

from tierroute.domain.anthropic_request import PASSTHROUGH
from tierroute.domain.tiers import Tier
from tierroute.llm.caching import cached_system

# With thinking on, the API accepts top_p only in [0.95, 1].
THINKING_MIN_TOP_P = 0.95
# The API still takes these, but the SDK (since 1.0) has no keyword for them: they go
# in `extra_body`, which the SDK merges into the request's JSON.
SAMPLING = ("temperature", "top_p", "top_k")


def wire_body(params: dict[str, Any]) -> dict[str, Any]:
    """The request's JSON body as the API receives it: `extra_body` merged in."""
    extra = params.get("extra_body")
    if not extra:
        return params
    body = {key: value for key, value in params.items() if key != "extra_body"}
    return {**body, **extra}


def _thinking_conflicts(params: dict[str, Any]) -> list[str]:
    """The parameters the API refuses alongside thinking."""
    conflicts = []
    if params.get("temperature") not in (None, 1, 1.0):
        conflicts.append("temperature")
    if params.get("top_k") is not None:
        conflicts.append("top_k")
    top_p = params.get("top_p")
    if top_p is not None and top_p < THINKING_MIN_TOP_P:
        conflicts.append("top_p")
    if (params.get("tool_choice") or {}).get("type") in ("any", "tool"):
        conflicts.append("tool_choice")
    return conflicts


def _thinking_rules(
    params: dict[str, Any], tier: Tier, override: dict[str, Any], max_tokens: int
) -> list[str]:
    rules = []
    asked = override.get("thinking")
    sent = (params.get("thinking") or {}).get("type")
    if asked == "adaptive" and sent == "enabled":
        rules.append(
            f"thinking: adaptive sent as enabled with a {params['thinking']['budget_tokens']}-token"
            f" budget, since {tier.model} has no adaptive thinking"
        )
    elif asked == "enabled" and sent == "adaptive":
        rules.append(f"thinking: enabled sent as adaptive, the shape {tier.model} expects")
    if override.get("effort") and "effort" not in (params.get("output_config") or {}):
        rules.append(f"output_config.effort: dropped, since {tier.model} does not accept effort")
    conflicts = _thinking_conflicts(params) if sent else []
    if not conflicts:
        return rules
    names = ", ".join(conflicts)
    if asked in ("adaptive", "enabled"):
        # The caller asked for thinking: it wins over the sampling parameters.
        for name in conflicts:
            params.pop(name, None)
        rules.append(f"{names}: dropped, since thinking is on and the API refuses them with it")
    else:
        # Only the tier's default thinking conflicts: the caller's parameters win.
        params.pop("thinking", None)
        params["max_tokens"] = max_tokens
        rules.append(f"thinking: the {tier.name} tier's default thinking is off, as {names} is set")
    return rules


def adapt(
    params: dict[str, Any],
    tier: Tier,
    request: dict[str, Any],
    override: dict[str, Any] | None,
    max_tokens: int,
    cache_scope: str | None = None,
) -> list[str]:
    """Add the request's parameters to `params` (built for `tier`); the rules applied."""
    if "messages" in request:
        params["messages"] = request["messages"]
        system = request.get("system")
        if isinstance(system, str):
            params["system"] = cached_system(system, tier.min_cache_tokens, cache_scope)
        elif system is not None:
            params["system"] = system
        else:
            params.pop("system", None)
    elif "system" in request:
        params["system"] = request["system"]
    for name in PASSTHROUGH:
        if name in request:
            params[name] = request[name]
    if "metadata" in request:
        params["metadata"] = request["metadata"]
    fmt = (request.get("output_config") or {}).get("format")
    if fmt is not None:
        params["output_config"] = {**(params.get("output_config") or {}), "format": fmt}
    rules = _thinking_rules(params, tier, override or {}, max_tokens)
    if "temperature" in params and "top_p" in params:
        # Current models take one or the other; temperature is the common choice.
        del params["top_p"]
        rules.append(f"top_p: dropped, since {tier.model} takes temperature or top_p, not both")
    if params["max_tokens"] > tier.max_output_tokens:
        params["max_tokens"] = tier.max_output_tokens
        rules.append(
            f"max_tokens: lowered to {tier.max_output_tokens}, the most {tier.model} gives"
        )
    sampling = {name: params.pop(name) for name in SAMPLING if name in params}
    if sampling:
        params["extra_body"] = sampling
    return rules
