"""Reads, folds and rebuilds of the cost rollups (migrations 0009 and 0016).

`rollup_calls_hourly`, `rollup_jobs_hourly`, `rollup_decisions_hourly` and
`rollup_batches` hold the sums, so every total here reads a few thousand rows however
many calls the raw tables hold, and still counts calls whose raw rows were pruned.
Writers only list what they touched in `rollup_pending`; `fold` adds that to the
rollups in sets, off the writers' commit path. The beat folds every FOLD_EVERY_S, and
every reader folds first (`fold`), so the report, dashboard, /metrics and batch
status are exact. Rows written by 0009's triggers sit in shards 0-3; these queries
sum the shards. Hours before the last KEEP_HOURLY are
compacted into one row per UTC day and shard 0 (migration 0013), which no reader
here can tell apart, since none needs hours older than today.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from tierroute.store.engine import Cursor

# How often the classify worker's beat folds the pending rows (worker/batch_tasks.py).
FOLD_EVERY_S = 5.0
# Hourly rows kept before compaction into days: today's and yesterday's hours at least.
KEEP_HOURLY = timedelta(hours=48)

# The savings view's sums, for one key's calls (rollup_calls_hourly.api_key_id is the
# job's key, or the key a /v1/route call named), plus the report's extra figures.
SCOPED_SAVINGS = """
    SELECT coalesce(sum(cost_usd) FILTER (WHERE purpose = 'complete'), 0)
               AS completion_cost_usd,
           coalesce(sum(cost_usd) FILTER (WHERE purpose = 'classify'), 0)
               AS classifier_cost_usd,
           coalesce(sum(cost_usd), 0) AS total_cost_usd,
           coalesce(sum(cost_if_opus_usd), 0) AS cost_if_all_opus_usd,
           coalesce(sum(cost_if_opus_usd), 0) - coalesce(sum(cost_usd), 0) AS saved_usd,
           CASE WHEN coalesce(sum(cost_if_opus_usd), 0) > 0
                THEN round(100 * (sum(cost_if_opus_usd) - sum(cost_usd))
                           / sum(cost_if_opus_usd), 2)
           END AS saved_pct,
           coalesce(sum(simulated_calls), 0) > 0 AS simulated,
           coalesce(sum(calls) FILTER (WHERE purpose = 'classify'), 0) AS classifier_calls,
           coalesce(sum(cache_read_input_tokens), 0) AS cache_read_input_tokens,
           coalesce(sum(cache_creation_input_tokens), 0) AS cache_creation_input_tokens,
           coalesce(sum(cache_savings_usd), 0) AS cache_savings_usd,
           coalesce(sum(batch_api_calls), 0) AS batch_api_calls,
           coalesce(sum(batch_api_cost_usd), 0) AS batch_api_cost_usd
      FROM rollup_calls_hourly
     WHERE api_key_id = :key
"""
# What the savings view leaves out, over every key.
GLOBAL_EXTRAS = """
    SELECT coalesce(sum(simulated_calls), 0) > 0 AS simulated,
           coalesce(sum(calls) FILTER (WHERE purpose = 'classify'), 0) AS classifier_calls
      FROM rollup_calls_hourly
"""
# tier_quality's columns for one key's succeeded jobs.
SCOPED_QUALITY = """
    SELECT tier,
           sum(jobs) AS jobs,
           sum(rated_jobs) AS rated_jobs,
           CASE WHEN sum(rated_jobs) > 0
                THEN sum(satisfaction_sum) / sum(rated_jobs) END AS avg_satisfaction,
           sum(cost_usd) AS cost_usd
      FROM rollup_jobs_hourly
     WHERE status = 'succeeded' AND api_key_id = :key
     GROUP BY tier
    HAVING sum(jobs) > 0
"""
FAILED = """
    SELECT coalesce(sum(jobs), 0) FROM rollup_jobs_hourly
     WHERE status IN ('failed', 'dead') {scope}
"""
DECIDED_BY = """
    SELECT decided_by, sum(decisions) AS decisions FROM rollup_decisions_hourly {scope}
     GROUP BY 1 HAVING sum(decisions) > 0 ORDER BY 2 DESC, 1
"""
# Shadow judging's learning cost and today's (UTC) completion spend; hours are UTC.
LEARNING = """
    SELECT coalesce(sum(cost_usd) FILTER (WHERE purpose IN ('shadow', 'judge')), 0)
               AS learning_cost_usd,
           coalesce(sum(calls) FILTER (WHERE purpose = 'shadow'), 0) AS shadow_calls,
           coalesce(sum(calls) FILTER (WHERE purpose = 'judge'), 0) AS judge_calls,
           coalesce(sum(cost_usd) FILTER (WHERE purpose IN ('shadow', 'judge')
                                            AND hour >= day.start), 0) AS learning_today_usd,
           coalesce(sum(cost_usd) FILTER (WHERE purpose = 'complete'
                                            AND hour >= day.start), 0) AS completion_today_usd
      FROM rollup_calls_hourly,
           (SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AS start) day
     WHERE purpose IN ('shadow', 'judge', 'complete') {scope}
