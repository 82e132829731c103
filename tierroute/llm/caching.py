"""Prompt caching: cache breakpoints on long system prompts, and priming across workers.

A system prompt at least the model's minimum cacheable length (`Tier.min_cache_tokens`,
by the shared upper-bound estimate, cost.estimate_tokens) goes out as one text block with
`cache_control: {"type": "ephemeral"}` (5 minutes, refreshed on every read).

The API makes a cache entry usable only once the call that writes it has answered,
so jobs that share a prefix and start together would all pay for a write. Priming
avoids that: for a cacheable prefix the first job takes a short Redis lock
(SET NX with a TTL) and calls; the others wait (`CacheWarming`, a `RateLimited`,
so the task retries shortly without using up an attempt) until the primer has
answered and marked the prefix warm (a key with the cache's TTL, refreshed on use).
A job without a cacheable system prompt costs one isinstance check here.

Anthropic's cache is per organization, one per deployment, and a hit shows in the
answer's `usage`: a prefix shared by two API keys would tell one key what the other
sent in the last few minutes. So a cacheable system prompt starts with a short marker
block naming its key's scope (`cache_scope`: an HMAC of the key's id, so the marker
names no id; keyless jobs share a scope of their own), and two keys never share an
entry, a primer lock or a warm marker.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import redis

from tierroute.domain.cost import estimate_tokens
from tierroute.domain.errors import RateLimited
from tierroute.llm.lua import lua

if TYPE_CHECKING:
    from tierroute.config import Settings

log = logging.getLogger(__name__)

# Anthropic's default ephemeral cache lives 5 minutes from its last use.
CACHE_TTL_S = 300
KEY_PREFIX = "tierroute:cache"
EPHEMERAL = {"type": "ephemeral"}
SCOPE_CONTEXT = b"tierroute prompt-cache scope v1"
# Never a key id's 16 bytes, so keyless jobs share no scope with any key.
KEYLESS_SCOPE = b"keyless"

# KEYS: warm, lock. ARGV: cache TTL ms, lock TTL ms, lock token.
# A warm prefix is refreshed (it was just used); else the caller primes, or waits.
ENTER = lua("cache_enter.lua")
# KEYS: warm, lock. ARGV: cache TTL ms (0: the call failed, nothing is warm), token.
LEAVE = lua("cache_leave.lua")

Role = Literal["warm", "primer", "wait"]


def cached_system(
    text: str, min_tokens: int, scope: str | None = None
) -> str | list[dict[str, Any]]:
    """The `system` parameter: a cacheable text block when long enough, else the string.

    With a `scope` (from `cache_scope`), the cached prefix starts with its marker block.
    """
    if min_tokens <= 0 or estimate_tokens(text) < min_tokens:
        return text
    block = {"type": "text", "text": text, "cache_control": dict(EPHEMERAL)}
    if scope is None:
        return [block]
    return [{"type": "text", "text": scope_marker(scope)}, block]


def cache_scope(settings: Settings, api_key_id: uuid.UUID | None) -> str:
    """The cache scope of jobs of `api_key_id` (None: keyless jobs): 32 hex digits.

    An HMAC keyed by (a key derived from) the deployment's Anthropic key, the one secret
    every worker shares and no client sees: the marker that goes out names no key id.
    """
    secret = settings.anthropic_api_key
    raw = secret.get_secret_value().encode() if secret is not None else b""
    # A key of its own, derived, rather than the credential itself.
    scope_key = hmac.new(raw, SCOPE_CONTEXT, hashlib.sha256).digest()
    subject = KEYLESS_SCOPE if api_key_id is None else api_key_id.bytes
    return hmac.new(scope_key, subject, hashlib.sha256).hexdigest()[:32]


def scope_marker(scope: str) -> str:
    """The text of the block that opens every cached prefix of a scope."""
    return f"[cache scope {scope}]"


def prefix_key(params: dict[str, Any]) -> str | None:
    """A hash of the model and the system blocks up to the last breakpoint; None if none."""
    system = params.get("system")
    if not isinstance(system, list):
        return None
    last = max(
        (
            i
            for i, block in enumerate(system)
            if isinstance(block, dict) and "cache_control" in block
        ),
        default=None,
    )
    if last is None:
        return None
    blocks = [
        {k: v for k, v in block.items() if k != "cache_control"} for block in system[: last + 1]
    ]
    raw = json.dumps([params.get("model"), params.get("tools"), blocks], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class CacheWarming(RateLimited):
    """Another job is writing this prompt prefix to the cache: retry soon, no attempt used."""


class CacheGate:
    """The warm markers and primer locks of cacheable prefixes, in Redis."""

    def __init__(self, client: redis.Redis, lock_s: float, ttl_s: float = CACHE_TTL_S) -> None:
        self._redis = client
        self._lock_ms = max(1, int(lock_s * 1000))
        self._ttl_ms = int(ttl_s * 1000)
        self._enter = client.register_script(ENTER)
        self._leave = client.register_script(LEAVE)

    @staticmethod
    def _keys(key: str) -> list[str]:
        return [f"{KEY_PREFIX}:warm:{key}", f"{KEY_PREFIX}:prime:{key}"]

    def enter(self, key: str, token: str) -> Role:
        """'warm' (go; refreshed), 'primer' (go, then call `leave`), or 'wait'."""
        role = self._enter(keys=self._keys(key), args=[self._ttl_ms, self._lock_ms, token])
        text = role.decode() if isinstance(role, bytes) else str(role)
        return "warm" if text == "warm" else "primer" if text == "primer" else "wait"

    def leave(self, key: str, token: str, *, warmed: bool) -> None:
        """The primer is done: mark the prefix warm (if its call answered), drop the lock."""
        self._leave(keys=self._keys(key), args=[self._ttl_ms if warmed else 0, token])


_gates: dict[str, CacheGate] = {}
_gates_lock = threading.Lock()


def gate_for(settings: Settings) -> CacheGate | None:
    """This process's gate on the shared Redis; None without one (then nobody waits)."""
    url = settings.limiter_redis_url
    if not url:
        return None
    with _gates_lock:
        gate = _gates.get(url)
        if gate is None:
            client = redis.Redis.from_url(url, socket_timeout=5)
            gate = _gates[url] = CacheGate(client, settings.cache_prime_lock_s)
        return gate


