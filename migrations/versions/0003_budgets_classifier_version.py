"""Daily budgets per key, budget decisions, classifier versions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

- api_keys.daily_budget_usd: the most a key may spend per UTC day (NULL: no
  limit of its own; the global TIERROUTE_DAILY_BUDGET_USD still applies).
- routing_decisions.budget_action: what the budget check did to the job
  ('downgraded' or 'rejected'; NULL when it fit), with the reason in
  budget_reason, so a changed tier is never a mystery.
- routing_decisions.classifier_version: which trained artifact (or prompt
  revision) of the classifier made the decision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("daily_budget_usd", sa.Numeric(18, 10), nullable=True))
    op.add_column("routing_decisions", sa.Column("budget_action", sa.String(20), nullable=True))
    op.add_column("routing_decisions", sa.Column("budget_reason", sa.Text(), nullable=True))
    op.add_column(
        "routing_decisions", sa.Column("classifier_version", sa.String(60), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("routing_decisions", "classifier_version")
    op.drop_column("routing_decisions", "budget_reason")
    op.drop_column("routing_decisions", "budget_action")
    op.drop_column("api_keys", "daily_budget_usd")
