"""model_calls and routing_decisions range-partitioned by month (issue 16)

Revision ID: 0017
Revises: 0016

The two tables that grow with every job become partitioned tables over
`created_at`, one partition a month (`model_calls_y2026m12`), plus a default
partition that catches a row no month partition covers yet, so no insert can fail
for want of one. Retention can then drop a month that is empty instead of leaving a
bloated table behind for vacuum, and the planner skips months a query's time range
excludes (the budget's and the learning cap's "today" sums read one partition).

`tierroute_partitions_ensure(ahead)` creates the partitions for this month and the
next `ahead` months, and for any month that has rows in a default partition (moving
those rows into it). The classify worker's beat runs it every hour; this migration
runs it once. `tierroute_partitions_drop_empty(before)` drops month partitions that
end before `before` and hold no rows (tierroute prune calls it after its deletes).

Conversion: each table is renamed aside, re-created partitioned with the same
columns, defaults, storage and compression, its rows copied, then its indexes,
foreign keys and triggers re-created from the catalog, as they were. Two things
change, because a partitioned table's unique constraints must hold the partition
key: the primary keys become (id, created_at), and routing_decisions' unique
job_id becomes a plain index; one decision per job is kept by the routing claim
(a job is routed only from tier NULL, in the statement that stores its decision).
The copy fires no trigger (the triggers are re-created after it), so nothing is
rolled up twice. The migration locks both tables for the copy: at millions of rows
it takes minutes, like any table rewrite.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITIONED = ("model_calls", "routing_decisions")
# The view that reads model_calls; dropped for the swap and re-created as it was.
DEPENDENT_VIEW = "rollup_job_contributions"
LOCK_TIMEOUT = "2s"
DROP_LOCK_TIMEOUT = "500ms"


def _migration(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# A month's partition is `<table>_yYYYYmMM`; months are UTC months.
FUNCTIONS = [
    """
    CREATE FUNCTION tierroute_month_partition(parent text, month timestamp) RETURNS boolean
    LANGUAGE plpgsql AS $$
    DECLARE
        part text := format('%s_y%sm%s', parent, to_char(month, 'YYYY'), to_char(month, 'MM'));
        lo timestamptz := month AT TIME ZONE 'UTC';
        hi timestamptz := (month + interval '1 month') AT TIME ZONE 'UTC';
        fallback text := parent || '_default';
    BEGIN
        IF to_regclass(part) IS NOT NULL THEN
            RETURN false;
        END IF;
        -- Rows of that month in the default partition move into the new one: it is
        -- filled as a plain table, then attached (ATTACH checks the default is clear).
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING STORAGE'
                       ' INCLUDING COMPRESSION INCLUDING CONSTRAINTS)', part, parent);
        IF to_regclass(fallback) IS NOT NULL THEN
            EXECUTE format('WITH moved AS (DELETE FROM %I WHERE created_at >= %L'
                           ' AND created_at < %L RETURNING *) INSERT INTO %I'
                           ' SELECT * FROM moved', fallback, lo, hi, part);
        END IF;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       parent, part, lo, hi);
        RETURN true;
    END $$
    """,
    f"""
    CREATE FUNCTION tierroute_partitions_ensure(ahead int DEFAULT 2) RETURNS int
    LANGUAGE plpgsql AS $$
    DECLARE
        parent text;
        month timestamp;
        created int := 0;
        previous_timeout text := current_setting('lock_timeout');
    BEGIN
        -- A partition is made under an exclusive lock on its table: wait briefly,
        -- and leave it to the next run rather than stall the pipeline's writers.
        PERFORM set_config('lock_timeout', '{LOCK_TIMEOUT}', true);
        FOREACH parent IN ARRAY ARRAY{list(PARTITIONED)} LOOP
            FOR month IN
                SELECT generate_series(date_trunc('month', now() AT TIME ZONE 'UTC'),
                                       date_trunc('month', now() AT TIME ZONE 'UTC')
                                           + make_interval(months => ahead),
                                       interval '1 month')
                UNION
                SELECT DISTINCT date_trunc('month', d.created_at AT TIME ZONE 'UTC')
                  FROM tierroute_partition_default_times(parent) d(created_at)
                 ORDER BY 1
            LOOP
                BEGIN
                    IF tierroute_month_partition(parent, month) THEN
                        created := created + 1;
                    END IF;
                EXCEPTION WHEN lock_not_available THEN
                    RAISE NOTICE 'partition of % for %: table busy, next run', parent, month;
                END;
            END LOOP;
        END LOOP;
        PERFORM set_config('lock_timeout', previous_timeout, true);
        RETURN created;
    END $$
    """,
    """
    CREATE FUNCTION tierroute_partition_default_times(parent text)
    RETURNS SETOF timestamptz LANGUAGE plpgsql AS $$
    BEGIN
        IF to_regclass(parent || '_default') IS NOT NULL THEN
            -- 'infinity' has no month: such a row stays in the default partition.
            RETURN QUERY EXECUTE format('SELECT created_at FROM %I WHERE isfinite(created_at)',
                                        parent || '_default');
        END IF;
    END $$
    """,
    # Month partitions wholly before `before` that hold no rows: dropped, names returned.
    f"""
    CREATE FUNCTION tierroute_partitions_drop_empty(before timestamptz) RETURNS text[]
    LANGUAGE plpgsql AS $$
    DECLARE
        part record;
        has_rows boolean;
        dropped text[] := ARRAY[]::text[];
        previous_timeout text := current_setting('lock_timeout');
    BEGIN
        -- Dropping a partition locks its parent exclusively: writers queue behind
        -- the wait, so it is short, and a busy table is left for the next prune.
        PERFORM set_config('lock_timeout', '{DROP_LOCK_TIMEOUT}', true);
        FOR part IN
            SELECT c.relname AS name,
                   (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS upper
              FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent::regclass::text = ANY(ARRAY{list(PARTITIONED)})
               AND c.relname ~ '_y[0-9]{{4}}m[0-9]{{2}}$'
        LOOP
            CONTINUE WHEN part.upper > before;
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', part.name) INTO has_rows;
            CONTINUE WHEN has_rows;
            BEGIN
                EXECUTE format('DROP TABLE %I', part.name);
                dropped := dropped || part.name::text;
            EXCEPTION WHEN lock_not_available THEN
                RAISE NOTICE 'partition %: table busy, left for the next prune', part.name;
            END;
        END LOOP;
        PERFORM set_config('lock_timeout', previous_timeout, true);
        RETURN dropped;
    END $$
    """,
]


def _rows(sql: str, **params: object) -> list[Any]:
    return list(op.get_bind().execute(sa.text(sql), params))


def _parts(table: str, skip: set[str]) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """The table's own index, foreign-key and trigger definitions, from the catalog."""
    indexes = [
        str(definition)
        for name, definition in _rows(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t", t=table
        )
        if name not in skip
    ]
    foreign_keys = [
        (str(name), str(definition))
        for name, definition in _rows(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = CAST(:t AS regclass) AND contype = 'f' AND conparentid = 0",
            t=table,
        )
    ]
    triggers = [
        str(definition)
        for (definition,) in _rows(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
            " WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal",
            t=table,
        )
    ]
    return indexes, foreign_keys, triggers


def _rebuild(table: str, *, partitioned: bool) -> None:
    """Re-create `table` (partitioned by month over created_at, or plain again) with
    the same columns, rows, indexes, foreign keys and triggers; only the keys change."""
    keys = {
        str(name)
        for (name,) in _rows(
            "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass)"
            " AND contype IN ('p', 'u')",
            t=table,
        )
    }
    indexes, foreign_keys, triggers = _parts(table, keys | {"ix_routing_decisions_job_id"})
    aside = f"{table}_before_0017" if partitioned else f"{table}_partitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {aside}")
    op.execute(
        f"CREATE TABLE {table} (LIKE {aside} INCLUDING DEFAULTS INCLUDING STORAGE"
        " INCLUDING COMPRESSION INCLUDING CONSTRAINTS)"
        + (" PARTITION BY RANGE (created_at)" if partitioned else "")
    )
    if partitioned:
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    # The sequence behind id would go with the old table: it moves to the new one.
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
    op.execute(f"INSERT INTO {table} SELECT * FROM {aside}")
    op.execute(f"DROP TABLE {aside}")
    key = "id, created_at" if partitioned else "id"
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({key})")
    for definition in indexes:
        op.execute(definition)
    if table == "routing_decisions" and partitioned:
        op.execute("CREATE INDEX ix_routing_decisions_job_id ON routing_decisions (job_id)")
    elif table == "routing_decisions":
        op.execute(
            "ALTER TABLE routing_decisions ADD CONSTRAINT uq_routing_decisions_job_id"
            " UNIQUE (job_id)"
        )
    for name, definition in foreign_keys:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    for definition in triggers:
        op.execute(definition)


def upgrade() -> None:
    op.execute(f"LOCK TABLE {', '.join(PARTITIONED)} IN ACCESS EXCLUSIVE MODE")
    op.execute(f"DROP VIEW {DEPENDENT_VIEW}")
    for table in PARTITIONED:
        _rebuild(table, partitioned=True)
    op.execute(_migration("0016_rollups_folded_off_the_commit_path.py").TABLES[-1])
    for sql in FUNCTIONS:
        op.execute(sql)
    op.execute("SELECT tierroute_partitions_ensure()")


def downgrade() -> None:
    op.execute(f"LOCK TABLE {', '.join(PARTITIONED)} IN ACCESS EXCLUSIVE MODE")
    op.execute(f"DROP VIEW {DEPENDENT_VIEW}")
    for table in PARTITIONED:
        _rebuild(table, partitioned=False)
    op.execute(_migration("0016_rollups_folded_off_the_commit_path.py").TABLES[-1])
    for signature in (
        "tierroute_partitions_drop_empty(timestamptz)",
        "tierroute_partitions_ensure(int)",
        "tierroute_partition_default_times(text)",
        "tierroute_month_partition(text, timestamp)",
    ):
        op.execute(f"DROP FUNCTION {signature}")