@dataclass(frozen=True)
class PrimerPass:
    """The lock a primer holds on a prefix while its call writes the cache."""

    gate: CacheGate
    key: str
    token: str


def enter_gate(settings: Settings, params: dict[str, Any]) -> PrimerPass | None:
    """Before the call for `params`: a PrimerPass to `leave_gate` after it, or None to go.

    Raises CacheWarming, without calling, while another job writes the same prefix.
    """
    key = prefix_key(params)
    if key is None:
        return None
    return enter_with(gate_for(settings), key, settings.cache_prime_wait_s)


def enter_with(gate: CacheGate | None, key: str, wait_s: float) -> PrimerPass | None:
    """`enter_gate` for a known prefix key and gate."""
    if gate is None:
        return None
    token = uuid.uuid4().hex
    try:
        role = gate.enter(key, token)
    except redis.RedisError as exc:
        # Priming only saves money; a job never waits on a Redis that is down.
        log.warning("prompt cache gate unavailable (%s); calling without priming", exc)
        return None
    if role == "wait":
        delay = wait_s * random.uniform(0.75, 1.25)
        raise CacheWarming("another job is writing this prompt prefix to the cache", delay)
    return PrimerPass(gate, key, token) if role == "primer" else None


def leave_gate(primer: PrimerPass | None, *, warmed: bool) -> None:
    """After the primer's call: mark the prefix warm if it answered, release the lock."""
    if primer is None:
        return
    try:
        primer.gate.leave(primer.key, primer.token, warmed=warmed)
    except redis.RedisError as exc:
        log.warning("prompt cache gate: could not release %s: %s", primer.key, exc)
