"""Per-model rate limits (RPM, ITPM, OTPM) shared by every worker process through Redis.

Three token buckets per model live in one Redis hash and change in one Lua script,
so concurrent workers can neither overdraw a bucket nor see half an update. Buckets
refill continuously at limit/61 per second (see PACING_PERIOD_S) and hold at most
`burst_s` seconds of refill, and never less than one unit. The default, 0, paces
calls evenly: Anthropic may enforce a per-minute limit over shorter intervals, so
pacing avoids its 429s, and no 60 s window then holds more than the limit. A request
bigger than a bucket's capacity is admitted when the bucket is full and leaves it in
debt, so the average rate still holds.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import redis

from tierroute.config import Settings
from tierroute.domain.cost import estimate_tokens
from tierroute.domain.errors import ConfigurationError
from tierroute.domain.tiers import TierTable
from tierroute.llm.lua import lua

log = logging.getLogger(__name__)

# Role markers, the system prompt's framing and similar per-request overhead.
INPUT_OVERHEAD_TOKENS = 8
KEY_PREFIX = "tierroute:rl"
LIMIT_NAMES = ("requests", "input tokens", "output tokens")
# Waits are counted in Redis, since they happen in worker processes and /metrics is
# served by the API. Not under KEY_PREFIX: counters must outlive the buckets.
WAITS_KEY = "tierroute:metrics:ratelimit_waits"
WAIT_SECONDS_KEY = "tierroute:metrics:ratelimit_wait_seconds"
WAIT_LABELS = {"1": "requests", "2": "input_tokens", "3": "output_tokens", "cooldown": "cooldown"}

# A bucket refills a minute's limit over this many seconds, not 60. A call reaches the
# API a little after its admission, some later than others; with calls paced 60/61 s
# apart, one call may be delayed a second more than another and still no 60 s window
# at the API holds more than the limit (tests/reliability/test_rate_limit_window.py).
PACING_PERIOD_S = 61

# KEYS: bucket hash, cooldown key. ARGV: rpm, itpm, otpm (0 = unlimited), burst_s,
# then per bucket the amount to charge (acquire) or to give back (adjust; negative
# charges more), then the mode, then PACING_PERIOD_S. Returns {wait_ms, reason};
# wait_ms 0 means admitted.
# Redis's own clock (TIME) is the one clock every process agrees on.
SCRIPT = lua("ratelimit.lua")


@dataclass(frozen=True)
class ModelLimits:
    """A model's limits per minute; 0 means unlimited."""

    rpm: int = 0
    itpm: int = 0
    otpm: int = 0

    def args(self) -> list[int]:
        return [self.rpm, self.itpm, self.otpm]


@dataclass(frozen=True)
class Admission:
    """The limiter's answer: wait_s 0 means admitted and charged."""

    wait_s: float
    reason: str = ""


def estimate_input_tokens(params: dict[str, Any]) -> int:
    """Input tokens of a request, from above (cost.estimate_tokens) plus a small overhead.

    An overestimate holds capacity only until the call answers and `adjust` gives
    the difference back; an underestimate would let a burst past the model's limit.
    """
    tokens = estimate_tokens(str(params.get("system") or ""))
    for message in params.get("messages", []):
        tokens += estimate_tokens(str(message.get("content", "")))
    return tokens + INPUT_OVERHEAD_TOKENS


