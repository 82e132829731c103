"""The rollup-backed views equal their raw-table computation over randomized data.

Rows are written the way the pipeline writes them (jobs inserted queued, then moved
through the state machine; calls and ratings inserted before and after a job
succeeds; decisions many per statement) from two connections. Their triggers only
list what they touched; after `tierroute_rollup_fold()` the views must equal the raw
tables, also when folds run while the rows are written, and
`tierroute_rollup_rebuild` must give the same views.
"""

from __future__ import annotations

import importlib.util
import random
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from tests.conftest import Services
from tierroute.cli.main import main
from tierroute.store.aggregates import LATENCY_BUCKETS_S
from tierroute.store.rollups import ROLLUP_TABLES

pytestmark = pytest.mark.integration

MIGRATION = Path(__file__).resolve().parents[2] / "migrations/versions/0009_cost_rollups.py"
TIERS = {"haiku": "claude-haiku-4-5", "sonnet": "claude-sonnet-4-5", "opus": "claude-opus-4-6"}
PURPOSES = ("complete", "complete", "complete", "classify", "shadow", "judge")
FLOAT_COLUMNS = {"avg_satisfaction"}


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rollups_migration", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pg_url(services: Services) -> str:
    return services.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def conns(clean_db: Services) -> Iterator[list[psycopg.Connection[Any]]]:
    url = _pg_url(clean_db)
    opened = [psycopg.connect(url, autocommit=True) for _ in range(2)]
    yield opened
    for conn in opened:
        conn.close()


def _call(
    rng: random.Random, job_id: uuid.UUID | None, key: uuid.UUID | None, at: datetime
) -> dict[str, Any]:
    tier = rng.choice(list(TIERS))
    batch_api = rng.random() < 0.2
    return {
        "job_id": job_id,
        "purpose": "classify" if job_id is None else rng.choice(PURPOSES),
        "model": TIERS[tier] if rng.random() < 0.9 else TIERS[tier] + "-old",
        "tier": tier,
        "input_tokens": rng.randint(1, 5000),
        "output_tokens": rng.randint(0, 3000),
        "cache_creation": rng.choice([0, 0, rng.randint(1, 2000)]),
        "cache_read": rng.choice([0, 0, rng.randint(1, 9000)]),
        "cost_usd": Decimal(rng.randint(1, 10**8)) / 10**10,
        "cost_if_opus_usd": Decimal(rng.randint(0, 10**8)) / 10**10,
        "cache_savings_usd": Decimal(rng.randint(-(10**6), 10**7)) / 10**10,
        "latency_ms": rng.choice([1, 50, 51, 999, 1000, 4000, 400000, rng.randint(0, 200000)]),
        "batch_api": batch_api,
        "simulated": rng.random() < 0.5,
        "api_key_id": key,
        "created_at": at,
    }


INSERT_CALL = """
    INSERT INTO model_calls (job_id, purpose, model, tier, input_tokens, output_tokens,
        cache_creation_input_tokens, cache_read_input_tokens, cost_usd, cost_if_opus_usd,
        cache_savings_usd, latency_ms, batch_api, simulated, api_key_id, created_at)
    VALUES (%(job_id)s, %(purpose)s, %(model)s, %(tier)s, %(input_tokens)s, %(output_tokens)s,
        %(cache_creation)s, %(cache_read)s, %(cost_usd)s, %(cost_if_opus_usd)s,
        %(cache_savings_usd)s, %(latency_ms)s, %(batch_api)s, %(simulated)s, %(api_key_id)s,
        %(created_at)s)
"""
DECIDERS = [
    ("local", "v1"),
    ("hybrid", "h1+llm"),
    ("hybrid", "h1"),
    ("llm", None),
    ("manual", None),
]


