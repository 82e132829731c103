"""Rollups: a succeeded job's completion cost and ratings counted once (issue 16)

Revision ID: 0015
Revises: 0014

The tier worker stores a job's answer and its bill in one statement (a
data-modifying CTE: INSERT INTO model_calls, then UPDATE jobs to succeeded). Both
rows' AFTER triggers then saw the job succeeded and the call stored, so the call's
trigger added its cost to tier_quality and the job's trigger added it again.

Now the job's trigger is a constraint trigger deferred to commit, which sums the
calls and ratings the job has by then, and a call's or rating's trigger adds to
tier_quality only for a job whose success an earlier transaction committed
(finished_at before this transaction began): a late completion or a later rating.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TERMINAL = "('succeeded', 'failed', 'dead', 'cancelled')"
# The job's success was committed by an earlier transaction than this one.
SUCCEEDED_BEFORE = (
    "{job}.status = 'succeeded'"
    " AND coalesce({job}.finished_at, '-infinity') < transaction_timestamp()"
)


def _rollups_0009() -> ModuleType:
    # The trigger functions as 0009 wrote them, to change one condition in each.
    path = Path(__file__).with_name("0009_cost_rollups.py")
    spec = importlib.util.spec_from_file_location("rollups_0009", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _replace(sql: str, old: str, new: str) -> str:
    assert old in sql, old
    return sql.replace(old, new)


def _functions(fixed: bool) -> list[str]:
    functions = _rollups_0009().FUNCTIONS
    call = next(f for f in functions if "tierroute_rollup_call()" in f)
    rating = next(f for f in functions if "tierroute_rollup_rating()" in f)
    call = _replace(call, "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    rating = _replace(rating, "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    if fixed:
        call = _replace(
            call, "j_created timestamptz;", "j_created timestamptz;\n j_finished timestamptz;"
        )
        call = _replace(
            call,
            "SELECT api_key_id, batch_id, status, tier, created_at\n"
            "              INTO j_key, j_batch, j_status, j_tier, j_created",
            "SELECT api_key_id, batch_id, status, tier, created_at, finished_at\n"
            "              INTO j_key, j_batch, j_status, j_tier, j_created, j_finished",
        )
        call = _replace(
            call,
            "IF c.purpose = 'complete' AND j_status = 'succeeded' THEN",
            "IF c.purpose = 'complete' AND j_status = 'succeeded'\n"
            "           AND coalesce(j_finished, '-infinity') < transaction_timestamp() THEN",
        )
        rating = _replace(
            rating,
            "SELECT id, api_key_id, status, tier, created_at INTO j",
            "SELECT id, api_key_id, status, tier, created_at, finished_at INTO j",
        )
        rating = _replace(
            rating,
            "IF j.status IS DISTINCT FROM 'succeeded' THEN",
            f"IF NOT coalesce({SUCCEEDED_BEFORE.format(job='j')}, false) THEN",
        )
    return [call, rating]


def _job_triggers(deferred: bool) -> list[str]:
    kind = "CONSTRAINT TRIGGER" if deferred else "TRIGGER"
    timing = " DEFERRABLE INITIALLY DEFERRED" if deferred else ""
    return [
        "DROP TRIGGER rollup_job_insert ON jobs",
        "DROP TRIGGER rollup_job_update ON jobs",
        f"""CREATE {kind} rollup_job_insert AFTER INSERT ON jobs{timing}
            FOR EACH ROW WHEN (NEW.status IN {TERMINAL})
            EXECUTE FUNCTION tierroute_rollup_job()""",
        f"""CREATE {kind} rollup_job_update AFTER UPDATE OF status, tier ON jobs{timing}
            FOR EACH ROW WHEN ((OLD.status IN {TERMINAL} OR NEW.status IN {TERMINAL})
                               AND (OLD.status IS DISTINCT FROM NEW.status
                                    OR OLD.tier IS DISTINCT FROM NEW.tier))
            EXECUTE FUNCTION tierroute_rollup_job()""",
    ]


def upgrade() -> None:
    for sql in [*_functions(fixed=True), *_job_triggers(deferred=True)]:
        op.execute(sql)
    # Recount what was counted twice, from whole days after the last prune on.
    op.execute(
        "SELECT tierroute_rollup_rebuild("
        "(SELECT date_trunc('day', pruned_before AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        " FROM rollup_state))"
    )
    op.execute("SELECT tierroute_rollup_compact(now() - interval '48 hours')")


def downgrade() -> None:
    for sql in [*_functions(fixed=False), *_job_triggers(deferred=False)]:
        op.execute(sql)
