"""A model call under the shared rate limiter: admit, call, settle the charge."""

from __future__ import annotations

import logging
from typing import Any

import anthropic
import redis

from tierroute.cost import TokenCounts
from tierroute.errors import ProviderError, RateLimited, RetryableProviderError
from tierroute.models import CallPurpose
from tierroute.provider import CallResult, call_model
from tierroute.ratelimit import RateLimiter, estimate_input_tokens
from tierroute.tiers import TierTable

log = logging.getLogger(__name__)
# Without Redis the limiter cannot admit anyone: wait briefly rather than call unmetered.
LIMITER_DOWN_WAIT_S = 2.0


def limited_call(
    limiter: RateLimiter | None,
    client: anthropic.Anthropic,
    params: dict[str, Any],
    *,
    purpose: CallPurpose,
    tiers: TierTable,
    simulated: bool,
    timeout_s: float | None = None,
) -> CallResult:
    """`call_model` once the limiter admits it; raises RateLimited without calling."""
    if limiter is None:
        return call_model(
            client, params, purpose=purpose, tiers=tiers, simulated=simulated, timeout_s=timeout_s
        )
    model, max_tokens = params["model"], int(params["max_tokens"])
    estimate = estimate_input_tokens(params)
    try:
        admission = limiter.acquire(model, estimate, max_tokens)
    except redis.RedisError as exc:
        raise RateLimited(f"rate limiter unavailable: {exc}", LIMITER_DOWN_WAIT_S) from exc
    if admission.wait_s > 0:
        raise RateLimited(f"rate limited locally: {admission.reason}", admission.wait_s)
    try:
        result = call_model(
            client, params, purpose=purpose, tiers=tiers, simulated=simulated, timeout_s=timeout_s
        )
    except ProviderError as exc:
        try:
            # An error response produces no output tokens; the request and input stay charged.
            limiter.refund(model, max_tokens)
            if isinstance(exc, RetryableProviderError) and exc.status_code == 429:
                # The API says this model is over its limit for everyone: pause all workers.
                limiter.cooldown(model, exc.retry_after_s or 0.0)
        except redis.RedisError as redis_exc:
            log.warning("rate limiter: could not settle %s after an error: %s", model, redis_exc)
        raise
    try:
        settle(limiter, model, estimate, max_tokens, result.record.tokens)
    except redis.RedisError as exc:
        # The call is made and billed: its result must be kept, whatever Redis says.
        log.warning("rate limiter: could not refund %s: %s", model, exc)
    return result


def settle(
    limiter: RateLimiter, model: str, estimate: int, max_tokens: int, used: TokenCounts
) -> None:
    """Refund unused output and correct the input estimate with the real usage."""
    # Cache reads do not count toward Anthropic's input-token limit; cache writes do.
    actual_input = used.input_tokens + used.cache_creation_input_tokens
    limiter.adjust(
        model, input_tokens=estimate - actual_input, output_tokens=max_tokens - used.output_tokens
    )
