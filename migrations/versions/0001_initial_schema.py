"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Tables for jobs, batches, routing decisions, model calls, ratings and API keys,
and the analyst views cost_by_tier_day, savings and tier_quality.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Views are plain SQL so analysts can read them in psql (\d+ savings) as we wrote them.
# Savings: cost_if_opus_usd is zero on classifier calls (an all-Opus setup makes no
# routing call), so sum(cost_if_opus_usd) - sum(cost_usd) counts the router's own cost.
VIEWS = {
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
    "tier_quality": """
        SELECT j.tier,
               count(*) AS jobs,
               count(r.job_id) AS rated_jobs,
               coalesce(sum(r.ratings), 0) AS ratings,
               avg(r.satisfaction) AS avg_satisfaction,
               coalesce(sum(c.cost_usd), 0) AS cost_usd,
               coalesce(sum(c.cost_usd), 0) / count(*) AS cost_per_job_usd
          FROM jobs j
          LEFT JOIN (SELECT job_id, count(*) AS ratings, avg(satisfaction) AS satisfaction
                       FROM ratings GROUP BY job_id) r ON r.job_id = j.id
          LEFT JOIN (SELECT job_id, sum(cost_usd) AS cost_usd
                       FROM model_calls WHERE purpose = 'complete' GROUP BY job_id) c
                 ON c.job_id = j.id
         WHERE j.status = 'succeeded'
         GROUP BY j.tier
    """,
}


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("api_key_id", sa.UUID(), nullable=True),
        sa.Column("job_count", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_batches_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("batch_id", sa.UUID(), nullable=True),
        sa.Column("api_key_id", sa.UUID(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("max_tokens", sa.Integer(), nullable=False),
        sa.Column("force_tier", sa.String(length=20), nullable=True),
        sa.Column("thinking_override", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("tier", sa.String(length=20), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("result_text", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("classified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("max_tokens > 0", name=op.f("ck_jobs_max_tokens_positive")),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_jobs_api_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_jobs_batch_id_batches"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_batch_id_status", "jobs", ["batch_id", "status"], unique=False)
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"], unique=False)
    op.create_index(
        "uq_jobs_api_key_id_idempotency_key",
        "jobs",
        ["api_key_id", "idempotency_key"],
        unique=True,
        postgresql_nulls_not_distinct=True,
        postgresql_where="idempotency_key IS NOT NULL",
    )
    op.create_table(
        "model_calls",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=True),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_creation_input_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_read_input_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=18, scale=10), nullable=False),
        sa.Column("cost_if_opus_usd", sa.Numeric(precision=18, scale=10), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("stop_reason", sa.String(length=40), nullable=True),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_model_calls_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_calls")),
    )
    op.create_index(
        "ix_model_calls_created_at_tier", "model_calls", ["created_at", "tier"], unique=False
    )
    op.create_index(op.f("ix_model_calls_job_id"), "model_calls", ["job_id"], unique=False)
    op.create_table(
        "ratings",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("satisfaction", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "satisfaction >= 0 AND satisfaction <= 1", name=op.f("ck_ratings_satisfaction_range")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_ratings_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ratings")),
    )
    op.create_index(op.f("ix_ratings_job_id"), "ratings", ["job_id"], unique=False)
    op.create_table(
        "routing_decisions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("proposed_tier", sa.String(length=20), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reasoning", sa.Text(), nullable=False),
        sa.Column("classifier", sa.String(length=40), nullable=False),
        sa.Column("cost_ratio", sa.Float(), nullable=False),
        sa.Column("fallback_reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_routing_decisions_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_decisions")),
        sa.UniqueConstraint("job_id", name=op.f("uq_routing_decisions_job_id")),
    )
    for name, sql in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {sql}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table("routing_decisions")
    op.drop_index(op.f("ix_ratings_job_id"), table_name="ratings")
    op.drop_table("ratings")
    op.drop_index(op.f("ix_model_calls_job_id"), table_name="model_calls")
    op.drop_index("ix_model_calls_created_at_tier", table_name="model_calls")
    op.drop_table("model_calls")
    op.drop_index(
        "uq_jobs_api_key_id_idempotency_key",
        table_name="jobs",
        postgresql_nulls_not_distinct=True,
        postgresql_where="idempotency_key IS NOT NULL",
    )
    op.drop_index(op.f("ix_jobs_status"), table_name="jobs")
    op.drop_index("ix_jobs_batch_id_status", table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("batches")
    op.drop_table("api_keys")
