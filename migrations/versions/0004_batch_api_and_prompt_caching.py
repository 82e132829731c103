"""Batch mode (Message Batches) and prompt caching

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

- batches.mode: 'live' (the complete task answers each job) or 'batch_api'
  (jobs go to Anthropic's Message Batches at half price).
- provider_batches: one row per Message Batch: the tierroute batch and tier it
  holds, Anthropic's id, processing_status and request_counts, timestamps.
- jobs.batch_api, jobs.provider_batch_id: a batch-mode job, and the Message
  Batch that holds (or last held) it. A partial index finds the batch-mode jobs
  not yet handed to a Message Batch.
- model_calls.batch_api: the call was answered in a Message Batch (cost_usd and
  cost_if_opus_usd are at the 50 % batch rate). model_calls.cache_savings_usd:
  what prompt caching saved on the call (reads at the input price minus what
  they cost, minus the cache-write premium).
- Views: cost_by_tier_day and savings gain columns at the end (cache and batch
  savings); existing columns keep their names and meaning.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The Batch API bills half the list price, so the same calls live would have cost
# cost_usd / 0.5: the saving is cost_usd * (1 - 0.5) / 0.5 (tierroute.domain.cost.BATCH_RATE).
BATCH_SAVED = "coalesce(sum(cost_usd * (1 - 0.5) / 0.5) FILTER (WHERE batch_api), 0)"

VIEWS = {
    "cost_by_tier_day": f"""
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
               tier,
               purpose,
               count(*) AS calls,
               sum(input_tokens) AS input_tokens,
               sum(output_tokens) AS output_tokens,
               sum(cache_creation_input_tokens) AS cache_creation_input_tokens,
               sum(cache_read_input_tokens) AS cache_read_input_tokens,
               sum(cost_usd) AS cost_usd,
               sum(cost_if_opus_usd) AS cost_if_opus_usd,
               count(*) FILTER (WHERE batch_api) AS batch_api_calls,
               sum(cache_savings_usd) AS cache_savings_usd,
               {BATCH_SAVED} AS batch_api_savings_usd
          FROM model_calls
         GROUP BY 1, tier, purpose
    """,
    "savings": f"""
        SELECT count(DISTINCT job_id) FILTER (WHERE purpose = 'complete') AS jobs,
               coalesce(sum(cost_usd) FILTER (WHERE purpose = 'complete'), 0)
                   AS completion_cost_usd,
               coalesce(sum(cost_usd) FILTER (WHERE purpose = 'classify'), 0)
                   AS classifier_cost_usd,
               coalesce(sum(cost_usd), 0) AS total_cost_usd,
               coalesce(sum(cost_if_opus_usd), 0) AS cost_if_all_opus_usd,
               coalesce(sum(cost_if_opus_usd), 0) - coalesce(sum(cost_usd), 0) AS saved_usd,
               CASE WHEN coalesce(sum(cost_if_opus_usd), 0) > 0
                    THEN round(100 * (sum(cost_if_opus_usd) - sum(cost_usd))
                               / sum(cost_if_opus_usd), 2)
               END AS saved_pct,
               coalesce(sum(cache_read_input_tokens), 0) AS cache_read_input_tokens,
               coalesce(sum(cache_creation_input_tokens), 0) AS cache_creation_input_tokens,
               coalesce(sum(cache_savings_usd), 0) AS cache_savings_usd,
               count(*) FILTER (WHERE batch_api) AS batch_api_calls,
               {BATCH_SAVED} AS batch_api_savings_usd
          FROM model_calls
    """,
}

# The 0001 definitions, restored on downgrade (CREATE OR REPLACE cannot drop columns).
OLD_VIEWS = {
    "cost_by_tier_day": """
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
               tier,
               purpose,
               count(*) AS calls,
               sum(input_tokens) AS input_tokens,
               sum(output_tokens) AS output_tokens,
               sum(cache_creation_input_tokens) AS cache_creation_input_tokens,
               sum(cache_read_input_tokens) AS cache_read_input_tokens,
               sum(cost_usd) AS cost_usd,
               sum(cost_if_opus_usd) AS cost_if_opus_usd
          FROM model_calls
         GROUP BY 1, tier, purpose
    """,
    "savings": """
        SELECT count(DISTINCT job_id) FILTER (WHERE purpose = 'complete') AS jobs,
               coalesce(sum(cost_usd) FILTER (WHERE purpose = 'complete'), 0)
                   AS completion_cost_usd,
               coalesce(sum(cost_usd) FILTER (WHERE purpose = 'classify'), 0)
                   AS classifier_cost_usd,
               coalesce(sum(cost_usd), 0) AS total_cost_usd,
               coalesce(sum(cost_if_opus_usd), 0) AS cost_if_all_opus_usd,
               coalesce(sum(cost_if_opus_usd), 0) - coalesce(sum(cost_usd), 0) AS saved_usd,
               CASE WHEN coalesce(sum(cost_if_opus_usd), 0) > 0
                    THEN round(100 * (sum(cost_if_opus_usd) - sum(cost_usd))
                               / sum(cost_if_opus_usd), 2)
               END AS saved_pct
          FROM model_calls
    """,
}


def upgrade() -> None:
    op.add_column(
        "batches",
        sa.Column("mode", sa.String(length=20), server_default="live", nullable=False),
    )
    op.create_table(
        "provider_batches",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.UUID(), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("anthropic_batch_id", sa.String(length=200), nullable=False),
        sa.Column("processing_status", sa.String(length=20), nullable=False),
        sa.Column("request_count", sa.Integer(), nullable=False),
        sa.Column("processing", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("errored", sa.Integer(), nullable=False),
        sa.Column("canceled", sa.Integer(), nullable=False),
        sa.Column("expired", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("results_processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_provider_batches_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_batches")),
        sa.UniqueConstraint(
            "anthropic_batch_id", name=op.f("uq_provider_batches_anthropic_batch_id")
        ),
    )
    op.create_index(
        op.f("ix_provider_batches_batch_id"), "provider_batches", ["batch_id"], unique=False
    )
    # The poller's scan: Message Batches whose results are not mapped back yet.
    op.create_index(
        "ix_provider_batches_unprocessed",
        "provider_batches",
        ["id"],
        postgresql_where=sa.text("results_processed_at IS NULL"),
    )
    op.add_column(
        "jobs", sa.Column("batch_api", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column("jobs", sa.Column("provider_batch_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_jobs_provider_batch_id_provider_batches"),
        "jobs",
        "provider_batches",
        ["provider_batch_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(
        "ix_jobs_batch_api_waiting",
        "jobs",
        ["batch_id"],
        postgresql_where=sa.text("batch_api AND status IN ('queued', 'classifying')"),
    )
    op.add_column(
        "model_calls",
        sa.Column("batch_api", sa.Boolean(), server_default="false", nullable=False),
    )
    op.add_column(
        "model_calls",
        sa.Column(
            "cache_savings_usd",
            sa.Numeric(precision=18, scale=10),
            server_default="0",
            nullable=False,
        ),
    )
    for name, sql in VIEWS.items():
        op.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")


def downgrade() -> None:
    for name, sql in OLD_VIEWS.items():
        op.execute(f"DROP VIEW IF EXISTS {name}")
        op.execute(f"CREATE VIEW {name} AS {sql}")
    op.drop_column("model_calls", "cache_savings_usd")
    op.drop_column("model_calls", "batch_api")
    op.drop_index("ix_jobs_batch_api_waiting", table_name="jobs")
    op.drop_constraint(
        op.f("fk_jobs_provider_batch_id_provider_batches"), "jobs", type_="foreignkey"
    )
    op.drop_column("jobs", "provider_batch_id")
    op.drop_column("jobs", "batch_api")
    op.drop_index("ix_provider_batches_unprocessed", table_name="provider_batches")
    op.drop_index(op.f("ix_provider_batches_batch_id"), table_name="provider_batches")
    op.drop_table("provider_batches")
    op.drop_column("batches", "mode")
