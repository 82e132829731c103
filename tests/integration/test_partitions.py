"""Migration 0017: model_calls and routing_decisions are partitioned by month.

Rows land in their UTC month's partition; a row no month covers goes to the default
partition and moves to its own month when the partition is made; prune drops a month
it has emptied and keeps one that still holds a row; the conversion keeps every row
(down to 0016's plain tables and up again)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import Services
from tests.integration.test_prune import _job  # a job at a time, with a decision and a call
from tierroute.config import get_settings
from tierroute.store.engine import init_engine, session_scope
from tierroute.store.migrate import downgrade, upgrade
from tierroute.store.retention import prune

pytestmark = pytest.mark.integration

# Months long past, so no other test's rows share their partitions.
EMPTIED, KEPT = datetime(2019, 5, 10, tzinfo=UTC), datetime(2019, 6, 10, tzinfo=UTC)


def _url(services: Services) -> str:
    return services.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _partition_of(conn: psycopg.Connection[Any], table: str, job: uuid.UUID) -> str:
    row = conn.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE job_id = %s", (job,))
    found = row.fetchone()
    assert found is not None
    return str(found[0])


def _exists(conn: psycopg.Connection[Any], relation: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)).fetchone()
    return bool(row and row[0])


@pytest.fixture
def conn(clean_db: Services) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(_url(clean_db), autocommit=True) as connection:
        yield connection
        for table in ("model_calls", "routing_decisions"):
            for month in ("y2019m05", "y2019m06"):
                connection.execute(f"DROP TABLE IF EXISTS {table}_{month}")


def test_rows_land_in_their_month_and_months_ahead_exist(conn: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    job = _job(conn, now, "succeeded")
    month = f"y{now:%Y}m{now:%m}"
    assert _partition_of(conn, "model_calls", job) == f"model_calls_{month}"
    assert _partition_of(conn, "routing_decisions", job) == f"routing_decisions_{month}"
    conn.execute("SELECT tierroute_partitions_ensure()")
    in_two_months = (now.replace(day=1) + timedelta(days=62)).replace(day=1)
    assert _exists(conn, f"model_calls_y{in_two_months:%Y}m{in_two_months:%m}")


def test_a_month_without_a_partition_goes_to_default_then_moves(
    conn: psycopg.Connection[Any],
) -> None:
    job = _job(conn, EMPTIED, "succeeded")
    assert _partition_of(conn, "model_calls", job) == "model_calls_default"
    pending = conn.execute("SELECT count(*) FROM rollup_pending").fetchone()
    created = conn.execute("SELECT tierroute_partitions_ensure()").fetchone()
    assert created is not None and created[0] >= 2
    assert _partition_of(conn, "model_calls", job) == "model_calls_y2019m05"
    assert _partition_of(conn, "routing_decisions", job) == "routing_decisions_y2019m05"
    assert conn.execute("SELECT count(*) FROM model_calls_default").fetchone() == (0,)
    # The move is not a new call: nothing more for the rollups to fold.
    assert conn.execute("SELECT count(*) FROM rollup_pending").fetchone() == pending


def test_prune_drops_the_month_it_emptied_and_keeps_a_month_with_rows(
    conn: psycopg.Connection[Any], clean_db: Services
) -> None:
    emptied = _job(conn, EMPTIED, "succeeded")
    kept = _job(conn, KEPT, status="running")  # in flight: prune leaves it
    conn.execute("SELECT tierroute_partitions_ensure()")
    init_engine(get_settings())

    done = prune(session_scope, datetime(2020, 1, 1, tzinfo=UTC))

    assert sorted(done.partitions_dropped) == [
        "model_calls_y2019m05",
        "routing_decisions_y2019m05",
    ]
    assert not _exists(conn, "model_calls_y2019m05")
    assert _partition_of(conn, "model_calls", kept) == "model_calls_y2019m06"
    gone = conn.execute("SELECT count(*) FROM jobs WHERE id = %s", (emptied,)).fetchone()
    assert gone == (0,)
    now = datetime.now(UTC)
    assert _exists(conn, f"model_calls_y{now:%Y}m{now:%m}")  # this month is never dropped


def test_conversion_keeps_every_row_down_and_up(services: Services) -> None:
    admin_url = _url(services).rsplit("/", 1)[0] + "/postgres"
    name = f"tierroute_part_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    alembic_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        upgrade(alembic_url)
        with psycopg.connect(url, autocommit=True) as conn:
            jobs = [_job(conn, EMPTIED, "succeeded"), _job(conn, datetime.now(UTC), "succeeded")]
        downgrade(alembic_url, "0016")
        with psycopg.connect(url, autocommit=True) as conn:
            kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'model_calls'")
            assert kind.fetchone() == ("r",)
            assert conn.execute("SELECT count(*) FROM model_calls").fetchone() == (2,)
            with pytest.raises(psycopg.errors.UniqueViolation):  # 0016's unique job_id is back
                conn.execute(
                    "INSERT INTO routing_decisions (job_id, tier, confidence, reasoning,"
                    " classifier, cost_ratio) VALUES (%s, 'haiku', 1, 'r', 'local', 1)",
                    (jobs[0],),
                )
        upgrade(alembic_url)
        with psycopg.connect(url, autocommit=True) as conn:
            assert _partition_of(conn, "model_calls", jobs[0]) == "model_calls_y2019m05"
            assert conn.execute("SELECT count(*) FROM routing_decisions").fetchone() == (2,)
            # New ids continue the sequence the old table used.
            new_job = _job(conn, datetime.now(UTC), "succeeded")
            ids = conn.execute("SELECT id FROM model_calls ORDER BY id").fetchall()
            assert _partition_of(conn, "model_calls", new_job).startswith("model_calls_y")
            assert len({i for (i,) in ids}) == 3
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_busy_table_keeps_its_empty_month_for_the_next_prune(
    conn: psycopg.Connection[Any], clean_db: Services
) -> None:
    _job(conn, EMPTIED, "succeeded")
    conn.execute("SELECT tierroute_partitions_ensure()")
    conn.execute("DELETE FROM jobs")  # the month's rows go (cascade); its partition stays
    with psycopg.connect(_url(clean_db)) as reader:  # an open read of model_calls
        reader.execute("SELECT count(*) FROM model_calls").fetchone()
        row = conn.execute("SELECT tierroute_partitions_drop_empty('2020-01-01')").fetchone()
        assert row is not None
        assert "model_calls_y2019m05" not in row[0]  # waited 0.5 s, then left it
        assert _exists(conn, "model_calls_y2019m05")
    row = conn.execute("SELECT tierroute_partitions_drop_empty('2020-01-01')").fetchone()
    assert row is not None and "model_calls_y2019m05" in row[0]


def test_a_row_without_a_month_stays_in_default_and_blocks_no_partition(
    conn: psycopg.Connection[Any],
) -> None:
    job = _job(conn, EMPTIED, "succeeded")
    conn.execute(  # a timestamp no month holds, written by hand in SQL
        "INSERT INTO model_calls (purpose, model, tier, input_tokens, output_tokens,"
        " cache_creation_input_tokens, cache_read_input_tokens, cost_usd, cost_if_opus_usd,"
        " latency_ms, simulated, created_at) VALUES"
        " ('classify', 'claude-haiku-4-5', 'haiku', 5, 5, 0, 0, 0.01, 0, 100, true, 'infinity')"
    )
    conn.execute("SELECT tierroute_partitions_ensure()")
    assert _partition_of(conn, "model_calls", job) == "model_calls_y2019m05"
    left = conn.execute("SELECT count(*) FROM model_calls_default WHERE created_at = 'infinity'")
    assert left.fetchone() == (1,)
    conn.execute("DELETE FROM model_calls WHERE created_at = 'infinity'")
