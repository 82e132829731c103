"""A model call under the shared rate limiter: admit, call, settle the charge."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import anthropic
import redis

from tierroute.domain.cost import TokenCounts
from tierroute.domain.errors import ProviderError, RateLimited, RetryableProviderError
from tierroute.domain.status import CallPurpose
from tierroute.domain.tiers import TierTable
from tierroute.llm.provider import CallResult, call_model
from tierroute.llm.ratelimit import RateLimiter, estimate_input_tokens

log = logging.getLogger(__name__)
# Without Redis the limiter cannot admit anyone: wait briefly rather than call unmetered.
LIMITER_DOWN_WAIT_S = 2.0


@dataclass(frozen=True)
class Admission:
    """A call the limiter let through, with what it charged, to be settled after the call."""

    limiter: RateLimiter | None
    model: str
    estimate: int
    max_tokens: int


def admit(limiter: RateLimiter | None, params: dict[str, Any]) -> Admission:
    """Charge the shared limiter for the call `params` describes; raises RateLimited."""
    model, max_tokens = params["model"], int(params["max_tokens"])
    if limiter is None:
        return Admission(None, model, 0, max_tokens)
    estimate = estimate_input_tokens(params)
    try:
        admitted = limiter.acquire(model, estimate, max_tokens)
    except redis.RedisError as exc:
        raise RateLimited(f"rate limiter unavailable: {exc}", LIMITER_DOWN_WAIT_S) from exc
    if admitted.wait_s > 0:
        raise RateLimited(f"rate limited locally: {admitted.reason}", admitted.wait_s)
    return Admission(limiter, model, estimate, max_tokens)


def settle_call(admission: Admission, outcome: CallResult | ProviderError) -> None:
    """Correct the admission's charge with what the call used; never raises for Redis."""
    limiter, model = admission.limiter, admission.model
    if limiter is None:
        return
    try:
        if isinstance(outcome, CallResult):
            settle(limiter, model, admission.estimate, admission.max_tokens, outcome.record.tokens)
            return
        # An error response produces no output tokens; the request and input stay charged.
        limiter.refund(model, admission.max_tokens)
        if isinstance(outcome, RetryableProviderError) and outcome.status_code == 429:
            # The API says this model is over its limit for everyone: pause all workers.
            limiter.cooldown(model, outcome.retry_after_s or 0.0)
    except redis.RedisError as exc:
        # The call is made and billed: its result must be kept, whatever Redis says.
        log.warning("rate limiter: could not settle %s after its call: %s", model, exc)


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
    admission = admit(limiter, params)
    try:
        result = call_model(
            client, params, purpose=purpose, tiers=tiers, simulated=simulated, timeout_s=timeout_s
        )
    except ProviderError as exc:
        settle_call(admission, exc)
        raise
    settle_call(admission, result)
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
