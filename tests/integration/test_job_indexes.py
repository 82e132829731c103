"""Migration 0007: the per-key and per-time indexes on jobs exist, go away on
downgrade, and the report's per-key query and the result stream's page use them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import Services
from tierroute.store.migrate import downgrade, upgrade
from tierroute.store.results import AFTER, FINISHED, JOBS

pytestmark = pytest.mark.integration

NEW_INDEXES = {
    "ix_jobs_api_key_id_created_at",
    "ix_jobs_created_at",
    "ix_jobs_batch_id_created_at_id",
}
KEYS, BATCHES, JOBS_PER_BATCH = 5, 40, 2_500  # 100k jobs: enough for the planner to care
# A per-key read of jobs (the report itself reads the rollups since migration 0009).
PER_KEY = "SELECT count(*) FROM jobs j WHERE j.status = 'succeeded' AND j.api_key_id = :key"

FILL = [
    """
    INSERT INTO api_keys (id, name, prefix, key_hash)
    SELECT ('00000000-0000-0000-0000-' || lpad(k::text, 12, '0'))::uuid,
           'k' || k, 'trk_' || k, md5(k::text)
      FROM generate_series(1, %(keys)s) k
    """,
    """
    INSERT INTO batches (id, api_key_id, job_count, created_at)
    SELECT ('00000000-0000-0000-0001-' || lpad(b::text, 12, '0'))::uuid,
           ('00000000-0000-0000-0000-' || lpad((1 + b %% %(keys)s)::text, 12, '0'))::uuid,
           %(per_batch)s, now() - make_interval(days => b)
      FROM generate_series(1, %(batches)s) b
    """,
    """
    INSERT INTO jobs (id, batch_id, api_key_id, status, prompt, max_tokens, tier, created_at)
    SELECT gen_random_uuid(), b.id, b.api_key_id,
           CASE WHEN n %% 10 = 0 THEN 'queued' ELSE 'succeeded' END,
           'prompt ' || n, 256, 'haiku', b.created_at
      FROM batches b, generate_series(1, %(per_batch)s) n
    """,
    "ANALYZE api_keys",
    "ANALYZE batches",
    "ANALYZE jobs",
]


@pytest.fixture
def database(services: Services) -> Iterator[tuple[str, str]]:
    """A private database (SQLAlchemy URL, plain URL), migrated to 0006."""
    base = services.database_url.replace("+psycopg", "").rsplit("/", 1)[0]
    name = f"tierroute_idx_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    plain = f"{base}/{name}"
    try:
        url = plain.replace("postgresql://", "postgresql+psycopg://", 1)
        upgrade(url, "0006")
        yield url, plain
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def job_indexes(plain_url: str) -> set[str]:
    with psycopg.connect(plain_url) as conn:
        rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'jobs'")
        return {name for (name,) in rows}


def plan(conn: psycopg.Connection, sql: str, params: dict[str, object]) -> str:
    rows = conn.execute(f"EXPLAIN {sql}", params).fetchall()  # type: ignore[arg-type]
    return "\n".join(row[0] for row in rows)


def test_0007_adds_the_indexes_and_takes_them_away(database: tuple[str, str]) -> None:
    url, plain = database
    assert not NEW_INDEXES & job_indexes(plain)
    upgrade(url, "0007")
    assert job_indexes(plain) >= NEW_INDEXES
    downgrade(url, "0006")
    assert not NEW_INDEXES & job_indexes(plain)
    upgrade(url)
    assert job_indexes(plain) >= NEW_INDEXES


def test_per_key_report_and_result_pages_use_the_indexes(database: tuple[str, str]) -> None:
    url, plain = database
    upgrade(url)
    with psycopg.connect(plain, autocommit=True) as conn:
        sizes = {"keys": KEYS, "batches": BATCHES, "per_batch": JOBS_PER_BATCH}
        for statement in FILL:
            conn.execute(statement, sizes if "%(" in statement else None)  # type: ignore[arg-type]
        # A key with no jobs used to wait for a scan of all of them.
        unused_key = uuid.uuid4()
        report = plan(conn, PER_KEY.replace(":key", "%(key)s"), {"key": unused_key})
        assert "ix_jobs_api_key_id_created_at" in report, report

        (batch_id, created_at, job_id) = conn.execute(
            "SELECT batch_id, created_at, id FROM jobs ORDER BY batch_id, created_at, id "
            "OFFSET 100 LIMIT 1"
        ).fetchone() or (None, None, None)
        page = plan(
            conn,
            JOBS.format(after=AFTER),
            {
                "batch_id": batch_id,
                "finished": FINISHED,
                "after_created_at": created_at,
                "after_id": job_id,
                "limit": 100,
            },
        )
        assert "ix_jobs_batch_id_created_at_id" in page, page
        assert "Sort" not in page, page  # pages come in index order, not sorted each time