def _fill(conns: list[psycopg.Connection[Any]], seed: int) -> None:
    rng = random.Random(seed)
    base = datetime(2026, 10, 1, tzinfo=UTC)
    keys = [uuid.uuid4() for _ in range(3)]
    conn = conns[0]
    for i, new_key in enumerate(keys):
        conn.execute(
            "INSERT INTO api_keys (id, name, prefix, key_hash) VALUES (%s, %s, %s, %s)",
            (new_key, f"k{i}", f"trk_{i}", uuid.uuid4().hex),
        )
    batches: list[tuple[uuid.UUID | None, uuid.UUID | None]] = []
    key: uuid.UUID | None
    for _ in range(6):
        batch: uuid.UUID | None = uuid.uuid4()
        key = rng.choice([*keys, None])
        conn.execute(
            "INSERT INTO batches (id, api_key_id, job_count, created_at) VALUES (%s, %s, 1, %s)",
            (batch, key, base + timedelta(hours=rng.randint(0, 400))),
        )
        batches.append((batch, key))
    for n in range(400):
        c = conns[n % 2]
        at = base + timedelta(minutes=rng.randint(0, 60 * 24 * 20))
        batch, key = rng.choice([(None, rng.choice([*keys, None])), *batches])
        job = uuid.uuid4()
        final = rng.choice(["succeeded"] * 6 + ["failed", "dead", "cancelled", "running", "queued"])
        tier = rng.choice(list(TIERS))
        c.execute(
            "INSERT INTO jobs (id, batch_id, api_key_id, status, prompt, max_tokens, created_at)"
            " VALUES (%s, %s, %s, 'queued', 'p', 64, %s)",
            (job, batch, key, at),
        )
        if final == "queued":
            continue
        classifier, version = rng.choice(DECIDERS)
        c.execute(
            "INSERT INTO routing_decisions (job_id, tier, confidence, reasoning, classifier,"
            " classifier_version, cost_ratio, created_at) VALUES (%s, %s, 0.9, 'r', %s, %s, 1, %s)",
            (job, tier, classifier, version, at),
        )
        c.execute("UPDATE jobs SET status = 'routed', tier = %s WHERE id = %s", (tier, job))
        c.execute("UPDATE jobs SET status = 'running' WHERE id = %s", (job,))
        for _ in range(rng.choice([0, 1, 1, 2])):
            c.execute(
                INSERT_CALL, _call(rng, job, None, at + timedelta(seconds=rng.randint(0, 9000)))
            )
        if rng.random() < 0.2:  # a rating before the job succeeds counts when it does
            c.execute(
                "INSERT INTO ratings (job_id, satisfaction) VALUES (%s, %s)", (job, rng.random())
            )
        if final == "running":
            continue
        if final != "succeeded" and rng.random() < 0.3:  # retried: leaves a terminal status
            c.execute("UPDATE jobs SET status = %s WHERE id = %s", (final, job))
            c.execute("UPDATE jobs SET status = 'queued' WHERE id = %s", (job,))
            tier = rng.choice(list(TIERS))
            c.execute("UPDATE jobs SET status = 'running', tier = %s WHERE id = %s", (tier, job))
        how = rng.random() if final == "succeeded" else 1.0
        if how < 0.3:  # the tier worker's way: the bill and the success in one statement
            c.execute(
                f"WITH billed AS ({INSERT_CALL}) UPDATE jobs SET status = 'succeeded',"
                " finished_at = now() WHERE id = %(job_id)s",
                _call(rng, job, None, at),
            )
        elif how < 0.5:  # success, then its bill and a rating, in one transaction
            with c.transaction():
                c.execute(
                    "UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE id = %s",
                    (job,),
                )
                c.execute(INSERT_CALL, _call(rng, job, None, at))
                c.execute(
                    "INSERT INTO ratings (job_id, satisfaction) VALUES (%s, %s)",
                    (job, rng.random()),
                )
        else:
            c.execute("UPDATE jobs SET status = %s WHERE id = %s", (final, job))
        if rng.random() < 0.2:  # a late completion (e.g. a Message Batch result)
            c.execute(INSERT_CALL, _call(rng, job, None, at + timedelta(hours=3)))
        for _ in range(rng.choice([0, 0, 1, 3])):
            c.execute(
                "INSERT INTO ratings (job_id, satisfaction) VALUES (%s, %s)", (job, rng.random())
            )
    for n in range(60):  # /v1/route classifier calls: no job, their key named
        at = base + timedelta(minutes=rng.randint(0, 60 * 24 * 20))
        conns[n % 2].execute(INSERT_CALL, _call(rng, None, rng.choice(keys), at))


