"""lz4 TOAST compression for the text columns, where Postgres has it (issue 16)

Revision ID: 0012
Revises: 0011

Prompts, answers and request parameters are most of a job's bytes. lz4 compresses
and decompresses several times faster than the default pglz at a similar ratio, so
storing and reading answers costs less CPU. Only the column's setting changes (no
table rewrite, a brief lock per table): values written from now on use lz4, older
ones stay as they are until rewritten. A server built without lz4 keeps pglz.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "jobs": ["prompt", "system", "result_text", "error", "metadata", "request_params"],
    "routing_decisions": ["reasoning", "fallback_reason", "budget_reason"],
    "ratings": ["comment"],
    "shadow_verdicts": ["reasoning"],
}


def _set(method: str) -> None:
    statements = " ".join(
        f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method};"
        for table, columns in COLUMNS.items()
        for column in columns
    )
    # Only where the server was built with lz4 (pg_settings lists it as a choice).
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression'
                          AND 'lz4' = ANY(enumvals)) THEN
                {statements}
            END IF;
        END $$
        """
    )


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("pglz")
