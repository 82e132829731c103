"""Celery task and queue names, written once; the tier queues come from the tier table.

The API, the workers, the feeder, the metrics and the dev stack all send to or read
these queues. A deployment that renames tiers (`TIERROUTE_TIERS_FILE`) renames its
tier queues with them.
"""

from __future__ import annotations

from tierroute.domain.tiers import TierTable

CLASSIFY_QUEUE = "classify"

CLASSIFY = "tierroute.classify"
CLASSIFY_MANY = "tierroute.classify_many"
COMPLETE = "tierroute.complete"
COMPLETE_MANY = "tierroute.complete_many"
SHADOW = "tierroute.shadow"
BATCH_API_POLL = "tierroute.batch_api.poll"
RETENTION_PRUNE = "tierroute.retention.prune"
ROLLUP_COMPACT = "tierroute.rollup.compact"
ROLLUP_FOLD = "tierroute.rollup.fold"
PARTITIONS_ENSURE = "tierroute.partitions.ensure"


def tier_queues(tiers: TierTable) -> tuple[str, ...]:
    """One queue per tier, named after it, cheapest first."""
    return tuple(tier.name for tier in tiers.tiers)


def all_queues(tiers: TierTable) -> tuple[str, ...]:
    """The classify queue, then the tier queues."""
    return (CLASSIFY_QUEUE, *tier_queues(tiers))
