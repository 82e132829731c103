"""The model side: one Anthropic SDK client per process, request shapes, error mapping."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anthropic
import httpx2 as httpx  # the SDK's HTTP client package
from anthropic.types import Message

from tierroute.config import Settings
from tierroute.domain.cost import TokenCounts, cache_savings_usd, cost_usd
from tierroute.domain.decisions import CallRecord
from tierroute.domain.errors import (
    ConfigurationError,
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
)
from tierroute.domain.status import CallPurpose
from tierroute.domain.tiers import ThinkingMode, Tier, TierTable
from tierroute.llm.adapt import adapt
from tierroute.llm.caching import cached_system

SIMULATOR_API_KEY = "sk-ant-simulated"
# Statuses worth another try: timeouts, conflicts, rate limits, server errors, overload.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# A client built without a timeout (none of ours) still gets a deadline: the SDK's default.
DEFAULT_DEADLINE_S = 600.0


def _client_options(
    settings: Settings, timeout_s: float | None, client_name: str | None
) -> dict[str, Any]:
    """The keyword arguments both SDK clients (sync and async) are built with."""
    if settings.anthropic_api_key is None:
        if not settings.anthropic_base_url:
            raise ConfigurationError(
                "ANTHROPIC_API_KEY is unset, so calls go to the simulator, but "
                "ANTHROPIC_BASE_URL does not point at one (start it with `tierroute sim`)"
            )
        api_key = SIMULATOR_API_KEY
    else:
        api_key = settings.anthropic_api_key.get_secret_value()
    return {
        "api_key": api_key,
        "base_url": settings.anthropic_base_url or None,
        "max_retries": 0,
        "timeout": timeout_s or settings.request_timeout_s,
        "default_headers": {"x-tierroute-client": client_name} if client_name else None,
    }


def _limits(settings: Settings) -> httpx.Limits:
    return httpx.Limits(
        max_connections=settings.http_max_connections,
        # Keep every connection alive: hundreds of calls in flight would otherwise
        # reconnect on each call once past the SDK's default of 100 idle connections.
        max_keepalive_connections=settings.http_max_connections,
    )


def make_client(
    settings: Settings, timeout_s: float | None = None, client_name: str | None = None
) -> anthropic.Anthropic:
    """The SDK client for this process. The task owns retries, so the SDK makes none.

    `client_name` goes out as the `x-tierroute-client` header, so the simulator (and
    any proxy) can count calls in flight per worker process.
    """
    return anthropic.Anthropic(
        **_client_options(settings, timeout_s, client_name),
        http_client=anthropic.DefaultHttpxClient(limits=_limits(settings)),
    )


def make_async_clients(
    settings: Settings, count: int, client_name: str | None = None
) -> list[anthropic.AsyncAnthropic]:
    """`count` async SDK clients alike (see make_client), for one event loop.

    Several, because each holds its connections in one pool that every request
    scans: calls spread over them keep each pool a few dozen connections long.
    They share one SSL context, which is slow to build and holds memory.
    """
    context = httpx.create_ssl_context()
    return [
        anthropic.AsyncAnthropic(
            **_client_options(settings, None, client_name),
            http_client=anthropic.DefaultAsyncHttpxClient(limits=_limits(settings), verify=context),
        )
        for _ in range(max(1, count))
    ]


@dataclass(frozen=True)
class ThinkingChoice:
    """The thinking and effort actually sent for one call."""

    mode: ThinkingMode
    budget_tokens: int = 0
    effort: str | None = None


def resolve_thinking(tier: Tier, override: dict[str, Any] | None) -> ThinkingChoice:
    """Combine the tier's thinking with a request's override, within what the model accepts."""
    override = override or {}
    mode = ThinkingMode(override.get("thinking", tier.thinking))
    budget = int(override.get("budget_tokens") or tier.thinking_budget_tokens or 1024)
    if mode is ThinkingMode.ADAPTIVE and not tier.supports_adaptive_thinking:
        # Every tier model has manual extended thinking; adaptive is the newer shape.
        mode = ThinkingMode.ENABLED
    elif mode is ThinkingMode.ENABLED and tier.supports_adaptive_thinking:
        # Where adaptive exists the SDK deprecates a manual budget; send the new shape.
        mode = ThinkingMode.ADAPTIVE
    effort = override.get("effort", tier.effort)
    if not tier.supports_effort:
        effort = None
    return ThinkingChoice(mode=mode, budget_tokens=max(budget, 1024), effort=effort)


def build_completion_params(
    tier: Tier,
    prompt: str,
    system: str | None,
    max_tokens: int,
    thinking_override: dict[str, Any] | None = None,
    *,
    cache_scope: str | None = None,
    request_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `messages.create` keyword arguments for answering a job on `tier`.

    `cache_scope` (`caching.cache_scope` of the job's key) keeps its cached prefix apart;
    `request_params` (jobs.request_params) adds the request's own Anthropic parameters.
    """
    return build_completion(
        tier,
        prompt,
        system,
        max_tokens,
        thinking_override,
        cache_scope=cache_scope,
        request_params=request_params,
    )[0]


