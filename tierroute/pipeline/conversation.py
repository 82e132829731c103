"""Anthropic-shaped jobs in the pipeline: sticky conversations and their call parameters."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from typing import Any

from anthropic.types import Message

from tierroute.domain.anthropic_request import PARAMS_MARKER
from tierroute.domain.decisions import RoutingDecision
from tierroute.domain.tiers import TierTable
from tierroute.store import request_params
from tierroute.store.engine import Cursor, raw_autocommit

log = logging.getLogger(__name__)
# Blocks whose text the job's result holds (thinking is never part of the answer).
TEXT_BLOCKS = frozenset({"text", "thinking", "redacted_thinking"})


def floor_of(tiers: TierTable, earlier: set[str] | None) -> str | None:
    """The highest tier an earlier turn ran on: the lowest a follow-up may run on."""
    known = [tiers.get(name) for name in earlier or () if name in tiers.names]
    return max(known, key=lambda t: t.rank).name if known else None


def sticky_floor(tiers: TierTable, cur: Cursor, job_id: uuid.UUID) -> str | None:
    """The floor of one job (None outside a conversation or on its first turn)."""
    return floor_of(tiers, request_params.earlier_turn_tiers(cur, [job_id]).get(job_id))


def sticky_floors(tiers: TierTable, cur: Cursor, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The floors of a chunk's jobs that have one, in one query."""
    floors = {}
    for job_id, earlier in request_params.earlier_turn_tiers(cur, job_ids).items():
        floor = floor_of(tiers, earlier)
        if floor is not None:
            floors[job_id] = floor
    return floors


def apply_floor(tiers: TierTable, decision: RoutingDecision, floor: str | None) -> RoutingDecision:
    """The decision, raised to the conversation's floor so a follow-up never moves down."""
    if floor is None or tiers.get(floor).rank <= tiers.get(decision.tier).rank:
        return decision
    raised = tiers.get(floor)
    return replace(
        decision,
        tier=raised.name,
        cost_ratio=tiers.cost_ratio(raised),
        reasoning=(
            f"{decision.reasoning} Sticky: an earlier turn of this conversation ran on"
            f" {raised.name}, so this one does not move to {decision.tier}."
        ),
    )


def call_params_of(
    job_id: uuid.UUID, thinking_override: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The job's request_params when its call needs them (the marker says so), else None."""
    if not thinking_override or not thinking_override.get(PARAMS_MARKER):
        return None
    with raw_autocommit() as cur:
        return request_params.load(cur, job_id)


def keep_adaptations(job_id: uuid.UUID, model: str, rules: list[str]) -> None:
    """Record on the job how its parameters were fitted to `model`."""
    if not rules:
        return
    with raw_autocommit() as cur:
        request_params.record_adaptations(cur, job_id, model, rules)
    log.debug("job %s adapted for %s: %s", job_id, model, "; ".join(rules))


def keep_content(job_id: uuid.UUID, message: Message) -> None:
    """Keep an answer's blocks when its text alone would lose some (a tool call)."""
    if all(block.type in TEXT_BLOCKS for block in message.content):
        return  # the job's result text is the whole answer
    blocks = [block.model_dump(mode="json") for block in message.content]
    try:
        with raw_autocommit() as cur:
            request_params.record_content(cur, job_id, blocks)
    except Exception:
        # The job has succeeded and its text is kept; only the blocks are missing.
        log.exception("job %s: its answer's content blocks could not be stored", job_id)
