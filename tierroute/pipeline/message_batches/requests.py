"""Message Batch requests: one per job, the same params as its live call, split to fit."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tierroute.domain.tiers import Tier
from tierroute.llm.provider import build_completion_params

# {"requests": [...]} around the items, and a comma between two of them.
ENVELOPE_BYTES = 16


@dataclass(frozen=True)
class JobRow:
    """What a batch request needs from a job row."""

    id: uuid.UUID
    prompt: str
    system: str | None
    max_tokens: int
    thinking_override: dict[str, Any] | None
    api_key_id: uuid.UUID | None = None


def batch_request(tier: Tier, job: JobRow, cache_scope: str | None = None) -> dict[str, Any]:
    """`{"custom_id": job id, "params": ...}`: params exactly as the live call sends them.

    `cache_scope`: `caching.cache_scope` of the job's key, as the live call uses.
    """
    params = build_completion_params(
        tier,
        job.prompt,
        job.system,
        job.max_tokens,
        job.thinking_override,
        cache_scope=cache_scope,
    )
    return {"custom_id": str(job.id), "params": params}


def request_bytes(request: dict[str, Any]) -> int:
    """The size of one request in the create call's JSON body."""
    return len(json.dumps(request, ensure_ascii=False).encode()) + 1


def split(
    requests: Iterable[dict[str, Any]], max_requests: int, max_bytes: int
) -> Iterator[list[dict[str, Any]]]:
    """Consecutive chunks of at most `max_requests` requests and `max_bytes` bytes each.

    A request larger than `max_bytes` on its own still goes, alone: the API decides.
    """
    chunk: list[dict[str, Any]] = []
    size = ENVELOPE_BYTES
    for request in requests:
        needed = request_bytes(request)
        if chunk and (len(chunk) >= max_requests or size + needed > max_bytes):
            yield chunk
            chunk, size = [], ENVELOPE_BYTES
        chunk.append(request)
        size += needed
    if chunk:
        yield chunk
