"""Cost rollups kept current by triggers; the analyst views read them (issue 16)

Revision ID: 0009
Revises: 0008

- rollup_calls_hourly: model_calls summed per UTC hour x key x tier x model x
  purpose: calls, jobs (a job's first completion), tokens by kind, USD, USD if
  Opus, cache and Message Batch savings, simulated calls, latency sum and
  cumulative latency buckets (the /metrics histogram's bounds).
- rollup_jobs_hourly: finished jobs per hour of their creation x key x tier x
  status; for succeeded jobs also their completion USD, rated jobs, ratings and
  the sum of each rated job's average satisfaction (tier_quality).
- rollup_decisions_hourly: routing decisions per hour x key x who decided.
- rollup_batches: per batch, its calls' tokens and USD and its succeeded jobs.
- rollup_state: when rows were last pruned (a rebuild keeps the hours before it).

Triggers on model_calls, jobs, ratings and routing_decisions update them in the
writer's transaction, so a reader never sees a call without its sums. Each
writer adds to the row of its own shard (backend pid mod 4, or the
tierroute.rollup_shards setting) so concurrent workers do not queue on one hot
row until commit; readers sum the shards. The tables leave half of each page free
(fillfactor 50) so the constant updates stay HOT: no index entry per update.
Deleting raw rows (tierroute prune) does not subtract: the rollups keep history.

The views savings, cost_by_tier_day and tier_quality keep their names and
columns and read the rollups. tierroute_rollup_rebuild(since) recomputes the
rollups from raw rows (all of them when since is NULL).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The /metrics latency histogram's bounds in ms (tierroute/store/aggregates.py
# LATENCY_BUCKETS_S); a test checks the two agree.
LATENCY_BOUNDS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000)
SHARDS = 4
TERMINAL = "('succeeded', 'failed', 'dead', 'cancelled')"
BUCKETS = [f"le_{i}" for i in range(len(LATENCY_BOUNDS_MS))]

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
# One model_calls row as the values of CALL_SUMS (c is the row, first_job 0 or 1).
# The batch saving is the savings view's own per-row expression, so sums agree.
CALL_VALUES = [
    "1",
    "first_job",
    "c.input_tokens",
    "c.output_tokens",
    "c.cache_creation_input_tokens",
    "c.cache_read_input_tokens",
    "c.cost_usd",
    "c.cost_if_opus_usd",
    "c.cache_savings_usd",
    "CASE WHEN c.batch_api THEN 1 ELSE 0 END",
    "CASE WHEN c.batch_api THEN c.cost_usd ELSE 0 END",
    "CASE WHEN c.batch_api THEN c.cost_usd * (1 - 0.5) / 0.5 ELSE 0 END",
    "CASE WHEN c.simulated THEN 1 ELSE 0 END",
    "c.latency_ms",
    *[f"CASE WHEN c.latency_ms <= {ms} THEN 1 ELSE 0 END" for ms in LATENCY_BOUNDS_MS],
]
NUMERIC_SUMS = {
    "cost_usd",
    "cost_if_opus_usd",
    "cache_savings_usd",
    "batch_api_cost_usd",
    "batch_api_savings_usd",
}


def _columns(names: Sequence[str]) -> str:
    return ",\n".join(
        f"{n} {'numeric' if n in NUMERIC_SUMS else 'bigint'} NOT NULL DEFAULT 0" for n in names
    )


def _add(names: Sequence[str], table: str = "r") -> str:
    return ", ".join(f"{n} = {table}.{n} + EXCLUDED.{n}" for n in names)


CALL_KEY = "hour, api_key_id, tier, model, purpose, shard"
JOB_SUMS = ["jobs", "cost_usd", "rated_jobs", "ratings", "satisfaction_sum"]
JOB_KEY = "hour, api_key_id, tier, status, shard"
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

TABLES = [
    f"""
    CREATE TABLE rollup_calls_hourly (
        hour timestamp NOT NULL,
        api_key_id uuid,
        tier varchar(20) NOT NULL,
        model varchar(100) NOT NULL,
        purpose varchar(20) NOT NULL,
        shard smallint NOT NULL DEFAULT 0,
        {_columns(CALL_SUMS)}
    ) WITH (fillfactor = 50)
    """,
    f"""CREATE UNIQUE INDEX uq_rollup_calls_hourly ON rollup_calls_hourly ({CALL_KEY})
        NULLS NOT DISTINCT""",
    "CREATE INDEX ix_rollup_calls_hourly_key_hour ON rollup_calls_hourly (api_key_id, hour)",
    """
    CREATE TABLE rollup_jobs_hourly (
        hour timestamp NOT NULL,
        api_key_id uuid,
        tier varchar(20),
        status varchar(20) NOT NULL,
        shard smallint NOT NULL DEFAULT 0,
        jobs bigint NOT NULL DEFAULT 0,
        cost_usd numeric NOT NULL DEFAULT 0,
        rated_jobs bigint NOT NULL DEFAULT 0,
        ratings bigint NOT NULL DEFAULT 0,
        satisfaction_sum double precision NOT NULL DEFAULT 0
    ) WITH (fillfactor = 50)
    """,
    f"""CREATE UNIQUE INDEX uq_rollup_jobs_hourly ON rollup_jobs_hourly ({JOB_KEY})
        NULLS NOT DISTINCT""",
    "CREATE INDEX ix_rollup_jobs_hourly_key ON rollup_jobs_hourly (api_key_id)",
    """
    CREATE TABLE rollup_decisions_hourly (
        hour timestamp NOT NULL,
        api_key_id uuid,
        decided_by varchar(60) NOT NULL,
        decisions bigint NOT NULL DEFAULT 0
    )
    """,
    """CREATE UNIQUE INDEX uq_rollup_decisions_hourly
        ON rollup_decisions_hourly (hour, api_key_id, decided_by) NULLS NOT DISTINCT""",
    f"""
    CREATE TABLE rollup_batches (
        batch_id uuid NOT NULL,
        shard smallint NOT NULL DEFAULT 0,
        {_columns(BATCH_SUMS)},
        PRIMARY KEY (batch_id, shard)
    ) WITH (fillfactor = 50)
    """,
    """
    CREATE TABLE rollup_state (
        id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
        pruned_before timestamptz
    )
    """,
    "INSERT INTO rollup_state (id) VALUES (1)",
]

# Who made a routing decision: report.py's decided_by labels.
DECIDED_BY = """CASE WHEN d.classifier = 'hybrid' AND d.classifier_version LIKE '%+llm'
                     THEN 'hybrid: asked llm'
                     WHEN d.classifier = 'hybrid' THEN 'hybrid: local'
                     ELSE d.classifier END"""
HOUR = "date_trunc('hour', {col} AT TIME ZONE 'UTC')"

FUNCTIONS = [
    # Shards per rollup row: 4 unless the database or role sets tierroute.rollup_shards
    # (1 puts every writer on one row, as the rollups benchmark compares).
    f"""
    CREATE FUNCTION tierroute_rollup_shards() RETURNS int LANGUAGE sql STABLE AS $$
        SELECT greatest(coalesce(
            nullif(current_setting('tierroute.rollup_shards', true), '')::int, {SHARDS}), 1)
    $$
    """,
    f"""
    CREATE FUNCTION tierroute_rollup_call() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        c model_calls := NEW;
        j_key uuid;
        j_batch uuid;
        j_status text;
        j_tier text;
        j_created timestamptz;
        first_job int := 0;
        my_shard smallint := pg_backend_pid() % tierroute_rollup_shards();
    BEGIN
        IF c.job_id IS NOT NULL THEN
            SELECT api_key_id, batch_id, status, tier, created_at
              INTO j_key, j_batch, j_status, j_tier, j_created
              FROM jobs WHERE id = c.job_id;
            IF c.purpose = 'complete' AND NOT EXISTS (
                SELECT 1 FROM model_calls m
                 WHERE m.job_id = c.job_id AND m.purpose = 'complete' AND m.id < c.id) THEN
                first_job := 1;
            END IF;
        END IF;
        INSERT INTO rollup_calls_hourly AS r ({CALL_KEY}, {", ".join(CALL_SUMS)})
        VALUES ({HOUR.format(col="c.created_at")}, coalesce(c.api_key_id, j_key),
                c.tier, c.model, c.purpose, my_shard, {", ".join(CALL_VALUES)})
        ON CONFLICT ({CALL_KEY}) DO UPDATE SET {_add(CALL_SUMS)};
        IF j_batch IS NOT NULL THEN
            INSERT INTO rollup_batches AS r (batch_id, shard, calls, input_tokens,
                output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
                cost_usd, cost_if_opus_usd)
            VALUES (j_batch, my_shard, 1, c.input_tokens, c.output_tokens,
                    c.cache_creation_input_tokens, c.cache_read_input_tokens,
                    c.cost_usd, c.cost_if_opus_usd)
            ON CONFLICT (batch_id, shard) DO UPDATE SET {_add(BATCH_SUMS[:-1])};
        END IF;
        -- A completion stored after its job succeeded still counts in tier_quality.
        IF c.purpose = 'complete' AND j_status = 'succeeded' THEN
            INSERT INTO rollup_jobs_hourly AS r ({JOB_KEY}, cost_usd)
            VALUES ({HOUR.format(col="j_created")}, j_key, j_tier, 'succeeded',
                    my_shard, c.cost_usd)
            ON CONFLICT ({JOB_KEY}) DO UPDATE SET cost_usd = r.cost_usd + EXCLUDED.cost_usd;
        END IF;
        RETURN NULL;
    END $$
    """,
    # sign is -1 for the (status, tier) a job leaves, +1 for the one it enters.
    f"""
    CREATE FUNCTION tierroute_rollup_job_delta(
        job jobs, job_status text, job_tier text, sign int, my_shard smallint
    ) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        cost numeric := 0;
        n bigint := 0;
        avg_sat double precision := 0;
    BEGIN
        IF job_status NOT IN {TERMINAL} THEN
            RETURN;
        END IF;
        IF job_status = 'succeeded' THEN
            SELECT coalesce(sum(cost_usd), 0) INTO cost FROM model_calls
             WHERE job_id = job.id AND purpose = 'complete';
            SELECT count(*), coalesce(avg(satisfaction), 0) INTO n, avg_sat FROM ratings
             WHERE job_id = job.id;
            IF job.batch_id IS NOT NULL THEN
                INSERT INTO rollup_batches AS r (batch_id, shard, succeeded_jobs)
                VALUES (job.batch_id, my_shard, sign)
                ON CONFLICT (batch_id, shard)
                DO UPDATE SET succeeded_jobs = r.succeeded_jobs + EXCLUDED.succeeded_jobs;
            END IF;
        END IF;
        INSERT INTO rollup_jobs_hourly AS r ({JOB_KEY}, {", ".join(JOB_SUMS)})
        VALUES ({HOUR.format(col="job.created_at")}, job.api_key_id, job_tier, job_status,
                my_shard, sign, sign * cost, sign * (CASE WHEN n > 0 THEN 1 ELSE 0 END),
                sign * n, sign * avg_sat)
        ON CONFLICT ({JOB_KEY}) DO UPDATE SET {_add(JOB_SUMS)};
    END $$
    """,
    """
    CREATE FUNCTION tierroute_rollup_job() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        my_shard smallint := pg_backend_pid() % tierroute_rollup_shards();
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            PERFORM tierroute_rollup_job_delta(OLD, OLD.status, OLD.tier, -1, my_shard);
        END IF;
        PERFORM tierroute_rollup_job_delta(NEW, NEW.status, NEW.tier, 1, my_shard);
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION tierroute_rollup_rating() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        j record;
        n_before bigint;
        avg_before double precision;
        avg_after double precision;
    BEGIN
        SELECT id, api_key_id, status, tier, created_at INTO j FROM jobs WHERE id = NEW.job_id;
        IF j.status IS DISTINCT FROM 'succeeded' THEN
            RETURN NULL;  -- counted when the job succeeds (tierroute_rollup_job_delta)
        END IF;
        SELECT count(*) FILTER (WHERE id < NEW.id),
               coalesce(avg(satisfaction) FILTER (WHERE id < NEW.id), 0),
               avg(satisfaction)
          INTO n_before, avg_before, avg_after
          FROM ratings WHERE job_id = NEW.job_id AND id <= NEW.id;
        INSERT INTO rollup_jobs_hourly AS r ({JOB_KEY}, rated_jobs, ratings, satisfaction_sum)
        VALUES ({HOUR.format(col="j.created_at")}, j.api_key_id, j.tier, 'succeeded',
                pg_backend_pid() % tierroute_rollup_shards(),
                CASE WHEN n_before = 0 THEN 1 ELSE 0 END, 1,
                avg_after - avg_before)
        ON CONFLICT ({JOB_KEY}) DO UPDATE SET {_add(["rated_jobs", "ratings", "satisfaction_sum"])};
        RETURN NULL;
    END $$
    """,
    # Decisions arrive up to a classify chunk at a time: one upsert per group.
    f"""
    CREATE FUNCTION tierroute_rollup_decisions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO rollup_decisions_hourly AS r (hour, api_key_id, decided_by, decisions)
        SELECT {HOUR.format(col="d.created_at")}, j.api_key_id, {DECIDED_BY}, count(*)
          FROM new_decisions d LEFT JOIN jobs j ON j.id = d.job_id
         GROUP BY 1, 2, 3
        ON CONFLICT (hour, api_key_id, decided_by)
        DO UPDATE SET decisions = r.decisions + EXCLUDED.decisions;
        RETURN NULL;
    END $$
    """,
]

TRIGGERS = [
    """CREATE TRIGGER rollup_call AFTER INSERT ON model_calls
        FOR EACH ROW EXECUTE FUNCTION tierroute_rollup_call()""",
    f"""CREATE TRIGGER rollup_job_insert AFTER INSERT ON jobs
        FOR EACH ROW WHEN (NEW.status IN {TERMINAL})
        EXECUTE FUNCTION tierroute_rollup_job()""",
    f"""CREATE TRIGGER rollup_job_update AFTER UPDATE OF status, tier ON jobs
        FOR EACH ROW WHEN ((OLD.status IN {TERMINAL} OR NEW.status IN {TERMINAL})
                           AND (OLD.status IS DISTINCT FROM NEW.status
                                OR OLD.tier IS DISTINCT FROM NEW.tier))
        EXECUTE FUNCTION tierroute_rollup_job()""",
    """CREATE TRIGGER rollup_rating AFTER INSERT ON ratings
        FOR EACH ROW EXECUTE FUNCTION tierroute_rollup_rating()""",
    """CREATE TRIGGER rollup_decisions AFTER INSERT ON routing_decisions
        REFERENCING NEW TABLE AS new_decisions
        FOR EACH STATEMENT EXECUTE FUNCTION tierroute_rollup_decisions()""",
]

# Recomputes from raw rows the rollups of hours (and batches created) from `since`
# on, all when NULL. Locks the raw tables against writes while it runs, so no
# trigger adds a row twice; the pipeline waits for it.
REBUILD = f"""
CREATE FUNCTION tierroute_rollup_rebuild(since timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    from_hour timestamp := coalesce({HOUR.format(col="since")}, '-infinity'::timestamp);
BEGIN
    LOCK TABLE jobs, model_calls, ratings, routing_decisions IN SHARE MODE;
    DELETE FROM rollup_calls_hourly WHERE hour >= from_hour;
    DELETE FROM rollup_jobs_hourly WHERE hour >= from_hour;
    DELETE FROM rollup_decisions_hourly WHERE hour >= from_hour;
    DELETE FROM rollup_batches rb USING batches b
     WHERE b.id = rb.batch_id AND {HOUR.format(col="b.created_at")} >= from_hour;
    INSERT INTO rollup_calls_hourly ({CALL_KEY}, {", ".join(CALL_SUMS)})
    SELECT {HOUR.format(col="c.created_at")}, coalesce(c.api_key_id, j.api_key_id),
           c.tier, c.model, c.purpose, 0,
           {", ".join(f"sum({v})" for v in CALL_VALUES)}
      FROM (SELECT m.*, CASE WHEN m.purpose = 'complete' AND m.job_id IS NOT NULL
                             AND NOT EXISTS (
                                 SELECT 1 FROM model_calls e
                                  WHERE e.job_id = m.job_id AND e.purpose = 'complete'
                                    AND e.id < m.id)
                        THEN 1 ELSE 0 END AS first_job
              FROM model_calls m
             WHERE {HOUR.format(col="m.created_at")} >= from_hour) c
      LEFT JOIN jobs j ON j.id = c.job_id
     GROUP BY 1, 2, 3, 4, 5;
    INSERT INTO rollup_jobs_hourly ({JOB_KEY}, {", ".join(JOB_SUMS)})
    SELECT {HOUR.format(col="j.created_at")}, j.api_key_id, j.tier, j.status, 0,
           count(*), coalesce(sum(c.cost_usd), 0), count(r.job_id),
           coalesce(sum(r.ratings), 0), coalesce(sum(r.satisfaction), 0)
      FROM jobs j
      LEFT JOIN (SELECT job_id, count(*) AS ratings, avg(satisfaction) AS satisfaction
                   FROM ratings GROUP BY job_id) r
             ON r.job_id = j.id AND j.status = 'succeeded'
      LEFT JOIN (SELECT job_id, sum(cost_usd) AS cost_usd FROM model_calls
                  WHERE purpose = 'complete' GROUP BY job_id) c
             ON c.job_id = j.id AND j.status = 'succeeded'
     WHERE j.status IN {TERMINAL} AND {HOUR.format(col="j.created_at")} >= from_hour
     GROUP BY 1, 2, 3, 4;
    INSERT INTO rollup_decisions_hourly (hour, api_key_id, decided_by, decisions)
    SELECT {HOUR.format(col="d.created_at")}, j.api_key_id, {DECIDED_BY}, count(*)
      FROM routing_decisions d LEFT JOIN jobs j ON j.id = d.job_id
     WHERE {HOUR.format(col="d.created_at")} >= from_hour
     GROUP BY 1, 2, 3;
    INSERT INTO rollup_batches (batch_id, shard, {", ".join(BATCH_SUMS)})
    SELECT b.id, 0, coalesce(c.calls, 0), coalesce(c.input_tokens, 0),
           coalesce(c.output_tokens, 0), coalesce(c.cache_creation_input_tokens, 0),
           coalesce(c.cache_read_input_tokens, 0), coalesce(c.cost_usd, 0),
           coalesce(c.cost_if_opus_usd, 0), coalesce(s.succeeded, 0)
      FROM batches b
      LEFT JOIN (SELECT j.batch_id, count(*) AS calls, sum(m.input_tokens) AS input_tokens,
                        sum(m.output_tokens) AS output_tokens,
                        sum(m.cache_creation_input_tokens) AS cache_creation_input_tokens,
                        sum(m.cache_read_input_tokens) AS cache_read_input_tokens,
                        sum(m.cost_usd) AS cost_usd, sum(m.cost_if_opus_usd) AS cost_if_opus_usd
                   FROM model_calls m JOIN jobs j ON j.id = m.job_id
                  WHERE j.batch_id IS NOT NULL GROUP BY j.batch_id) c ON c.batch_id = b.id
      LEFT JOIN (SELECT batch_id, count(*) AS succeeded FROM jobs
                  WHERE status = 'succeeded' AND batch_id IS NOT NULL
                  GROUP BY batch_id) s ON s.batch_id = b.id
     WHERE {HOUR.format(col="b.created_at")} >= from_hour
       AND (c.batch_id IS NOT NULL OR s.batch_id IS NOT NULL);
END $$
"""

VIEWS = {
    "cost_by_tier_day": """
        SELECT hour::date AS day,
               tier,
               purpose,
               sum(calls)::bigint AS calls,
               sum(input_tokens)::bigint AS input_tokens,
               sum(output_tokens)::bigint AS output_tokens,
               sum(cache_creation_input_tokens)::bigint AS cache_creation_input_tokens,
               sum(cache_read_input_tokens)::bigint AS cache_read_input_tokens,
               sum(cost_usd) AS cost_usd,
               sum(cost_if_opus_usd) AS cost_if_opus_usd,
               sum(batch_api_calls)::bigint AS batch_api_calls,
               sum(cache_savings_usd) AS cache_savings_usd,
               sum(batch_api_savings_usd) AS batch_api_savings_usd
          FROM rollup_calls_hourly
         GROUP BY 1, tier, purpose
    """,
    "savings": """
        SELECT coalesce(sum(jobs), 0)::bigint AS jobs,
               coalesce(sum(cost_usd) FILTER (WHERE purpose = 'complete'), 0)
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
               coalesce(sum(cache_read_input_tokens), 0)::bigint AS cache_read_input_tokens,
               coalesce(sum(cache_creation_input_tokens), 0)::bigint
                   AS cache_creation_input_tokens,
               coalesce(sum(cache_savings_usd), 0) AS cache_savings_usd,
               coalesce(sum(batch_api_calls), 0)::bigint AS batch_api_calls,
               coalesce(sum(batch_api_savings_usd), 0) AS batch_api_savings_usd
          FROM rollup_calls_hourly
    """,
    "tier_quality": """
        SELECT tier,
               sum(jobs)::bigint AS jobs,
               sum(rated_jobs)::bigint AS rated_jobs,
               sum(ratings) AS ratings,
               CASE WHEN sum(rated_jobs) > 0
                    THEN sum(satisfaction_sum) / sum(rated_jobs) END AS avg_satisfaction,
               sum(cost_usd) AS cost_usd,
               sum(cost_usd) / sum(jobs) AS cost_per_job_usd
          FROM rollup_jobs_hourly
         WHERE status = 'succeeded'
         GROUP BY tier
        HAVING sum(jobs) > 0
    """,
}

# The raw-table definitions (0004's cost_by_tier_day and savings, 0001's tier_quality):
# restored on downgrade, and what the rollup views must equal (tests/integration/test_rollups.py).
BATCH_SAVED = "coalesce(sum(cost_usd * (1 - 0.5) / 0.5) FILTER (WHERE batch_api), 0)"
RAW_VIEWS = {
    "cost_by_tier_day": f"""
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
               tier,
               purpose,
               count(*) AS calls,
               sum(input_tokens) AS input_tokens,
               sum(output_tokens) AS output_tokens,
               sum(cache_creation_input_tokens) AS cache_creation_input_tokens,
               sum(cache_read_input_tokens) AS cache_read_input_tokens,
               sum(cost_usd) AS cost_usd,
               sum(cost_if_opus_usd) AS cost_if_opus_usd,
               count(*) FILTER (WHERE batch_api) AS batch_api_calls,
               sum(cache_savings_usd) AS cache_savings_usd,
               {BATCH_SAVED} AS batch_api_savings_usd
          FROM model_calls
         GROUP BY 1, tier, purpose
    """,
    "savings": f"""
        SELECT count(DISTINCT job_id) FILTER (WHERE purpose = 'complete') AS jobs,
               coalesce(sum(cost_usd) FILTER (WHERE purpose = 'complete'), 0)
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
               coalesce(sum(cache_read_input_tokens), 0) AS cache_read_input_tokens,
               coalesce(sum(cache_creation_input_tokens), 0) AS cache_creation_input_tokens,
               coalesce(sum(cache_savings_usd), 0) AS cache_savings_usd,
               count(*) FILTER (WHERE batch_api) AS batch_api_calls,
               {BATCH_SAVED} AS batch_api_savings_usd
          FROM model_calls
    """,
    "tier_quality": """
        SELECT j.tier,
               count(*) AS jobs,
               count(r.job_id) AS rated_jobs,
               coalesce(sum(r.ratings), 0) AS ratings,
               avg(r.satisfaction) AS avg_satisfaction,
               coalesce(sum(c.cost_usd), 0) AS cost_usd,
               coalesce(sum(c.cost_usd), 0) / count(*) AS cost_per_job_usd
          FROM jobs j
          LEFT JOIN (SELECT job_id, count(*) AS ratings, avg(satisfaction) AS satisfaction
                       FROM ratings GROUP BY job_id) r ON r.job_id = j.id
          LEFT JOIN (SELECT job_id, sum(cost_usd) AS cost_usd
                       FROM model_calls WHERE purpose = 'complete' GROUP BY job_id) c
                 ON c.job_id = j.id
         WHERE j.status = 'succeeded'
         GROUP BY j.tier
    """,
}


def upgrade() -> None:
    for sql in [*TABLES, *FUNCTIONS, REBUILD, *TRIGGERS]:
        op.execute(sql)
    op.execute("SELECT tierroute_rollup_rebuild(NULL)")
    for name, sql in VIEWS.items():
        op.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")


def downgrade() -> None:
    for name, sql in RAW_VIEWS.items():
        op.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    for trigger, table in [
        ("rollup_decisions", "routing_decisions"),
        ("rollup_rating", "ratings"),
        ("rollup_job_update", "jobs"),
        ("rollup_job_insert", "jobs"),
        ("rollup_call", "model_calls"),
    ]:
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for function in [
        "tierroute_rollup_rebuild(timestamptz)",
        "tierroute_rollup_decisions()",
        "tierroute_rollup_rating()",
        "tierroute_rollup_job()",
        "tierroute_rollup_job_delta(jobs, text, text, int, smallint)",
        "tierroute_rollup_call()",
        "tierroute_rollup_shards()",
    ]:
        op.execute(f"DROP FUNCTION {function}")
    for table in [
        "rollup_state",
        "rollup_batches",
        "rollup_decisions_hourly",
        "rollup_jobs_hourly",
        "rollup_calls_hourly",
    ]:
        op.execute(f"DROP TABLE {table}")
