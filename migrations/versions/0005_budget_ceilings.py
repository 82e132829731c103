"""Budgets that are ceilings: reservations per job, holds, and keyed classifier calls

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

- jobs.reserved_usd: the most the job can still bill (its classifier call and
  cheapest tier before routing, then its completion on the routed tier), held
  against its key's and the global daily budget while the job is in flight.
- model_calls.api_key_id: the key a call with no job is billed to (a /v1/route
  classifier call), so budgets and per-key reports see it.
- budget_holds: the worst case of a call in progress that has no job (/v1/route),
  until it is billed or the hold expires.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("reserved_usd", sa.Numeric(18, 10), nullable=True))
    op.add_column("model_calls", sa.Column("api_key_id", postgresql.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_model_calls_api_key_id_api_keys"),
        "model_calls",
        "api_keys",
        ["api_key_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(
        "ix_model_calls_api_key_id_created_at",
        "model_calls",
        ["api_key_id", "created_at"],
        postgresql_where=sa.text("api_key_id IS NOT NULL"),
    )
    op.create_table(
        "budget_holds",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("api_key_id", postgresql.UUID(), nullable=True),
        sa.Column("usd", sa.Numeric(18, 10), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_budget_holds_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_holds")),
    )


def downgrade() -> None:
    op.drop_table("budget_holds")
    op.drop_index("ix_model_calls_api_key_id_created_at", table_name="model_calls")
    op.drop_constraint(
        op.f("fk_model_calls_api_key_id_api_keys"), "model_calls", type_="foreignkey"
    )
    op.drop_column("model_calls", "api_key_id")
    op.drop_column("jobs", "reserved_usd")