def _rows(conn: psycopg.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM ({sql}) v ORDER BY 1, 2, 3")
        return [tuple(row) for row in cur.fetchall()]


def _assert_equal(conn: psycopg.Connection[Any], views: dict[str, str]) -> None:
    conn.execute("SELECT tierroute_rollup_fold()")
    assert conn.execute("SELECT count(*) FROM rollup_pending").fetchone() == (0,)
    for name, raw_sql in views.items():
        raw = _rows(conn, raw_sql)
        rolled = _rows(conn, f"SELECT * FROM {name}")
        assert raw, name
        assert len(rolled) == len(raw), name
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {name} LIMIT 0")
            columns = [d.name for d in cur.description or []]
        for want, got in zip(raw, rolled, strict=True):
            for column, a, b in zip(columns, want, got, strict=True):
                if column in FLOAT_COLUMNS and a is not None and b is not None:
                    assert b == pytest.approx(a, rel=1e-12), (name, column)
                else:
                    assert a == b and type(a) is type(b), (name, column, a, b)


@pytest.mark.parametrize("seed", [1, 2])
def test_views_equal_raw_tables(conns: list[psycopg.Connection[Any]], seed: int) -> None:
    views = _migration().RAW_VIEWS
    _fill(conns, seed)
    conn = conns[0]
    # The writers only listed what they touched; the fold does the rollup work.
    assert conn.execute("SELECT count(*) FROM rollup_calls_hourly").fetchone() == (0,)
    pending = conn.execute("SELECT count(call_id), count(job_id) FROM rollup_pending").fetchone()
    calls = conn.execute("SELECT count(*) FROM model_calls").fetchone()
    assert pending is not None and calls is not None
    assert pending[0] == calls[0] and pending[1] > 0
    _assert_equal(conn, views)
    conn.execute("SELECT tierroute_rollup_rebuild(NULL)")
    _assert_equal(conn, views)


def test_compaction_keeps_views_equal(conns: list[psycopg.Connection[Any]]) -> None:
    _fill(conns, 5)
    conn = conns[0]
    conn.execute("SELECT tierroute_rollup_fold()")
    rows = "SELECT count(*) FROM rollup_calls_hourly"
    before = conn.execute(rows).fetchone()
    conn.execute("SELECT tierroute_rollup_compact(%s)", (datetime(2026, 10, 12, tzinfo=UTC),))
    after = conn.execute(rows).fetchone()
    assert before is not None and after is not None and after[0] < before[0]
    assert conn.execute(
        "SELECT count(*) FROM rollup_calls_hourly WHERE hour < '2026-10-12'"
        " AND (hour <> date_trunc('day', hour) OR shard <> 0)"
    ).fetchone() == (0,)
    _assert_equal(conn, _migration().RAW_VIEWS)
    # A late write for a compacted day adds a row; the views still agree.
    job = conn.execute(
        "SELECT id FROM jobs WHERE status = 'succeeded' AND created_at < '2026-10-05' LIMIT 1"
    ).fetchone()
    assert job is not None
    conn.execute("INSERT INTO ratings (job_id, satisfaction) VALUES (%s, 0.25)", (job[0],))
    _assert_equal(conn, _migration().RAW_VIEWS)
    conn.execute("SELECT tierroute_rollup_compact(%s)", (datetime(2026, 12, 1, tzinfo=UTC),))
    _assert_equal(conn, _migration().RAW_VIEWS)


def test_partial_rebuild_keeps_earlier_hours(conns: list[psycopg.Connection[Any]]) -> None:
    _fill(conns, 3)
    conn = conns[0]
    conn.execute("SELECT tierroute_rollup_fold()")
    before = _rows(conn, "SELECT * FROM cost_by_tier_day")
    since = datetime(2026, 10, 10, tzinfo=UTC)
    conn.execute("DELETE FROM model_calls WHERE created_at < %s", (since,))
    conn.execute("SELECT tierroute_rollup_rebuild(%s)", (since,))
    assert _rows(conn, "SELECT * FROM cost_by_tier_day") == before


def test_latency_bounds_match_metrics() -> None:
    assert tuple(round(b * 1000) for b in LATENCY_BUCKETS_S) == _migration().LATENCY_BOUNDS_MS


def test_cli_rebuild_restores_lost_rollups(conns: list[psycopg.Connection[Any]]) -> None:
    _fill(conns, 4)
    conn = conns[0]
    conn.execute("TRUNCATE rollup_calls_hourly, rollup_jobs_hourly, rollup_batches")
    assert _rows(conn, "SELECT * FROM tier_quality") == []
    result = CliRunner().invoke(main, ["rollup", "--rebuild"])
    assert result.exit_code == 0, result.output
    _assert_equal(conn, _migration().RAW_VIEWS)


def _pages(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute("SELECT pg_relation_size(%s) / 8192", (table,)).fetchone()
    assert row is not None
    return int(row[0])


def test_cli_rebuild_leaves_the_rollup_tables_at_their_live_size(
    conns: list[psycopg.Connection[Any]],
) -> None:
    _fill(conns, 5)  # weeks of hours: the rebuild writes them, compaction folds them
    conn = conns[0]
    result = CliRunner().invoke(main, ["rollup", "--rebuild"])
    assert result.exit_code == 0, result.output
    after_cli = {table: _pages(conn, table) for table in ROLLUP_TABLES}
    conn.execute(f"VACUUM FULL {', '.join(ROLLUP_TABLES)}")
    assert after_cli == {table: _pages(conn, table) for table in ROLLUP_TABLES}
    _assert_equal(conn, _migration().RAW_VIEWS)


def test_folds_while_rows_are_written_count_each_row_once(
    conns: list[psycopg.Connection[Any]], clean_db: Services
) -> None:
    # Two folders race each other and the two writers: each pending row must be
    # folded exactly once, and a job retried, re-tiered or rated between folds must
    # end up counted once, as it stands.
    stop = threading.Event()
    folded: list[int] = []
    errors: list[BaseException] = []

    def keep_folding() -> None:
        try:
            with psycopg.connect(_pg_url(clean_db), autocommit=True) as conn:
                while not stop.is_set():
                    row = conn.execute("SELECT tierroute_rollup_fold(7)").fetchone()
                    assert row is not None
                    folded.append(int(row[0]))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    folders = [threading.Thread(target=keep_folding) for _ in range(2)]
    for folder in folders:
        folder.start()
    try:
        _fill(conns, 7)
    finally:
        stop.set()
        for folder in folders:
            folder.join()
    assert not errors, errors
    assert sum(folded) > 100  # the folds ran while rows were written
    _assert_equal(conns[0], _migration().RAW_VIEWS)
