"""Indexes on batches by recency, overall and per key (issue 16)

Revision ID: 0018
Revises: 0017

The dashboard's top-batches panel reads the newest batches (all keys, or one key's)
and then each one's rollup rows by key, so its cost stays flat however many batches
there are; these indexes make "the newest" an index scan rather than a scan and sort
of every batch.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_batches_created_at", "batches", ["created_at"])
    op.create_index("ix_batches_api_key_id_created_at", "batches", ["api_key_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_batches_api_key_id_created_at", table_name="batches")
    op.drop_index("ix_batches_created_at", table_name="batches")
