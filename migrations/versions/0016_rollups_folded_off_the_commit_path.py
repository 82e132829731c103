"""Rollups: folded from a pending list, off the writers' commit path (issues 15, 16)

Revision ID: 0016
Revises: 0015

Until now the rollup triggers (0009, 0015) did the rollup work in every writer's
transaction: for each stored call a lookup of its job, an earlier-call check and
two upserts; for each finished job two sums and two upserts. The benchmark put that
at about a quarter of the pipeline's rate on 2 cores (bench/README.md, "Rollups").

Now a writer's trigger only appends what it touched to `rollup_pending` (a call's
id; the id of a job that finished, changed its finished status or tier, or got a
completion or a rating). `tierroute_rollup_fold()` takes those rows (DELETE ...
RETURNING: a pending row is folded exactly once, by whichever fold deletes it) and
adds them in sets:

- calls are pure increments into `rollup_calls_hourly` and `rollup_batches`;
- a touched job is recomputed, not incremented: `rollup_job_contrib` holds what
  each finished job adds to `rollup_jobs_hourly` (and its batch's succeeded
  count); the fold replaces a touched job's row and applies the difference, so a
  job that is retried, re-tiered, rated late or completed late is always counted
  once, as it stands.

One fold runs at a time, and not before the last one's transaction commits (a
transaction-level advisory lock). The classify worker's beat folds every
few seconds, and every reader in tierroute (report, dashboard, /metrics, batch
status) folds before it reads, so what they show is exact. The SQL views read the
rollups as folded: current to the last fold, or exact after
`SELECT tierroute_rollup_fold()`. Routing decisions keep their statement trigger
(one grouped upsert per classify chunk).

Folded rows go to shard 0; readers still sum shards, so rows the sharded triggers
wrote stay valid. `tierroute_rollup_rebuild(since)` folds what is pending, then
recomputes the rollups and the job contributions from raw rows.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ROLLUPS = _migration("0009_cost_rollups.py")
TERMINAL = ROLLUPS.TERMINAL
CALL_KEY = ROLLUPS.CALL_KEY
CALL_SUMS: list[str] = ROLLUPS.CALL_SUMS
CALL_VALUES: list[str] = ROLLUPS.CALL_VALUES
BATCH_CALL_SUMS: list[str] = ROLLUPS.BATCH_SUMS[:-1]  # all but succeeded_jobs
JOB_KEY = "hour, api_key_id, tier, status, shard"
JOB_SUMS = ["jobs", "cost_usd", "rated_jobs", "ratings", "satisfaction_sum"]
HOUR = ROLLUPS.HOUR
# Any constant: the advisory lock that lets one fold (or rebuild, or compaction) run.
FOLD_LOCK = 7_160_016


def _add(names: Sequence[str]) -> str:
    return ", ".join(f"{n} = r.{n} + EXCLUDED.{n}" for n in names)


TABLES = [
    # No index: each fold empties it, and the beat keeps it to seconds of work.
    """
    CREATE TABLE rollup_pending (
        call_id bigint,
        job_id uuid
    ) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000)
    """,
    # No foreign key: a fold would key-share-lock each job, and tierroute prune
    # deletes a pruned job's row itself (the rollups keep what it added).
    """
    CREATE TABLE rollup_job_contrib (
        job_id uuid PRIMARY KEY,
        hour timestamp NOT NULL,
        api_key_id uuid,
        tier varchar(20),
        status varchar(20) NOT NULL,
        batch_id uuid,
        cost_usd numeric NOT NULL,
        rated_jobs int NOT NULL,
        ratings int NOT NULL,
        satisfaction_sum double precision NOT NULL
    )
    """,
    # What a finished job adds to rollup_jobs_hourly, from its raw rows (the rules
    # of 0009's rebuild: a succeeded job counts its completions' USD and ratings).
    f"""
    CREATE VIEW rollup_job_contributions AS
    SELECT j.id AS job_id, {HOUR.format(col="j.created_at")} AS hour, j.api_key_id,
           j.tier, j.status, j.batch_id,
           coalesce(c.cost_usd, 0) AS cost_usd,
           CASE WHEN coalesce(r.ratings, 0) > 0 THEN 1 ELSE 0 END AS rated_jobs,
           coalesce(r.ratings, 0)::int AS ratings,
           coalesce(r.satisfaction, 0) AS satisfaction_sum
      FROM jobs j
      LEFT JOIN LATERAL (SELECT sum(m.cost_usd) AS cost_usd FROM model_calls m
                          WHERE m.job_id = j.id AND m.purpose = 'complete') c
             ON j.status = 'succeeded'
      LEFT JOIN LATERAL (SELECT count(*) AS ratings, avg(satisfaction) AS satisfaction
                           FROM ratings WHERE job_id = j.id) r
             ON j.status = 'succeeded'
     WHERE j.status IN {TERMINAL}
    """,
]

PEND = [
    """
    CREATE FUNCTION tierroute_rollup_pend_call() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO rollup_pending (call_id, job_id)
        VALUES (NEW.id, CASE WHEN NEW.purpose = 'complete' THEN NEW.job_id END);
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION tierroute_rollup_pend_job() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO rollup_pending (job_id) VALUES (NEW.id);
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION tierroute_rollup_pend_rating() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO rollup_pending (job_id) VALUES (NEW.job_id);
        RETURN NULL;
    END $$
    """,
]

FOLD_CALLS = f"""
    WITH c AS MATERIALIZED (
        SELECT m.*, coalesce(m.api_key_id, j.api_key_id) AS key, j.batch_id,
               CASE WHEN m.purpose = 'complete' AND m.job_id IS NOT NULL AND NOT EXISTS (
                        SELECT 1 FROM model_calls e
                         WHERE e.job_id = m.job_id AND e.purpose = 'complete' AND e.id < m.id)
                    THEN 1 ELSE 0 END AS first_job
          FROM model_calls m LEFT JOIN jobs j ON j.id = m.job_id
         WHERE m.id = ANY(call_ids)
    ), hourly AS (
        INSERT INTO rollup_calls_hourly AS r ({CALL_KEY}, {", ".join(CALL_SUMS)})
        SELECT {HOUR.format(col="c.created_at")}, c.key, c.tier, c.model, c.purpose, 0,
               {", ".join(f"sum({v})" for v in CALL_VALUES)}
          FROM c GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT ({CALL_KEY}) DO UPDATE SET {_add(CALL_SUMS)}
    )
    INSERT INTO rollup_batches AS r (batch_id, shard, {", ".join(BATCH_CALL_SUMS)})
    SELECT c.batch_id, 0, count(*), sum(c.input_tokens), sum(c.output_tokens),
           sum(c.cache_creation_input_tokens), sum(c.cache_read_input_tokens),
           sum(c.cost_usd), sum(c.cost_if_opus_usd)
      FROM c WHERE c.batch_id IS NOT NULL GROUP BY 1
    ON CONFLICT (batch_id, shard) DO UPDATE SET {_add(BATCH_CALL_SUMS)};
