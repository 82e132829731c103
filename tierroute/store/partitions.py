"""Monthly partitions of model_calls and routing_decisions (migration 0017).

Both tables are range-partitioned by `created_at`, one partition per UTC month
(`model_calls_y2026m12`), with a default partition that takes any row no month
covers yet, so an insert never fails for want of a partition. The classify
worker's beat calls `ensure` every hour: it creates this month and the next two
ahead of time, and a partition for any month that has rows in the default one
(moving them in). `tierroute prune` calls `drop_empty` after its deletes: a month
wholly before the cutoff that holds no rows is dropped rather than left to vacuum.
A new month is filled as a plain table and attached, which does not block the
pipeline's inserts. Dropping a month locks its table exclusively, so writers queue
behind the wait: `drop_empty` waits at most 0.5 s and leaves a busy table to the
next prune (`ensure` waits up to 2 s).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

PARTITIONED = ("model_calls", "routing_decisions")
# Months created ahead of need: two hours-long beat outages a month apart still
# find this month's partition in place.
MONTHS_AHEAD = 2


def ensure(session: Session, ahead: int = MONTHS_AHEAD) -> int:
    """Create missing month partitions (this month and `ahead` more, and any month
    with rows in a default partition); how many were created."""
    created = session.execute(text("SELECT tierroute_partitions_ensure(:ahead)"), {"ahead": ahead})
    return int(created.scalar_one())


def drop_empty(session: Session, before: datetime) -> list[str]:
    """Drop month partitions that end at or before `before` and hold no rows; their names."""
    dropped = session.execute(
        text("SELECT tierroute_partitions_drop_empty(:before)"), {"before": before}
    )
    return list(dropped.scalar_one())
