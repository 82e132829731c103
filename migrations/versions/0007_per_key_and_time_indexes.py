"""Indexes for the per-key and per-time reads of jobs (issue 16).

Revision ID: 0007
Revises: 0006

- ix_jobs_api_key_id_created_at: the report's and dashboard's per-key queries
  (`WHERE j.api_key_id = :key`) scanned all of jobs; a key with no jobs waited
  seconds at 5M rows.
- ix_jobs_created_at: reads by time (a day's jobs, and retention by age).
- ix_jobs_batch_id_created_at_id: the batch result stream's keyset page
  (tierroute/store/results.py) reads a batch in (created_at, id) order, from the
  page's last row on, instead of sorting every finished job of the batch each page.

The stale/stranded watches (tierroute/pipeline/recovery.py) select by status, which
ix_jobs_status already serves; no partial index is added for them, since each
index on a column a job's every step changes costs each of those updates.

Built CONCURRENTLY, outside the migration's transaction (Alembic's autocommit
block), so a live table keeps taking writes while they build. A build that fails
leaves an invalid index: drop it and run the migration again.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_jobs_api_key_id_created_at": ["api_key_id", "created_at"],
    "ix_jobs_created_at": ["created_at"],
    "ix_jobs_batch_id_created_at_id": ["batch_id", "created_at", "id"],
}


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, columns in INDEXES.items():
            op.create_index(name, "jobs", columns, postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name in reversed(INDEXES):
            op.drop_index(name, table_name="jobs", postgresql_concurrently=True)