"""
# cost_by_tier_day's columns for one key's calls since a UTC midnight.
SCOPED_DAILY = """
    SELECT hour::date AS day, tier, purpose,
           sum(calls) AS calls,
           sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens,
           sum(cache_creation_input_tokens) AS cache_creation_input_tokens,
           sum(cache_read_input_tokens) AS cache_read_input_tokens,
           sum(cost_usd) AS cost_usd,
           sum(cost_if_opus_usd) AS cost_if_opus_usd,
           sum(cache_savings_usd) AS cache_savings_usd
      FROM rollup_calls_hourly
     WHERE api_key_id = :key AND hour >= :since
     GROUP BY 1, tier, purpose
"""
# The costliest of the most recent batches (all keys, or one key's: {scope}). Reading
# only the newest RECENT_BATCHES (an index scan of batches by created_at), and their
# rollup rows by primary key (LATERAL, so never a scan of rollup_batches), keeps the
# dashboard's cost flat however many batches there are; sorting every batch's
# rollups grew with their number (bench/growth.py).
RECENT_BATCHES = 200
TOP_BATCHES = """
    SELECT b.id, b.created_at, b.job_count,
           coalesce(r.succeeded, 0) AS succeeded,
           coalesce(r.cost_usd, 0) AS cost_usd,
           coalesce(r.cost_if_opus_usd, 0) AS cost_if_opus_usd
      FROM (SELECT id, created_at, job_count FROM batches
             WHERE job_count > 0 {scope}
             ORDER BY created_at DESC
             LIMIT :recent) b
     CROSS JOIN LATERAL (
           SELECT sum(succeeded_jobs) AS succeeded, sum(cost_usd) AS cost_usd,
                  sum(cost_if_opus_usd) AS cost_if_opus_usd
             FROM rollup_batches WHERE batch_id = b.id) r
     ORDER BY cost_usd DESC, b.created_at DESC
     LIMIT :top
"""
BATCH_COST = """
    SELECT coalesce(sum(cost_usd), 0), coalesce(sum(cost_if_opus_usd), 0)
      FROM rollup_batches WHERE batch_id = :batch
"""


def key_scope(api_key_id: uuid.UUID | None, joiner: str = "AND") -> tuple[str, dict[str, object]]:
    """An SQL condition on rollup rows' api_key_id (empty for every key) and its params."""
    if api_key_id is None:
        return "", {}
    return f"{joiner} api_key_id = :key", {"key": api_key_id}


def fold(session: Session) -> int:
    """Add what writers listed in `rollup_pending` to the rollups; the rows folded.

    Waits for a fold in progress. The lock is held until `session` commits, so call
    it at the start of a short read, as the readers here do.
    """
    return int(session.execute(text("SELECT tierroute_rollup_fold()")).scalar_one())


def failed_jobs(session: Session, api_key_id: uuid.UUID | None = None) -> int:
    """Jobs that ended failed or dead."""
    scope, params = key_scope(api_key_id)
    return int(session.execute(text(FAILED.format(scope=scope)), params).scalar_one())


def batch_cost(session: Session, batch_id: uuid.UUID) -> tuple[Decimal, Decimal]:
    """(USD, USD if every call were on Opus) of a batch's calls so far."""
    cost, if_opus = session.execute(text(BATCH_COST), {"batch": batch_id}).one()
    return Decimal(cost), Decimal(if_opus)


def start_of_day(at: datetime) -> datetime:
    """The UTC midnight at or before `at`."""
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def compact(session: Session, now: datetime | None = None) -> None:
    """Fold rollup rows of whole UTC days older than KEEP_HOURLY into one row per day."""
    before = (now or datetime.now(UTC)) - KEEP_HOURLY
    session.execute(text("SELECT tierroute_rollup_compact_locked(:before)"), {"before": before})


# The rollup tables; small (their rows grow with hours, keys and batches, not calls).
ROLLUP_TABLES = (
    "rollup_calls_hourly",
    "rollup_jobs_hourly",
    "rollup_decisions_hourly",
    "rollup_batches",
)
# A rebuild writes every hour from its start, then compaction deletes all but the
# last two days' hours, leaving the tables the size of every hour ever rebuilt: at
# 1M jobs over 60 days, 381 pages for 1,328 live rows, and every read that sums them
# scans those pages. In use, folds reuse the space each day's compaction frees, so
# after a rebuild the tables are rewritten at their live size (each in a moment: they
# are small; readers and folds wait that long).
REPACK = f"VACUUM (FULL, ANALYZE) {', '.join(ROLLUP_TABLES)}"


def repack(cur: Cursor) -> None:
    """Rewrite the rollup tables at their live size; `cur` must be in autocommit."""
    cur.execute(REPACK)


def rebuild(session: Session, since: datetime | None = None) -> None:
    """Recompute the rollups from raw rows: all hours, or those from `since` on.

    Hours before the last prune keep their rollups (their raw rows are gone), so a
    full rebuild starts at `rollup_state.pruned_before`. What is pending is folded
    first; raw tables are locked against writes while it runs. Then compacts, as the
    beat does.
    """
    pruned = session.execute(text("SELECT pruned_before FROM rollup_state")).scalar_one_or_none()
    start = max((t for t in (since, pruned) if t is not None), default=None)
    if start is not None:  # a compacted day's row holds all its hours: redo whole days
        start = start_of_day(start)
    session.execute(text("SELECT tierroute_rollup_rebuild(:since)"), {"since": start})
    compact(session)