class RateLimiter:
    """RPM, ITPM and OTPM buckets per model plus a cooldown, shared through Redis."""

    def __init__(
        self, client: redis.Redis, limits: dict[str, ModelLimits], burst_s: float = 0.0
    ) -> None:
        self._redis = client
        self._limits = limits
        self._burst_s = burst_s
        self._script = client.register_script(SCRIPT)

    def limits(self, model: str) -> ModelLimits:
        """The limits for `model` (unlimited when unknown)."""
        return self._limits.get(model, ModelLimits())

    def acquire(self, model: str, input_tokens: int, max_tokens: int) -> Admission:
        """Charge one request, its input estimate and max_tokens, or say how long to wait."""
        wait_ms, reason = self._run(model, "acquire", 1, input_tokens, max_tokens)
        if int(wait_ms) <= 0:
            return Admission(0.0)
        code = reason.decode() if isinstance(reason, bytes) else str(reason)
        name = "cooldown after a 429" if code == "cooldown" else LIMIT_NAMES[int(code) - 1]
        self._count_wait(model, WAIT_LABELS.get(code, code), int(wait_ms) / 1000)
        return Admission(int(wait_ms) / 1000, f"{model}: {name}")

    def _count_wait(self, model: str, limit: str, wait_s: float) -> None:
        field = f"{model}|{limit}"
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hincrby(WAITS_KEY, field, 1)
            pipe.hincrbyfloat(WAIT_SECONDS_KEY, field, wait_s)
            pipe.execute()
        except redis.RedisError as exc:  # a lost count must not fail the admission
            log.warning("rate limiter: could not count a wait for %s: %s", model, exc)

    def wait_counts(self) -> dict[tuple[str, str], tuple[int, float]]:
        """Waits the limiter has imposed, by (model, limit): (times, seconds asked)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(WAITS_KEY)
        pipe.hgetall(WAIT_SECONDS_KEY)
        counts, seconds = pipe.execute()
        waits = {}
        for raw_field, raw_count in counts.items():
            field = raw_field.decode() if isinstance(raw_field, bytes) else str(raw_field)
            model, _, limit = field.rpartition("|")
            waits[(model, limit)] = (int(raw_count), float(seconds.get(raw_field, 0.0)))
        return waits

    def adjust(self, model: str, input_tokens: int = 0, output_tokens: int = 0) -> None:
        """Give back tokens charged but unused; a negative amount charges the shortfall."""
        limits = self.limits(model)
        # An unlimited bucket has nothing to give back: skip the round trip.
        input_tokens = input_tokens if limits.itpm else 0
        output_tokens = output_tokens if limits.otpm else 0
        if input_tokens or output_tokens:
            self._run(model, "adjust", 0, input_tokens, output_tokens)

    def refund(self, model: str, unused_output_tokens: int) -> None:
        """Give back the part of max_tokens the model did not use."""
        self.adjust(model, output_tokens=max(0, unused_output_tokens))

    def cooldown(self, model: str, seconds: float) -> None:
        """Pause `model` for every process; never shortens a longer cooldown."""
        ms = math.ceil(seconds * 1000)
        if ms > 0:
            key = f"{KEY_PREFIX}:{model}:cooldown"
            # GT keeps the later deadline when two workers report 429s at once.
            pipe = self._redis.pipeline()
            pipe.set(key, "1", px=ms, nx=True)
            pipe.pexpire(key, ms, gt=True)
            pipe.execute()

    def _run(self, model: str, mode: str, requests: int, inp: int, out: int) -> Any:
        keys = [f"{KEY_PREFIX}:{model}", f"{KEY_PREFIX}:{model}:cooldown"]
        args: list[str | int | float] = [*self.limits(model).args(), self._burst_s]
        args += [requests, inp, out, mode, PACING_PERIOD_S]
        return self._script(keys=keys, args=args)


def limits_by_model(
    tiers: TierTable, overrides: dict[str, dict[str, int]], *, use_table: bool
) -> dict[str, ModelLimits]:
    """Each tier model's limits: its override, else the table's (when `use_table`)."""
    known = {t.name for t in tiers.tiers} | {t.model for t in tiers.tiers}
    for key, values in overrides.items():
        unknown = set(values) - {"rpm", "itpm", "otpm"}
        if key not in known or unknown:
            raise ConfigurationError(
                f"rate_limit_overrides[{key!r}]: use a tier name or model with keys "
                f"rpm, itpm, otpm (got {sorted(values)})"
            )
    limits = {}
    for tier in tiers.tiers:
        base = ModelLimits(tier.rpm, tier.itpm, tier.otpm) if use_table else ModelLimits()
        override = {**overrides.get(tier.name, {}), **overrides.get(tier.model, {})}
        limits[tier.model] = replace(base, **override)
    return limits


# Redis connections per process for the limiter. Every model call makes one short
# script call, so a few dozen connections serve hundreds of threads; a thread finding
# them all busy waits for one (up to LIMITER_POOL_WAIT_S). redis-py's default pool
# instead refuses a 101st concurrent caller ("Too many connections"): with hundreds of
# calls in flight that sent jobs to retry later as if the limiter were down.
LIMITER_POOL_SIZE = 32
LIMITER_POOL_WAIT_S = 5.0


def limiter_pool(url: str) -> redis.BlockingConnectionPool:
    """The limiter's connection pool: bounded, and waiting rather than failing when busy."""
    return redis.BlockingConnectionPool.from_url(
        url, max_connections=LIMITER_POOL_SIZE, timeout=LIMITER_POOL_WAIT_S, socket_timeout=5
    )


class SharedLimiter:
    """This process's limiter, connected to the broker's Redis on first use."""

    def __init__(self, settings: Settings, tiers: TierTable) -> None:
        self._settings = settings
        self._tiers = tiers
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._limiter: RateLimiter | None = None

    def get(self) -> RateLimiter | None:
        """The limiter, or None when rate limits are off (or there is no Redis)."""
        settings = self._settings
        url = settings.limiter_redis_url
        if not settings.rate_limits_enabled or not url:
            return None
        with self._lock:
            if self._limiter is None:
                # The broker's Redis unless TIERROUTE_REDIS_URL names another (RabbitMQ
                # brokers): every worker already reaches it, so no new service.
                self._client = redis.Redis(connection_pool=limiter_pool(url))
                limits = limits_by_model(
                    self._tiers, settings.rate_limit_overrides, use_table=not settings.simulated
                )
                self._limiter = RateLimiter(self._client, limits, settings.rate_limit_burst_s)
            return self._limiter

    def close(self) -> None:
        """Drop the Redis connection, e.g. in a freshly forked worker child."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client.connection_pool.disconnect()
            self._client = self._limiter = None


LimiterSource = Callable[[], RateLimiter | None]
