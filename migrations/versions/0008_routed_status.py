"""An explicit 'routed' job status, and only the state machine's statuses in jobs.status

Revision ID: 0008
Revises: 0007

- 'routed': a job whose tier is chosen and that waits for its tier worker (or, in
  batch_api mode, for its Message Batch). It was written `status = 'classifying'
  AND tier IS NOT NULL`; those rows become 'routed' (tierroute/domain/status.py).
- ck_jobs_status_known: jobs.status holds one of the state machine's statuses.
- ix_jobs_batch_api_waiting: the batch poller's partial index also holds routed
  batch-mode jobs, which are the ones it waits for.

Run it with the workers stopped: a worker of the previous release would still
write a routed job as 'classifying' with its tier. Such a job is not lost (the
stranded-job watch finds a classifying job whose lease ran out, and the classify
step routes it again, keeping its tier), but it waits for the stale time.
The downgrade writes routed jobs back as 'classifying' with their tier.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = (
    "'queued', 'classifying', 'routed', 'running', 'succeeded', 'failed', 'cancelled', 'dead'"
)
WAITING = "batch_api AND status IN ('queued', 'classifying', 'routed')"
OLD_WAITING = "batch_api AND status IN ('queued', 'classifying')"


def _batch_api_waiting(where: str) -> None:
    op.drop_index("ix_jobs_batch_api_waiting", table_name="jobs")
    op.create_index(
        "ix_jobs_batch_api_waiting", "jobs", ["batch_id"], postgresql_where=sa.text(where)
    )


def upgrade() -> None:
    op.execute(
        "UPDATE jobs SET status = 'routed' WHERE status = 'classifying' AND tier IS NOT NULL"
    )
    op.create_check_constraint(op.f("ck_jobs_status_known"), "jobs", f"status IN ({STATUSES})")
    _batch_api_waiting(WAITING)


def downgrade() -> None:
    _batch_api_waiting(OLD_WAITING)
    op.drop_constraint(op.f("ck_jobs_status_known"), "jobs", type_="check")
    op.execute("UPDATE jobs SET status = 'classifying' WHERE status = 'routed'")
