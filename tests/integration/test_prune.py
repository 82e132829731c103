"""`tierroute prune`: old finished jobs and their calls go to gzip JSONL and out of the
tables, in chunks; jobs in flight and locked rows stay; the rollups keep the spend."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from tests.conftest import Services
from tierroute.cli.main import main
from tierroute.cli.tables import parse_age
from tierroute.store.retention import pause_after

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
OLD, RECENT = NOW - timedelta(days=120), NOW - timedelta(days=5)


def _job(conn: psycopg.Connection[Any], at: datetime, status: str) -> uuid.UUID:
    job = uuid.uuid4()
    conn.execute(
        "INSERT INTO jobs (id, status, prompt, max_tokens, tier, created_at, finished_at)"
        " VALUES (%s, 'queued', 'p', 64, 'haiku', %s, NULL)",
        (job, at),
    )
    conn.execute(
        "INSERT INTO routing_decisions (job_id, tier, confidence, reasoning, classifier,"
        " cost_ratio, created_at) VALUES (%s, 'haiku', 0.9, 'r', 'local', 1, %s)",
        (job, at),
    )
    conn.execute(
        "INSERT INTO model_calls (job_id, purpose, model, tier, input_tokens, output_tokens,"
        " cache_creation_input_tokens, cache_read_input_tokens, cost_usd, cost_if_opus_usd,"
        " latency_ms, simulated, created_at) VALUES"
        " (%s, 'complete', 'claude-haiku-4-5', 'haiku', 10, 20, 0, 0, 0.25, 1.5, 300, true, %s)",
        (job, at),
    )
    finished = at if status != "running" else None
    conn.execute(
        "UPDATE jobs SET status = %s, finished_at = %s WHERE id = %s", (status, finished, job)
    )
    if status == "succeeded":
        conn.execute("INSERT INTO ratings (job_id, satisfaction) VALUES (%s, 0.5)", (job,))
    return job


def _count(conn: psycopg.Connection[Any], sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_prune_archives_deletes_and_keeps_rollups(clean_db: Services, tmp_path: Path) -> None:
    url = clean_db.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE rollup_state SET pruned_before = NULL")
        old = [_job(conn, OLD + timedelta(minutes=i), "succeeded") for i in range(25)]
        old_failed = _job(conn, OLD, "failed")
        in_flight = _job(conn, OLD, "running")  # old, but never finished: stays
        recent = _job(conn, RECENT, "succeeded")
        conn.execute(
            "INSERT INTO model_calls (purpose, model, tier, input_tokens, output_tokens,"
            " cache_creation_input_tokens, cache_read_input_tokens, cost_usd, cost_if_opus_usd,"
            " latency_ms, simulated, created_at) VALUES"
            " ('classify', 'claude-haiku-4-5', 'haiku', 5, 5, 0, 0, 0.01, 0, 100, true, %s)",
            (OLD,),
        )
        conn.execute("SELECT tierroute_rollup_fold()")  # as the beat does
        before = conn.execute("SELECT * FROM savings").fetchone()
        quality = conn.execute("SELECT * FROM tier_quality").fetchall()

        holder = psycopg.connect(url)  # a worker holding one old job: skipped, not waited on
        holder.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", (old[0],))
        try:
            result = CliRunner().invoke(
                main, ["prune", "--older-than", "90d", "--archive", str(tmp_path), "--chunk", "10"]
            )
        finally:
            holder.rollback()
            holder.close()
        assert result.exit_code == 0, result.output
        assert "pruned 25 jobs and 26 calls" in result.output

        left = {row[0] for row in conn.execute("SELECT id FROM jobs").fetchall()}
        assert left == {old[0], in_flight, recent}
        assert old_failed not in left
        assert _count(conn, "SELECT count(*) FROM model_calls WHERE job_id IS NULL") == 0
        assert _count(conn, "SELECT count(*) FROM ratings") == 2
        # The rollups, and so the views, still hold the pruned spend and quality.
        assert conn.execute("SELECT * FROM savings").fetchone() == before
        assert conn.execute("SELECT * FROM tier_quality").fetchall() == quality
        assert _count(conn, "SELECT pruned_before FROM rollup_state") is not None

    jobs_file, calls_file = (
        sorted(tmp_path.glob("jobs-*.jsonl.gz")),
        sorted(tmp_path.glob("calls-*.jsonl.gz")),
    )
    assert len(jobs_file) == 1 and len(calls_file) == 1
    with gzip.open(jobs_file[0], "rt") as f:
        jobs = [json.loads(line) for line in f]
    with gzip.open(calls_file[0], "rt") as f:
        calls = [json.loads(line) for line in f]
    assert {uuid.UUID(j["id"]) for j in jobs} == set(old[1:]) | {old_failed}
    assert all(j["routing"]["tier"] == "haiku" for j in jobs)
    assert sum(len(j["ratings"] or []) for j in jobs) == 24
    assert len(calls) == 26 and {c["cost_usd"] for c in calls} == {0.25, 0.01}


def test_rebuild_after_prune_keeps_the_pruned_hours(clean_db: Services) -> None:
    url = clean_db.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE rollup_state SET pruned_before = NULL")
        for i in range(3):
            _job(conn, OLD + timedelta(hours=i), "succeeded")
        _job(conn, RECENT, "succeeded")
        conn.execute("SELECT tierroute_rollup_fold()")  # as the beat does
        before = conn.execute("SELECT * FROM savings").fetchone()
        assert CliRunner().invoke(main, ["prune", "--older-than", "90d"]).exit_code == 0
        result = CliRunner().invoke(main, ["rollup", "--rebuild"])
        assert result.exit_code == 0, result.output
        assert conn.execute("SELECT * FROM savings").fetchone() == before


def test_parse_age() -> None:
    assert parse_age("90d") == timedelta(days=90)
    assert parse_age("12h") == timedelta(hours=12)
    assert parse_age("7") == timedelta(days=7)


def test_prune_paces_itself_to_its_busy_share() -> None:
    assert pause_after(0.2, 0.5, 0.05) == pytest.approx(0.2)  # as long idle as busy
    assert pause_after(0.3, 0.25, 0.05) == pytest.approx(0.9)  # busy a quarter of the time
    assert pause_after(0.2, 1.0, 0.05) == 0.05  # flat out: only the minimum pause
    assert pause_after(0.001, 0.5, 0.05) == 0.05
    with pytest.raises(ValueError, match="busy_share"):
        pause_after(0.1, 0, 0.05)


def test_prune_cli_refuses_a_chunk_below_one() -> None:
    for chunk in ("0", "-5"):
        result = CliRunner().invoke(main, ["prune", "--older-than", "90d", "--chunk", chunk])
        assert result.exit_code == 2 and "--chunk" in result.output


def test_prune_cli_refuses_a_busy_share_outside_0_1() -> None:
    result = CliRunner().invoke(main, ["prune", "--older-than", "90d", "--busy-share", "1.5"])
    assert result.exit_code == 2 and "--busy-share" in result.output
