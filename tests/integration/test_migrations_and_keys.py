"""Migrations are reversible; API keys are shown once and stored hashed."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.conftest import Services
from tierroute.cli.main import main
from tierroute.config import get_settings
from tierroute.store.engine import init_engine, session_scope
from tierroute.store.keys import hash_key
from tierroute.store.migrate import downgrade, upgrade
from tierroute.store.models import ApiKey

pytestmark = pytest.mark.integration

VIEWS = {"cost_by_tier_day", "savings", "tier_quality", "rollup_job_contributions"}
TABLES = {
    "jobs", "batches", "routing_decisions", "model_calls", "ratings", "api_keys",
    "provider_batches", "budget_holds", "shadow_verdicts",
    "rollup_calls_hourly", "rollup_jobs_hourly", "rollup_decisions_hourly", "rollup_batches",
    "rollup_state", "rollup_pending", "rollup_job_contrib",
}  # fmt: skip


def _relations(admin_url: str, database: str) -> set[str]:
    base = admin_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/{database}") as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            # A partitioned table's month partitions (migration 0017) are its parts.
            " AND table_name NOT IN (SELECT relname FROM pg_class WHERE relispartition)"
        ).fetchall()
    return {name for (name,) in rows} - {"alembic_version"}


def test_migrations_go_down_and_up_again(services: Services) -> None:
    admin_url = services.database_url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres"
    name = f"tierroute_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        upgrade(url)
        assert _relations(admin_url, name) == TABLES | VIEWS
        downgrade(url, "base")
        assert _relations(admin_url, name) == set()
        upgrade(url)
        assert _relations(admin_url, name) == TABLES | VIEWS
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_keys_create_prints_the_secret_once_and_stores_its_hash(clean_db: Services) -> None:
    result = CliRunner().invoke(main, ["keys", "create", "analytics"])
    assert result.exit_code == 0, result.output
    raw = result.output.strip().splitlines()[-1]
    assert raw.startswith("trk_") and len(raw) > 30
    init_engine(get_settings())
    with session_scope() as session:
        key = session.scalars(select(ApiKey).where(ApiKey.name == "analytics")).one()
    assert key.key_hash == hash_key(raw)
    assert raw not in (key.key_hash, key.prefix)
    assert raw.startswith(key.prefix)
