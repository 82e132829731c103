"""Feeder stamp, task leases and cancelled jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

- jobs.enqueued_at: set when the job's classify message was sent. The feeder
  sends the queued jobs that do not have it yet (a transactional outbox), so a
  committed job is never lost between COPY and the broker.
- jobs.lease_expires_at: while a task works on a job it holds a lease; a second
  delivery of the same message skips the job until the lease has expired.
- 'cancelled' is a new status value (the column is a plain string).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    # The feeder's scan: only the few rows still waiting for a message are indexed.
    op.create_index(
        "ix_jobs_created_at_unsent",
        "jobs",
        ["created_at"],
        postgresql_where=sa.text("status = 'queued' AND enqueued_at IS NULL"),
    )
    # Jobs that existed before the feeder were enqueued by the API.
    op.execute("UPDATE jobs SET enqueued_at = created_at")


def downgrade() -> None:
    op.drop_index("ix_jobs_created_at_unsent", table_name="jobs")
    op.drop_column("jobs", "lease_expires_at")
    op.drop_column("jobs", "enqueued_at")
