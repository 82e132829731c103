"""Shadow judging through Message Batches for batch_api jobs (issue 13)

Revision ID: 0011
Revises: 0010

- provider_batches.purpose: 'complete' (the jobs' answers, as before), or 'shadow'
  and 'judge' (shadow judging's calls, whose results go to shadow_verdicts).
- shadow_verdicts: batch_stage (the request a batch-mode judgement waits for),
  provider_batch_id (the Message Batch holding it), shadow_text (the shadow answer,
  kept for the judge's request), budget_hold_id, create_sent_at (a create that went
  unanswered), and a partial index on the requests still to submit.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "provider_batches",
        sa.Column("purpose", sa.String(length=20), server_default="complete", nullable=False),
    )
    op.add_column("shadow_verdicts", sa.Column("batch_stage", sa.String(length=10)))
    op.add_column("shadow_verdicts", sa.Column("provider_batch_id", sa.BigInteger()))
    op.add_column("shadow_verdicts", sa.Column("shadow_text", sa.Text()))
    op.add_column("shadow_verdicts", sa.Column("budget_hold_id", sa.BigInteger()))
    op.add_column("shadow_verdicts", sa.Column("create_sent_at", sa.DateTime(timezone=True)))
    op.create_foreign_key(
        op.f("fk_shadow_verdicts_provider_batch_id_provider_batches"),
        "shadow_verdicts",
        "provider_batches",
        ["provider_batch_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(
        "ix_shadow_verdicts_batch_waiting",
        "shadow_verdicts",
        ["batch_stage"],
        postgresql_where=sa.text(
            "batch_stage IS NOT NULL AND provider_batch_id IS NULL AND as_good IS NULL"
        ),
    )


def downgrade() -> None:
    op.drop_index("ix_shadow_verdicts_batch_waiting", table_name="shadow_verdicts")
    op.drop_constraint(
        op.f("fk_shadow_verdicts_provider_batch_id_provider_batches"),
        "shadow_verdicts",
        type_="foreignkey",
    )
    for column in ("create_sent_at", "budget_hold_id", "shadow_text", "provider_batch_id"):
        op.drop_column("shadow_verdicts", column)
    op.drop_column("shadow_verdicts", "batch_stage")
    op.drop_column("provider_batches", "purpose")
