"""Rollup compaction: hours before a cutoff fold into one row per day, shards into one

Revision ID: 0013
Revises: 0012

The hourly rollups (0009) grow with the hours that have calls times the keys,
tiers, models and shards active in each: about 14,000 call rows and 41,000 job rows
for 60 days of 5 keys, which every report reads. No reader needs hours older than
today (cost_by_tier_day is per day, the report's "today" is a UTC day), so
tierroute_rollup_compact(before) merges the rows of each UTC day before `before`
into that day's midnight row of shard 0, and batches created before it into shard
0. Sums are additive, so every view and total is unchanged; a late write for a
compacted hour (a rating, a late completion) adds a new row that the next
compaction folds again. The classify worker's beat runs it hourly, keeping 48 hours.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUCKETS = [f"le_{i}" for i in range(12)]
CALL_SUMS = [
    "calls",
    "jobs",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cost_usd",
    "cost_if_opus_usd",
    "cache_savings_usd",
    "batch_api_calls",
    "batch_api_cost_usd",
    "batch_api_savings_usd",
    "simulated_calls",
    "latency_ms_sum",
    *BUCKETS,
]
JOB_SUMS = ["jobs", "cost_usd", "rated_jobs", "ratings", "satisfaction_sum"]
BATCH_SUMS = [
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cost_usd",
    "cost_if_opus_usd",
    "succeeded_jobs",
]


def _fold(table: str, dims: list[str], sums: list[str], sharded: bool = True) -> str:
    """Move a table's rows before the cutoff into (day, dims[, shard 0]) rows."""
    key = ["hour", *dims, *(["shard"] if sharded else [])]
    is_target = "hour = date_trunc('day', hour)" + (" AND shard = 0" if sharded else "")
    select_key = ["date_trunc('day', hour)", *dims, *(["0"] if sharded else [])]
    return f"""
        WITH moved AS (
            DELETE FROM {table}
             WHERE hour < cutoff AND NOT ({is_target})
            RETURNING *
        )
        INSERT INTO {table} AS r ({", ".join(key)}, {", ".join(sums)})
        SELECT {", ".join(select_key)}, {", ".join(f"sum({s})" for s in sums)}
          FROM moved
         GROUP BY {", ".join(str(i + 1) for i in range(len(key)))}
        ON CONFLICT ({", ".join(key)})
        DO UPDATE SET {", ".join(f"{s} = r.{s} + EXCLUDED.{s}" for s in sums)};
    """


COMPACT = f"""
CREATE FUNCTION tierroute_rollup_compact(before timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    -- Whole UTC days only, so a day is never split between hourly and daily rows.
    cutoff timestamp := date_trunc('day', before AT TIME ZONE 'UTC');
BEGIN
    {_fold("rollup_calls_hourly", ["api_key_id", "tier", "model", "purpose"], CALL_SUMS)}
    {_fold("rollup_jobs_hourly", ["api_key_id", "tier", "status"], JOB_SUMS)}
    {_fold("rollup_decisions_hourly", ["api_key_id", "decided_by"], ["decisions"], False)}
    WITH moved AS (
        DELETE FROM rollup_batches rb USING batches b
         WHERE b.id = rb.batch_id AND rb.shard <> 0 AND b.created_at < before
        RETURNING rb.*
    )
    INSERT INTO rollup_batches AS r (batch_id, shard, {", ".join(BATCH_SUMS)})
    SELECT batch_id, 0, {", ".join(f"sum({s})" for s in BATCH_SUMS)} FROM moved GROUP BY 1
    ON CONFLICT (batch_id, shard)
    DO UPDATE SET {", ".join(f"{s} = r.{s} + EXCLUDED.{s}" for s in BATCH_SUMS)};
END $$
"""


def upgrade() -> None:
    op.execute(COMPACT)


def downgrade() -> None:
    op.execute("DROP FUNCTION tierroute_rollup_compact(timestamptz)")