"""

CONTRIB_COLUMNS = (
    "job_id, hour, api_key_id, tier, status, batch_id,"
    " cost_usd, rated_jobs, ratings, satisfaction_sum"
)
# One statement, one snapshot: the touched jobs' old contributions, their new ones
# from raw rows, the contribution table replaced, the difference applied.
FOLD_JOBS = f"""
    WITH old AS (
        SELECT * FROM rollup_job_contrib WHERE job_id = ANY(job_ids)
    ), new AS MATERIALIZED (
        SELECT * FROM rollup_job_contributions WHERE job_id = ANY(job_ids)
    ), gone AS (
        DELETE FROM rollup_job_contrib
         WHERE job_id = ANY(job_ids) AND job_id NOT IN (SELECT job_id FROM new)
    ), kept AS (
        INSERT INTO rollup_job_contrib ({CONTRIB_COLUMNS})
        SELECT {CONTRIB_COLUMNS} FROM new
        ON CONFLICT (job_id) DO UPDATE SET
            {", ".join(f"{c} = EXCLUDED.{c}" for c in CONTRIB_COLUMNS.split(", ")[1:])}
    ), delta AS (
        SELECT hour, api_key_id, tier, status, batch_id, 1 AS sign, cost_usd, rated_jobs,
               ratings, satisfaction_sum FROM new
        UNION ALL
        SELECT hour, api_key_id, tier, status, batch_id, -1, cost_usd, rated_jobs,
               ratings, satisfaction_sum FROM old
    ), hourly AS (
        INSERT INTO rollup_jobs_hourly AS r ({JOB_KEY}, {", ".join(JOB_SUMS)})
        SELECT hour, api_key_id, tier, status, 0, sum(sign), sum(sign * cost_usd),
               sum(sign * rated_jobs), sum(sign * ratings), sum(sign * satisfaction_sum)
          FROM delta GROUP BY 1, 2, 3, 4
        HAVING sum(sign) <> 0 OR sum(sign * cost_usd) <> 0 OR sum(sign * ratings) <> 0
            OR sum(sign * rated_jobs) <> 0 OR sum(sign * satisfaction_sum) <> 0
        ON CONFLICT ({JOB_KEY}) DO UPDATE SET {_add(JOB_SUMS)}
    )
    INSERT INTO rollup_batches AS r (batch_id, shard, succeeded_jobs)
    SELECT batch_id, 0, sum(sign) FROM delta
     WHERE status = 'succeeded' AND batch_id IS NOT NULL
     GROUP BY 1 HAVING sum(sign) <> 0
    ON CONFLICT (batch_id, shard)
    DO UPDATE SET succeeded_jobs = r.succeeded_jobs + EXCLUDED.succeeded_jobs;
