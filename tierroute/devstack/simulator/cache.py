"""Simulated prompt caching: prefixes up to a cache_control breakpoint, remembered per model.

Like the real API: a prefix (tools and system blocks up to a breakpoint) at least
the model's minimum cacheable length is written on a miss and read on a hit; an
entry lives 5 minutes (1 hour with `ttl: "1h"`) from its last use. A new entry is
readable only once the request that writes it has answered, so requests that
arrive together all miss. `input_tokens` is what is left after the cached and the
written parts. Breakpoints in `system` are honoured (where tierroute puts them).

One cache for every caller, whatever its API key or client header, matched on the
exact prefix: Anthropic's cache is per organization, so any separation between
tierroute's API keys has to be in the prefix itself (tierroute/llm/caching.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tierroute.devstack.simulator.tokens import CHARS_PER_TOKEN, block_text
from tierroute.domain.tiers import TierTable

TTL_S = {"5m": 300.0, "1h": 3600.0}
# Models outside the tier table cache from the API's smallest documented minimum.
DEFAULT_MIN_TOKENS = 1024


@dataclass
class Entry:
    """One cached prefix: readable from `ready_at`, gone at `expires_at`."""

    ready_at: float
    expires_at: float
    ttl_s: float


@dataclass(frozen=True)
class CacheUsage:
    """The cache fields of `usage` for one request."""

    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def written(self) -> int:
        return self.write_5m + self.write_1h


@dataclass(frozen=True)
class Breakpoint:
    """A prefix ending at a block with cache_control."""

    key: str
    tokens: int
    ttl: str


def _tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def breakpoints(model: str, body: dict[str, Any]) -> list[Breakpoint]:
    """Each cacheable prefix of the request, shortest first."""
    system = body.get("system")
    if not isinstance(system, list):
        return []
    found: list[Breakpoint] = []
    texts: list[str] = []
    blocks: list[Any] = []
    for block in system:
        texts.append(block_text(block))
        if isinstance(block, dict):
            blocks.append({k: v for k, v in block.items() if k != "cache_control"})
            control = block.get("cache_control")
        else:
            blocks.append(block)
            control = None
        if not isinstance(control, dict):
            continue
        raw = json.dumps([model, body.get("tools"), blocks], sort_keys=True, default=str)
        # The prefix's text as count_input_tokens sees it: blocks joined by newlines.
        chars = len("\n".join(text for text in texts if text))
        ttl = str(control.get("ttl")) if control.get("ttl") in TTL_S else "5m"
        found.append(Breakpoint(hashlib.sha256(raw.encode()).hexdigest(), _tokens(chars), ttl))
    return found


class PromptCache:
    """Cached prefixes by hash, shared by every request to this simulator."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self.hits = 0
        self.writes = 0

    def use(
        self, model: str, body: dict[str, Any], table: TierTable, ready_in_s: float = 0.0
    ) -> CacheUsage:
        """Read the longest cached prefix, write the rest up to the last breakpoint."""
        points = breakpoints(model, body)
        if not points:
            return CacheUsage()
        tier = table.by_model(model)
        minimum = tier.min_cache_tokens if tier is not None else DEFAULT_MIN_TOKENS
        if minimum <= 0:
            return CacheUsage()
        cacheable = [p for p in points if p.tokens >= minimum]
        if not cacheable:
            return CacheUsage()
        now = self._clock()
        with self._lock:
            self._expire(now)
            hit = None
            for point in reversed(cacheable):
                entry = self._entries.get(point.key)
                if entry is not None and entry.ready_at <= now:
                    hit = point
                    entry.expires_at = now + entry.ttl_s  # refreshed on use
                    break
            last = cacheable[-1]
            read = hit.tokens if hit is not None else 0
            write = 0 if hit is last else last.tokens - read
            if write:
                for point in cacheable:
                    if hit is not None and point.tokens <= hit.tokens:
                        continue
                    self._store(point, now, ready_in_s)
                self.writes += 1
            if read:
                self.hits += 1
        if last.ttl == "1h":
            return CacheUsage(read=read, write_1h=write)
        return CacheUsage(read=read, write_5m=write)

    def _store(self, point: Breakpoint, now: float, ready_in_s: float) -> None:
        ttl_s = TTL_S[point.ttl]
        ready = now + ready_in_s
        entry = self._entries.get(point.key)
        if entry is not None:
            # A write already in flight: whichever answers first makes it readable.
            entry.ready_at = min(entry.ready_at, ready)
            entry.expires_at = max(entry.expires_at, ready + ttl_s)
            return
        self._entries[point.key] = Entry(ready_at=ready, expires_at=ready + ttl_s, ttl_s=ttl_s)

    def _expire(self, now: float) -> None:
        gone = [key for key, entry in self._entries.items() if entry.expires_at <= now]
        for key in gone:
            del self._entries[key]

    def clear(self) -> None:
        """Forget every entry and the counters."""
        with self._lock:
            self._entries.clear()
            self.hits = self.writes = 0

    def snapshot(self) -> dict[str, int]:
        """Entry count and hit/write counters, for GET /_sim/cache."""
        with self._lock:
            self._expire(self._clock())
            return {"entries": len(self._entries), "hits": self.hits, "writes": self.writes}


def apply_to_usage(usage: dict[str, Any], cache: CacheUsage) -> None:
    """Move cached and written tokens out of input_tokens into their own fields."""
    usage["input_tokens"] = max(0, int(usage["input_tokens"]) - cache.read - cache.written)
    usage["cache_read_input_tokens"] = cache.read
    usage["cache_creation_input_tokens"] = cache.written
    usage["cache_creation"] = {
        "ephemeral_5m_input_tokens": cache.write_5m,
        "ephemeral_1h_input_tokens": cache.write_1h,
    }
