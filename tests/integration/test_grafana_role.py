"""deploy/postgres/grafana-readonly.sql: Grafana reads the dashboard's data and nothing else."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from tests.conftest import Services

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "postgres" / "grafana-readonly.sql"
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "tierroute.json").read_text())
ROLE = "tierroute_readonly"


def libpq_url(services: Services) -> str:
    return services.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def run_script(services: Services, password: str | None) -> subprocess.CompletedProcess[str]:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    env = {k: v for k, v in os.environ.items() if k != "GRAFANA_DB_PASSWORD"}
    if password is not None:
        env["GRAFANA_DB_PASSWORD"] = password
    # No ON_ERROR_STOP on the command line: the script must stop on its own.
    return subprocess.run(
        [psql, "-X", "-q", "-d", libpq_url(services), "-f", str(SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def as_readonly(services: Services, password: str) -> psycopg.Connection[tuple[object, ...]]:
    info = psycopg.conninfo.conninfo_to_dict(libpq_url(services))
    info.update(user=ROLE, password=password)
    return psycopg.connect(**info, autocommit=True)  # type: ignore[arg-type]


def dashboard_queries() -> list[str]:
    """Each Postgres panel's SQL, with Grafana's time macro expanded."""
    queries = []
    for panel in DASHBOARD["panels"]:
        for target in panel["targets"]:
            if "rawSql" in target:
                sql = target["rawSql"]
                queries.append(
                    re.sub(
                        r"\$__timeFilter\((\w+(?:\.\w+)?)\)",
                        r"\1 > now() - interval '30 days'",
                        sql,
                    )
                )
    return queries


def test_the_role_runs_every_dashboard_query_and_reads_nothing_else(services: Services) -> None:
    password = secrets.token_hex(16)
    done = run_script(services, password)
    assert done.returncode == 0, done.stderr
    assert run_script(services, password).returncode == 0  # idempotent: rerun after migrate
    with as_readonly(services, password) as conn:
        queries = dashboard_queries()
        assert len(queries) >= 5
        for sql in queries:
            conn.execute(sql).fetchall()
        for forbidden in (
            "SELECT prompt FROM jobs",
            "SELECT system FROM jobs",
            "SELECT result_text FROM jobs",
            "SELECT * FROM jobs",
            "SELECT key_hash FROM api_keys",
            "SELECT * FROM ratings",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(forbidden)
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE grafana_was_here (id int)")
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (ROLE,))
        assert superuser.fetchone() == (False,)


def test_the_script_refuses_to_run_without_a_password(services: Services) -> None:
    for password in (None, "", "short"):
        done = run_script(services, password)
        assert done.returncode != 0
        assert "GRAFANA_DB_PASSWORD" in done.stderr


# The panel's figures as they were read before the rollups: every call of the batch's jobs.
RAW_TOP_BATCHES = """
    SELECT b.id AS batch, b.created_at, b.job_count AS jobs, sum(c.cost_usd) AS cost_usd,
           sum(c.cost_if_opus_usd) AS cost_if_opus_usd,
           sum(c.cost_if_opus_usd) - sum(c.cost_usd) AS saved_usd
      FROM batches b JOIN jobs j ON j.batch_id = b.id JOIN model_calls c ON c.job_id = j.id
     WHERE b.created_at > now() - interval '30 days'
     GROUP BY b.id ORDER BY cost_usd DESC LIMIT 10
"""


def test_the_top_batches_panel_reads_the_rollups_and_matches_the_calls(
    clean_db: Services,
) -> None:
    (panel_sql,) = [sql for sql in dashboard_queries() if "FROM batches" in sql]
    assert "model_calls" not in panel_sql  # bounded by batches, not by calls
    with psycopg.connect(libpq_url(clean_db), autocommit=True) as conn:
        for n in range(12):
            batch = conn.execute(
                "INSERT INTO batches (id, job_count) VALUES (gen_random_uuid(), 3) RETURNING id"
            ).fetchone()
            assert batch is not None
            for job in range(3):
                job_id = conn.execute(
                    "INSERT INTO jobs (id, batch_id, status, prompt, max_tokens)"
                    " VALUES (gen_random_uuid(), %s, 'succeeded', 'p', 64) RETURNING id",
                    (batch[0],),
                ).fetchone()
                assert job_id is not None
                for purpose, cost in (("classify", 0.001), ("complete", 0.01 * (n + job))):
                    conn.execute(
                        "INSERT INTO model_calls (job_id, purpose, model, tier, input_tokens,"
                        " output_tokens, cache_creation_input_tokens, cache_read_input_tokens,"
                        " cost_usd, cost_if_opus_usd, latency_ms, simulated) VALUES"
                        " (%s, %s, 'm', 'haiku', 10, 20, 0, 0, %s, %s, 100, true)",
                        (job_id[0], purpose, cost, 5 * cost),
                    )
        conn.execute("SELECT tierroute_rollup_fold()")  # as the beat does every 5 s
        panel = conn.execute(panel_sql).fetchall()
        assert len(panel) == 10
        assert panel == conn.execute(RAW_TOP_BATCHES).fetchall()