def build_completion(
    tier: Tier,
    prompt: str,
    system: str | None,
    max_tokens: int,
    thinking_override: dict[str, Any] | None = None,
    *,
    cache_scope: str | None = None,
    request_params: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """`build_completion_params`, with the rules that fitted the request to the model."""
    choice = resolve_thinking(tier, thinking_override)
    params: dict[str, Any] = {
        "model": tier.model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": prompt}],
    }
    if system:
        # A long system prompt goes as one text block with a cache breakpoint.
        params["system"] = cached_system(system, tier.min_cache_tokens, cache_scope)
    if choice.mode is ThinkingMode.ADAPTIVE:
        params["thinking"] = {"type": "adaptive"}
    elif choice.mode is ThinkingMode.ENABLED:
        # Thinking tokens count toward max_tokens, so the answer keeps its own budget.
        params["max_tokens"] = min(max_tokens + choice.budget_tokens, tier.max_output_tokens)
        params["thinking"] = {"type": "enabled", "budget_tokens": choice.budget_tokens}
    if choice.effort is not None:
        params["output_config"] = {"effort": choice.effort}
    rules = adapt(params, tier, request_params or {}, thinking_override, max_tokens, cache_scope)
    return params, rules


@dataclass(frozen=True)
class CallResult:
    """A model's answer and its bill."""

    message: Message
    text: str
    record: CallRecord


def message_text(message: Message) -> str:
    """The answer's text blocks joined; thinking blocks are not part of the answer."""
    return "".join(block.text for block in message.content if block.type == "text")


def call_model(
    client: anthropic.Anthropic,
    params: dict[str, Any],
    *,
    purpose: CallPurpose,
    tiers: TierTable,
    simulated: bool,
    timeout_s: float | None = None,
) -> CallResult:
    """Make one call and price it; SDK errors become retryable or permanent errors.

    The call ends within its timeout (`timeout_s`, else the client's), all of it: see
    call_deadline_s.
    """
    tier = _tier_of(params, tiers)
    started = time.perf_counter()
    deadline_s = call_deadline_s(client, timeout_s)
    timeout = anthropic.NOT_GIVEN if timeout_s is None else timeout_s
    outcome: Future[Message] = Future()

    def call() -> None:
        try:
            outcome.set_result(client.messages.create(**params, timeout=timeout))
        except BaseException as exc:
            outcome.set_exception(exc)

    # A thread of its own: the caller stops waiting at the deadline; the thread ends
    # with the SDK's own per-phase timeout, and its late answer is dropped.
    threading.Thread(target=call, name="tierroute-call", daemon=True).start()
    try:
        message = outcome.result(timeout=deadline_s)
    except FutureTimeout:
        raise _past_deadline(tier, deadline_s) from None
    except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
        raise sdk_error(exc, tier) from exc
    return priced(message, tier, tiers, purpose, simulated, started)


async def call_model_async(
    client: anthropic.AsyncAnthropic,
    params: dict[str, Any],
    *,
    purpose: CallPurpose,
    tiers: TierTable,
    simulated: bool,
) -> CallResult:
    """`call_model` on an event loop, with the async SDK client, within the same deadline."""
    tier = _tier_of(params, tiers)
    started = time.perf_counter()
    deadline_s = call_deadline_s(client, None)
    try:
        message = await asyncio.wait_for(client.messages.create(**params), deadline_s)
    except TimeoutError:
        raise _past_deadline(tier, deadline_s) from None
    except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
        raise sdk_error(exc, tier) from exc
    return priced(message, tier, tiers, purpose, simulated, started)


def call_deadline_s(
    client: anthropic.Anthropic | anthropic.AsyncAnthropic, timeout_s: float | None
) -> float:
    """How long a whole call may take: its timeout (`timeout_s`, else the client's).

    The SDK's timeout bounds each phase (connect, each read, each write), not the
    call: an answer that trickles in, each piece within the read timeout, can run
    on for ever. A job's lease is the call's timeout plus LEASE_MARGIN_S, so a call
    that outlived its timeout could outlive the lease, and another worker would make
    the same call again. This deadline ends the call within the timeout, whatever
    the phases do, leaving the margin to store the answer.
    """
    if timeout_s is not None:
        return timeout_s
    configured = client.timeout
    if isinstance(configured, httpx.Timeout):
        # The longest phase: never cut a call the phases themselves would allow.
        phases = (configured.connect, configured.read, configured.write, configured.pool)
        return max((p for p in phases if p is not None), default=DEFAULT_DEADLINE_S)
    return float(configured) if configured is not None else DEFAULT_DEADLINE_S


def _past_deadline(tier: Tier, deadline_s: float) -> RetryableProviderError:
    return RetryableProviderError(
        f"{tier.model}: request timed out (no answer within {deadline_s:g}s)"
    )


def _tier_of(params: dict[str, Any], tiers: TierTable) -> Tier:
    tier = tiers.by_model(params["model"])
    if tier is None:
        raise ConfigurationError(f"model {params['model']!r} is not in the tier table")
    return tier


def sdk_error(
    exc: anthropic.APIStatusError | anthropic.APIConnectionError, tier: Tier
) -> ProviderError:
    """What a failed call becomes: an HTTP error by its status, a network one retryable."""
    if isinstance(exc, anthropic.APIStatusError):
        return provider_error(exc)
    if isinstance(exc, anthropic.APITimeoutError):
        return RetryableProviderError(f"{tier.model}: request timed out")
    return RetryableProviderError(f"{tier.model}: connection failed: {exc}")


def priced(
    message: Message,
    tier: Tier,
    tiers: TierTable,
    purpose: CallPurpose,
    simulated: bool,
    started: float,
) -> CallResult:
    """A model's answer with its bill; `started` is the call's perf_counter start."""
    latency_ms = round((time.perf_counter() - started) * 1000)
    tokens = TokenCounts.from_usage(message.usage)
    cost = cost_usd(tokens, tier)
    # The all-Opus baseline answers the same prompt but never pays for routing.
    if_opus = cost_usd(tokens, tiers.top) if purpose == CallPurpose.COMPLETE else Decimal(0)
    record = CallRecord(
        purpose=purpose,
        model=message.model or tier.model,
        tier=tier.name,
        tokens=tokens,
        cost_usd=cost,
        cost_if_opus_usd=if_opus,
        latency_ms=latency_ms,
        request_id=message._request_id,
        stop_reason=message.stop_reason,
        simulated=simulated,
        cache_savings_usd=cache_savings_usd(tokens, tier),
    )
    return CallResult(message=message, text=message_text(message), record=record)


def provider_error(exc: anthropic.APIStatusError) -> ProviderError:
    """Map an HTTP error from the API to our retryable/permanent split."""
    detail = _error_message(exc)
    if exc.status_code in RETRYABLE_STATUSES:
        return RetryableProviderError(
            f"HTTP {exc.status_code}: {detail}",
            retry_after_s=retry_after_seconds(exc.response),
            status_code=exc.status_code,
        )
    return PermanentProviderError(f"HTTP {exc.status_code}: {detail}")


def retry_after_seconds(response: Any) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms` or `retry-after`), if any."""
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            continue  # an HTTP date; rare from Anthropic, treat as absent
    return None


def _error_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc.message)
