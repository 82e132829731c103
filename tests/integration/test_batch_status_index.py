"""Migration 0014: a batch's counts by status and by tier are index-only scans."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.conftest import Services

pytestmark = pytest.mark.integration

COUNTS = [
    "SELECT status, count(*) FROM jobs WHERE batch_id = %(b)s GROUP BY status",
    "SELECT tier, count(*) FROM jobs WHERE batch_id = %(b)s AND tier IS NOT NULL GROUP BY tier",
]


def test_batch_counts_read_only_the_index(clean_db: Services) -> None:
    url = clean_db.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    batches = [uuid.uuid4() for _ in range(20)]
    with psycopg.connect(url, autocommit=True) as conn:
        for batch in batches:
            conn.execute("INSERT INTO batches (id, job_count) VALUES (%s, 2000)", (batch,))
        conn.execute(
            "INSERT INTO jobs (id, batch_id, status, prompt, max_tokens, tier)"
            " SELECT gen_random_uuid(), (%s::uuid[])[1 + n %% 20], 'succeeded', 'p', 64,"
            "        (ARRAY['haiku', 'sonnet', 'opus'])[1 + n %% 3]"
            "   FROM generate_series(0, 39999) n",
            (batches,),
        )
        conn.execute("VACUUM ANALYZE jobs")
        for sql in COUNTS:
            rows = conn.execute("EXPLAIN " + sql, {"b": batches[0]}).fetchall()
            plan = "\n".join(row[0] for row in rows)
            assert "Index Only Scan using ix_jobs_batch_id_status_tier" in plan, plan
