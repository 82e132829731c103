"""Anthropic Messages parameters on jobs (issue 17)

Revision ID: 0010
Revises: 0009

- jobs.request_params (JSONB, nullable): what a request carries beyond prompt and
  system (turns, sampling, tools, structured output, custom_id, its conversation),
  and the rules that fitted it to the routed model.
- ix_jobs_conversation: the earlier turns of a sticky conversation, by key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("request_params", JSONB(), nullable=True))
    op.execute(
        "CREATE INDEX ix_jobs_conversation ON jobs"
        " (api_key_id, (request_params->>'conversation'))"
        " WHERE request_params ? 'conversation'"
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_conversation", table_name="jobs")
    op.drop_column("jobs", "request_params")