"""

FOLD = [
    # The work of one fold, for a caller that holds FOLD_LOCK; how many rows it took.
    f"""
    CREATE FUNCTION tierroute_rollup_fold_locked(max_rows int) RETURNS bigint
    LANGUAGE plpgsql AS $$
    DECLARE
        taken bigint;
        call_ids bigint[];
        job_ids uuid[];
    BEGIN
        WITH p AS (
            DELETE FROM rollup_pending
             WHERE ctid = ANY(ARRAY(SELECT ctid FROM rollup_pending LIMIT max_rows))
            RETURNING call_id, job_id
        )
        SELECT count(*), array_agg(call_id) FILTER (WHERE call_id IS NOT NULL),
               array_agg(DISTINCT job_id) FILTER (WHERE job_id IS NOT NULL)
          INTO taken, call_ids, job_ids
          FROM p;
        IF call_ids IS NOT NULL THEN
            {FOLD_CALLS}
        END IF;
        IF job_ids IS NOT NULL THEN
            {FOLD_JOBS}
        END IF;
        RETURN taken;
    END $$
    """,
    # Fold everything pending, in rounds of at most max_rows; returns the rows folded.
    # The lock is held to the end of the caller's transaction: a fold reads the job
    # contributions the previous fold wrote, so it must not start before that commits.
    f"""
    CREATE FUNCTION tierroute_rollup_fold(max_rows int DEFAULT 20000) RETURNS bigint
    LANGUAGE plpgsql AS $$
    DECLARE
        total bigint := 0;
        taken bigint;
    BEGIN
        PERFORM pg_advisory_xact_lock({FOLD_LOCK});
        LOOP
            taken := tierroute_rollup_fold_locked(max_rows);
            total := total + taken;
            EXIT WHEN taken < max_rows;
        END LOOP;
        RETURN total;
    END $$
    """,
]

TRIGGERS = [
    "DROP TRIGGER rollup_call ON model_calls",
    "DROP TRIGGER rollup_rating ON ratings",
    "DROP TRIGGER rollup_job_insert ON jobs",
    "DROP TRIGGER rollup_job_update ON jobs",
    """CREATE TRIGGER rollup_call AFTER INSERT ON model_calls
        FOR EACH ROW EXECUTE FUNCTION tierroute_rollup_pend_call()""",
    """CREATE TRIGGER rollup_rating AFTER INSERT ON ratings
        FOR EACH ROW EXECUTE FUNCTION tierroute_rollup_pend_rating()""",
    f"""CREATE TRIGGER rollup_job_insert AFTER INSERT ON jobs
        FOR EACH ROW WHEN (NEW.status IN {TERMINAL})
        EXECUTE FUNCTION tierroute_rollup_pend_job()""",
    f"""CREATE TRIGGER rollup_job_update AFTER UPDATE OF status, tier ON jobs
        FOR EACH ROW WHEN ((OLD.status IN {TERMINAL} OR NEW.status IN {TERMINAL})
                           AND (OLD.status IS DISTINCT FROM NEW.status
                                OR OLD.tier IS DISTINCT FROM NEW.tier))
        EXECUTE FUNCTION tierroute_rollup_pend_job()""",
]


def _rebuild_raw() -> str:
    """0009's rebuild, renamed: the raw recomputation the new rebuild wraps."""
    sql: str = ROLLUPS.REBUILD
    old = "CREATE FUNCTION tierroute_rollup_rebuild(since timestamptz)"
    assert old in sql
    return sql.replace(old, "CREATE FUNCTION tierroute_rollup_rebuild_raw(since timestamptz)")


