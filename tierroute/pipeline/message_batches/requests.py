"""Message Batch requests: one per job, the same params as its live call, split to fit."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tierroute.domain.anthropic_request import PARAMS_MARKER
from tierroute.domain.tiers import Tier
from tierroute.llm.adapt import wire_body
from tierroute.llm.provider import build_completion

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
    request_params: dict[str, Any] | None = None


def batch_request(tier: Tier, job: JobRow, cache_scope: str | None = None) -> dict[str, Any]:
    """`{"custom_id": job id, "params": ...}`: params exactly as the live call sends them.

    `cache_scope`: `caching.cache_scope` of the job's key, as the live call uses.
    """
    return _request_and_rules(tier, job, cache_scope)[0]


def _request_and_rules(
    tier: Tier, job: JobRow, cache_scope: str | None
) -> tuple[dict[str, Any], list[str]]:
    params, rules = build_completion(
        tier,
        job.prompt,
        job.system,
        job.max_tokens,
        job.thinking_override,
        cache_scope=cache_scope,
        request_params=job.request_params if _needs_params(job) else None,
    )
    return {"custom_id": str(job.id), "params": wire_body(params)}, rules


def _needs_params(job: JobRow) -> bool:
    return bool(job.thinking_override and job.thinking_override.get(PARAMS_MARKER))


def batch_requests(
    tier: Tier, jobs: list[JobRow], scope_of: Callable[[JobRow], str | None]
) -> tuple[list[dict[str, Any]], dict[uuid.UUID, list[str]]]:
    """The jobs' requests, and for each job whose parameters the model needed fitted, the rules."""
    requests = []
    adapted: dict[uuid.UUID, list[str]] = {}
    for job in jobs:
        request, rules = _request_and_rules(tier, job, scope_of(job))
        requests.append(request)
        if rules:
            adapted[job.id] = rules
    return requests, adapted


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
