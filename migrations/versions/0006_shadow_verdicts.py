"""Shadow judging: a judge's verdict per shadow-judged job.

Revision ID: 0006
Revises: 0005

- shadow_verdicts: one row per job answered again on the neighbouring tier and
  judged; as_good says whether the cheaper tier's answer was as good as the dearer
  one's (NULL while the calls are in flight, when reserved_usd holds their worst case).
  The calls themselves are model_calls rows with purpose 'shadow' and 'judge'.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shadow_verdicts",
        sa.Column("job_id", postgresql.UUID(), nullable=False),
        sa.Column("cheaper_tier", sa.String(length=20), nullable=False),
        sa.Column("dearer_tier", sa.String(length=20), nullable=False),
        sa.Column("judge_model", sa.String(length=100), nullable=False),
        sa.Column("as_good", sa.Boolean(), nullable=True),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column("reserved_usd", sa.Numeric(18, 10), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("judged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_shadow_verdicts_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_shadow_verdicts")),
    )


def downgrade() -> None:
    op.drop_table("shadow_verdicts")