REBUILD = f"""
CREATE OR REPLACE FUNCTION tierroute_rollup_rebuild(since timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    from_hour timestamp := coalesce({HOUR.format(col="since")}, '-infinity'::timestamp);
BEGIN
    PERFORM pg_advisory_xact_lock({FOLD_LOCK});
    LOCK TABLE jobs, model_calls, ratings, routing_decisions IN SHARE MODE;
    IF since IS NULL THEN  -- everything is recomputed from the raw rows below
        DELETE FROM rollup_pending;
    ELSE  -- what is pending for earlier hours still counts
        LOOP
            EXIT WHEN tierroute_rollup_fold_locked(100000) = 0;
        END LOOP;
    END IF;
    PERFORM tierroute_rollup_rebuild_raw(since);
    DELETE FROM rollup_job_contrib WHERE hour >= from_hour;
    INSERT INTO rollup_job_contrib ({CONTRIB_COLUMNS})
    SELECT {CONTRIB_COLUMNS} FROM rollup_job_contributions WHERE hour >= from_hour;
END $$
"""

# Compaction rewrites rollup rows a fold may be adding to: one at a time.
COMPACT_LOCKED = f"""
CREATE FUNCTION tierroute_rollup_compact_locked(before timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({FOLD_LOCK});
    PERFORM tierroute_rollup_compact(before);
END $$
"""


def upgrade() -> None:
    for sql in [*TABLES, *PEND, *FOLD, _rebuild_raw(), REBUILD, COMPACT_LOCKED]:
        op.execute(sql)
    # Lock out writers while the triggers change, so no write is rolled up twice or
    # not at all: what the old triggers counted stays, the new ones start from here.
    op.execute("LOCK TABLE jobs, model_calls, ratings IN SHARE ROW EXCLUSIVE MODE")
    for sql in TRIGGERS:
        op.execute(sql)
    op.execute(
        f"INSERT INTO rollup_job_contrib ({CONTRIB_COLUMNS})"
        f" SELECT {CONTRIB_COLUMNS} FROM rollup_job_contributions"
    )


def downgrade() -> None:
    rollups_0015 = _migration("0015_rollup_success_once.py")
    op.execute("LOCK TABLE jobs, model_calls, ratings IN SHARE ROW EXCLUSIVE MODE")
    op.execute("SELECT tierroute_rollup_fold()")
    for sql in [*TRIGGERS[:4], *rollups_0015._job_triggers(deferred=True)[2:]]:
        op.execute(sql)
    op.execute("""CREATE TRIGGER rollup_call AFTER INSERT ON model_calls
        FOR EACH ROW EXECUTE FUNCTION tierroute_rollup_call()""")
    op.execute("""CREATE TRIGGER rollup_rating AFTER INSERT ON ratings
        FOR EACH ROW EXECUTE FUNCTION tierroute_rollup_rating()""")
    op.execute(ROLLUPS.REBUILD.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    for sql in [
        "DROP FUNCTION tierroute_rollup_rebuild_raw(timestamptz)",
        "DROP FUNCTION tierroute_rollup_compact_locked(timestamptz)",
        "DROP FUNCTION tierroute_rollup_fold(int)",
        "DROP FUNCTION tierroute_rollup_fold_locked(int)",
        "DROP FUNCTION tierroute_rollup_pend_rating()",
        "DROP FUNCTION tierroute_rollup_pend_job()",
        "DROP FUNCTION tierroute_rollup_pend_call()",
        "DROP VIEW rollup_job_contributions",
        "DROP TABLE rollup_job_contrib",
        "DROP TABLE rollup_pending",
    ]:
        op.execute(sql)
