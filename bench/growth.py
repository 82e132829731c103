"""Growth: the read paths at 0.1M, 1M (and 5M) jobs, the tables filled in SQL.

What a size means: N jobs spread over the same 60 days and 5 keys in batches of
1,000, PLUS one batch of 100,000 (key 0, this last hour) on top, the same at every
size. So 0.1M holds 200,000 jobs and 1M 1,100,000 (`details.sizes[].jobs` is the
real total). Every size covers the same calendar and keys: every day from 60
batches on, every (day, key) pair from 300 (see SPREAD_BATCHES). The rollups hold a
row per key, tier, model and purpose for each day (each hour of the last two), so
past 0.3M they grow only by the hours of the last two days that gain a batch; 0.1M's
100 batches fill a third of the (day, key) pairs, so its rollups hold fewer rows
(`details.sizes[].rollup_rows`). The batch status is timed on the big batch, the
same 100,000 jobs at every size.

Each job has its routing decision, 1.2 model calls on average (every answered
job's completion, a classifier call for a quarter of jobs), 5 % of answered jobs
are rated, prompts and answers are about a kilobyte each. The triggers are off
while it fills (session_replication_role = replica); `tierroute_rollup_rebuild`
then computes the rollups and compacts hours older than two days into days, as
`tierroute rollup --rebuild` does, and is timed.

At each size, median of 5 after one warm-up, in this process through the same
functions the API calls (no HTTP): the report (global, the busiest key, a key
with no jobs), the dashboard's data and HTML, /metrics' aggregates, the 100k
batch's status, and `SELECT *` of each analyst view.

Then, through HTTP as the submit benchmark posts it (one API process, no worker
consuming), a bulk submit of 10,000 prompts, timed from request start to the 202
(rows committed): median of 3, on the empty database before the first fill and at
each size. Each submitted batch is deleted after its timing (its jobs go with it),
so every size holds exactly its filled jobs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.orm import Session

from bench.backing import Backing
from bench.config import BenchConfig
from bench.report import Result
from bench.solo import solo
from bench.workload import auth, ndjson_body, submit_batch
from tierroute.config import default_tier_table
from tierroute.dashboard import dashboard_html
from tierroute.store.aggregates import read_aggregates
from tierroute.store.engine import make_engine
from tierroute.store.jobs import batch_view
from tierroute.store.partitions import PARTITIONED
from tierroute.store.report import build_report
from tierroute.store.rollups import REPACK, ROLLUP_TABLES

KEYS = 5
BATCH = 1_000
DAYS = 60
REPEATS = 5
SUBMIT_REPEATS = 3
VIEWS = ("savings", "cost_by_tier_day", "tier_quality")
BIG_BATCH_ID = uuid.UUID("00000000-0000-4000-8000-000000100000")


def _key(n: str) -> str:
    return f"('00000000-0000-4000-8000-' || lpad(({n})::text, 12, '0'))::uuid"


def _batch(n: str) -> str:
    return f"('00000000-0000-4000-9000-' || lpad(({n})::text, 12, '0'))::uuid"


# Keys 0..KEYS-1 have jobs, key KEYS none. Job n < BIG_BASE is in batch b = n / 1000,
# on day b mod DAYS back (its time of day from a hash of b) and of key
# (b + b / DAYS) mod KEYS: any DAYS consecutive batches cover every day, and any
# DAYS * KEYS every (day, key), so 0.1M's 100 batches already span the whole
# calendar and every key. Job BIG_BASE + i is the i-th of the big batch (key 0,
# this last hour). Statuses, tiers and ratings come from hashes of n. The big
# batch's numbers sit far above any size's, and below 2**31 (n is an integer, which
# hashint4 takes).
BIG_BASE = 2_000_000_000
SPREAD_BATCHES = f"""
    INSERT INTO batches (id, api_key_id, job_count, created_at)
    SELECT {_batch("b")}, {_key(f"mod(b + b / {DAYS}, {KEYS})")}, {BATCH},
           now() - interval '1 day' * (%(days_ago)s + mod(b, {DAYS}))
           - interval '1 day' * ((hashint4(b) & 65535) / 65536.0)
      FROM generate_series(%(lo)s / {BATCH}, (%(hi)s - 1) / {BATCH}) b
    ON CONFLICT DO NOTHING
"""
BIG_BATCH_ROW = f"""
    INSERT INTO batches (id, api_key_id, job_count, created_at)
    VALUES ('{BIG_BATCH_ID}', {_key("0")}, %(jobs)s, now() - interval '1 hour')
"""
KEYS_ROWS = f"""
    INSERT INTO api_keys (id, name, prefix, key_hash)
    SELECT {_key("k")}, 'key ' || k, 'trk_g' || k, md5('growth' || k)
      FROM generate_series(0, {KEYS}) k
    ON CONFLICT DO NOTHING
"""
# Jobs lo..hi-1 of batches already inserted, with their decisions, calls and ratings.
FILL = [
    f"""
    INSERT INTO jobs (id, batch_id, api_key_id, status, prompt, system, max_tokens, tier,
                      attempts, result_text, error, created_at, enqueued_at, classified_at,
                      started_at, finished_at, updated_at)
    SELECT ('00000000-0000-4000-a000-' || lpad(n::text, 12, '0'))::uuid, b.id, b.api_key_id,
           s.status, p.prompt, 'You are a helpful assistant.', 1024, t.tier, 1,
           CASE WHEN s.status = 'succeeded' THEN p.answer END,
           CASE WHEN s.status IN ('failed', 'dead') THEN 'overloaded' END,
           at, at, at + interval '1 second', at + interval '2 seconds',
           at + interval '5 seconds', at + interval '5 seconds'
      FROM generate_series(%(lo)s, %(hi)s - 1) n
      JOIN batches b ON b.id = CASE WHEN n >= {BIG_BASE} THEN '{BIG_BATCH_ID}'::uuid
                                    ELSE {_batch(f"n / {BATCH}")} END
      CROSS JOIN LATERAL (SELECT b.created_at + mod(n, {BATCH}) * interval '50 ms' AS at) a
      CROSS JOIN LATERAL (SELECT CASE WHEN (hashint4(n) & 127) < 123 THEN 'succeeded'
                                      WHEN (hashint4(n) & 127) < 125 THEN 'failed'
                                      WHEN (hashint4(n) & 127) < 126 THEN 'dead'
                                      ELSE 'cancelled' END AS status) s
      CROSS JOIN LATERAL (SELECT CASE WHEN (hashint4(n + 7) & 15) < 8 THEN 'haiku'
                                      WHEN (hashint4(n + 7) & 15) < 14 THEN 'sonnet'
                                      ELSE 'opus' END AS tier) t
      CROSS JOIN LATERAL (SELECT repeat(md5(n::text) || ' explain this ', 22) AS prompt,
                                 repeat(md5((n + 1)::text) || ' here is the answer ', 20)
                                     AS answer) p
    """,
    """
    INSERT INTO routing_decisions (job_id, tier, proposed_tier, confidence, score, reasoning,
                                   classifier, classifier_version, cost_ratio, created_at)
    SELECT j.id, j.tier, j.tier, 0.9, 0.5, 'local model', 'hybrid',
           CASE WHEN (hashint4(n + 3) & 3) = 0 THEN 'v1+llm' ELSE 'v1' END, 0.2,
           j.classified_at
      FROM generate_series(%(lo)s, %(hi)s - 1) n
      JOIN jobs j ON j.id = ('00000000-0000-4000-a000-' || lpad(n::text, 12, '0'))::uuid
    """,
    """
    INSERT INTO model_calls (job_id, purpose, model, tier, input_tokens, output_tokens,
                             cache_creation_input_tokens, cache_read_input_tokens, cost_usd,
                             cost_if_opus_usd, latency_ms, request_id, stop_reason, simulated,
                             created_at)
    SELECT j.id, c.purpose, m.model, c.tier, 600, c.output, 0,
           CASE WHEN (hashint4(n + 5) & 7) = 0 THEN 400 ELSE 0 END,
           c.cost, c.if_opus, 300 + (hashint4(n + 9) & 4095), 'req_' || n || c.purpose,
           'end_turn', true, j.started_at + interval '2 seconds'
      FROM generate_series(%(lo)s, %(hi)s - 1) n
      JOIN jobs j ON j.id = ('00000000-0000-4000-a000-' || lpad(n::text, 12, '0'))::uuid
      CROSS JOIN LATERAL (
          SELECT 'complete' AS purpose, j.tier AS tier, 400 AS output,
                 (600 * p.i + 400 * p.o) / 1e6 AS cost, (600 * 5 + 400 * 25) / 1e6 AS if_opus
            FROM (SELECT CASE j.tier WHEN 'haiku' THEN 1 WHEN 'sonnet' THEN 3 ELSE 5 END AS i,
                         CASE j.tier WHEN 'haiku' THEN 5 WHEN 'sonnet' THEN 15 ELSE 25 END AS o)
                 p
           WHERE j.status IN ('succeeded', 'failed')
          UNION ALL
          SELECT 'classify', 'haiku', 60, (600 * 1 + 60 * 5) / 1e6, 0
           WHERE (hashint4(n + 3) & 3) = 0) c
      CROSS JOIN LATERAL (SELECT CASE c.tier WHEN 'haiku' THEN 'claude-haiku-4-5'
                                             WHEN 'sonnet' THEN 'claude-sonnet-4-5'
                                             ELSE 'claude-opus-4-6' END AS model) m
    """,
    """
    INSERT INTO ratings (job_id, satisfaction, created_at)
    SELECT j.id, ((hashint4(n + 11) & 1023) / 1023.0), j.finished_at + interval '1 hour'
      FROM generate_series(%(lo)s, %(hi)s - 1) n
      JOIN jobs j ON j.id = ('00000000-0000-4000-a000-' || lpad(n::text, 12, '0'))::uuid
     WHERE j.status = 'succeeded' AND mod(hashint4(n + 13), 20) = 0
    """,
]
COUNTS = "SELECT " + ", ".join(
    f"(SELECT count(*) FROM {t})" for t in ("jobs", "model_calls", "batches", *ROLLUP_TABLES)
)
SIZE_BYTES = """
    SELECT sum(pg_total_relation_size(t))::bigint FROM unnest(
        ARRAY['jobs', 'model_calls', 'routing_decisions', 'ratings', 'batches']::regclass[]) t
"""


def _label(jobs: int) -> str:
    return f"{jobs / 1e6:g}m"


MONTH_PARTITIONS = """
    SELECT tierroute_month_partition(t, m)
      FROM unnest(%(tables)s::text[]) t,
           generate_series(date_trunc('month', (now() - make_interval(days => %(days)s))
                                               AT TIME ZONE 'UTC'),
                           date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month') m
"""


def fill(url: str, lo: int, hi: int, chunk: int = 250_000, *, days_ago: int = 0) -> float:
    """Add spread jobs lo..hi-1 (batches of 1,000 over DAYS days and KEYS keys) with their
    decisions, calls and ratings; returns seconds.

    `days_ago` moves them all that many days back (the prune benchmark's old jobs).
    """
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        # The months the fill reaches get their partitions first, as months of use
        # would have made them (migration 0017), so no row waits in a default partition.
        conn.execute(MONTH_PARTITIONS, {"tables": list(PARTITIONED), "days": days_ago + DAYS})
        conn.execute("SET session_replication_role = replica")  # no triggers, no FK checks
        conn.execute(KEYS_ROWS)
        for start in range(lo, hi, chunk):
            params = {"lo": start, "hi": min(start + chunk, hi), "days_ago": days_ago}
            with conn.transaction():
                for sql in [SPREAD_BATCHES, *FILL]:
                    conn.execute(sql, params)
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def fill_big_batch(url: str, jobs: int) -> float:
    """Add the one big batch (key 0, this last hour) of `jobs` jobs; returns seconds."""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(KEYS_ROWS)
        with conn.transaction():
            conn.execute(BIG_BATCH_ROW, {"jobs": jobs})
            for sql in FILL:
                conn.execute(sql, {"lo": BIG_BASE, "hi": BIG_BASE + jobs})
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def rebuild(url: str) -> float:
    """Recompute the rollups from the raw rows, as `tierroute rollup --rebuild`; seconds."""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT tierroute_rollup_rebuild(NULL)")
        # As the classify worker's beat does every hour (tierroute.rollup.compact).
        conn.execute("SELECT tierroute_rollup_compact(now() - interval '48 hours')")
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def settle_rollups(url: str) -> None:
    """Rewrite the rollup tables at their live size, as `tierroute rollup --rebuild`
    does after its rebuild (`rollups.REPACK`): the rebuild writes every hour of the
    DAYS days and compaction then deletes all but the last two days' hours, leaving
    pages that every read would scan. Not part of `rebuild_s`; the pages before and
    after are in the details."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(REPACK)


def _rollup_pages(url: str) -> dict[str, int]:
    """8 kB pages of each rollup table: what a read that sums one scans."""
    pages = {}
    with psycopg.connect(url) as conn:
        for table in ROLLUP_TABLES:
            row = conn.execute("SELECT pg_relation_size(%s) / 8192", (table,)).fetchone()
            assert row is not None
            pages[table] = int(row[0])
    return pages


def _median_ms(session_of: Callable[[], Session], read: Callable[[Session], Any]) -> float:
    times = []
    for i in range(REPEATS + 1):
        with session_of() as session:
            started = time.perf_counter()
            read(session)
            elapsed = time.perf_counter() - started
        if i:  # the first is a warm-up: plans and caches
            times.append(elapsed * 1000)
    return statistics.median(times)


def time_reads(url: str) -> dict[str, float]:
    """Milliseconds (median of REPEATS) of each read path at the current size."""
    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=1)
    tiers = default_tier_table()
    busiest, empty = uuid.UUID(_key_literal(0)), uuid.UUID(_key_literal(KEYS))

    def session_of() -> Session:
        return Session(engine)

    paths: dict[str, Callable[[Session], Any]] = {
        "report": lambda s: build_report(s, tiers),
        "report_key": lambda s: build_report(s, tiers, api_key_id=busiest),
        "report_empty_key": lambda s: build_report(s, tiers, api_key_id=empty),
        "dashboard": lambda s: dashboard_html(s, tiers),
        "metrics": read_aggregates,
        "batch_status": lambda s: batch_view(s, BIG_BATCH_ID),
        **{f"view_{v}": _select_all(v) for v in VIEWS},
    }
    try:
        return {name: _median_ms(session_of, read) for name, read in paths.items()}
    finally:
        engine.dispose()


def _select_all(view: str) -> Callable[[Session], Any]:
    from sqlalchemy import text

    return lambda s: s.execute(text(f"SELECT * FROM {view}")).all()


def _key_literal(k: int) -> str:
    return f"00000000-0000-4000-8000-{k:012d}"


def _delete_batch(url: str, batch_id: str) -> None:
    """Remove a submitted batch and its jobs (ON DELETE CASCADE), and what they left pending."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM batches WHERE id = %s", (batch_id,))
        # The jobs' insert triggers listed them for the next fold; a queued job adds
        # nothing, so folding now only keeps the next size's reads from doing it.
        conn.execute("SELECT tierroute_rollup_fold()")


def time_submit(api: httpx.Client, url: str, prompts: int, tag: str) -> float:
    """Seconds (median of SUBMIT_REPEATS) of a bulk submit of `prompts`, each deleted after."""
    times = []
    for i in range(SUBMIT_REPEATS):
        done = submit_batch(api, ndjson_body(prompts, f"{tag}-{i}"))
        if done.batch_id is None:
            raise RuntimeError(f"bulk submit refused: {done.status} {done.detail}")
        times.append(done.seconds)
        _delete_batch(url, done.batch_id)
    return statistics.median(times)


def run(config: BenchConfig, backing: Backing) -> Result:
    """Grow the tables through config.growth_sizes; time every read path and a submit at each."""
    result = Result("growth")
    url = backing.psycopg_url
    backing.reset()
    with (
        tempfile.TemporaryDirectory(prefix="tierroute-bench-") as tmp,
        solo(backing, Path(tmp) / "logs", api=True) as procs,
        httpx.Client(base_url=str(procs.api_url), timeout=600, headers=auth(procs.api_key)) as api,
    ):
        # The API's lazy setup (pools, first statements) is not what we time.
        warm = submit_batch(api, ndjson_body(10, "warmup"))
        if warm.batch_id is None:
            raise RuntimeError(f"warm-up submit refused: {warm.status} {warm.detail}")
        _delete_batch(url, warm.batch_id)
        submit_empty = time_submit(api, url, config.growth_submit_prompts, "empty")
        sizes = _grow(
            config,
            url,
            result,
            lambda tag: time_submit(api, url, config.growth_submit_prompts, tag),
        )
    have = config.growth_sizes[-1]
    result.figures["bytes_per_job"] = result.figures[f"bytes_per_job_{_label(have)}"]
    first, last = _label(config.growth_sizes[0]), _label(config.growth_sizes[-1])
    for name in ("report", "dashboard", "metrics", "batch_status", *(f"view_{v}" for v in VIEWS)):
        small = result.figures[f"{name}_ms_{first}"]
        result.figures[f"{name}_growth_{last}_vs_{first}"] = (
            result.figures[f"{name}_ms_{last}"] / small if small else 0.0
        )
    # Issue 16: a 10k submit at the largest size within 1.5x of the empty database's.
    result.figures["submit_10k_s_empty"] = submit_empty
    result.figures[f"submit_10k_s_{last}_vs_empty"] = (
        result.figures[f"submit_10k_s_{last}"] / submit_empty
    )
    result.settings = {
        "sizes": list(config.growth_sizes),
        "keys": KEYS,
        "days": DAYS,
        "batch": BATCH,
        "big_batch": config.growth_big_batch,
        "size_means": "jobs spread over the days, keys and 1,000-job batches; the big "
        "batch's jobs come on top at every size (details.sizes[].jobs is the total)",
        "repeats": REPEATS,
        "timing": "in-process calls of the functions the API serves, median after a warm-up",
        "submit_prompts": config.growth_submit_prompts,
        "submit_repeats": SUBMIT_REPEATS,
        "submit_timing": "POST /v1/batches (NDJSON) to one API process, request start to "
        "202, median; each submitted batch deleted after its timing",
    }
    result.details = {"sizes": sizes}
    return result


def _grow(
    config: BenchConfig, url: str, result: Result, submit_s: Callable[[str], float]
) -> list[dict[str, Any]]:
    """Fill to each size in turn, timing the reads and a submit; one detail row per size."""
    have = 0
    sizes: list[dict[str, Any]] = []
    # The same big batch at every size, so its status is timed on the same 100k jobs.
    big_fill_s = fill_big_batch(url, config.growth_big_batch)
    for size in config.growth_sizes:
        label = _label(size)
        fill_s = fill(url, have, size) + big_fill_s
        big_fill_s = 0.0
        have = size
        rebuild_s = rebuild(url)
        pages_rebuilt = _rollup_pages(url)
        settle_rollups(url)
        reads = time_reads(url)
        with psycopg.connect(url) as conn:
            row = conn.execute(SIZE_BYTES).fetchone()
            counts = conn.execute(COUNTS).fetchone()
        assert row is not None and counts is not None
        jobs = int(counts[0])
        # After the size is measured: its submits' dead rows must not reach the reads.
        submit = submit_s(label)
        for name, ms in reads.items():
            result.figures[f"{name}_ms_{label}"] = ms
        result.figures[f"views_ms_{label}_max"] = max(reads[f"view_{v}"] for v in VIEWS)
        result.figures[f"rebuild_s_{label}"] = rebuild_s
        result.figures[f"bytes_per_job_{label}"] = int(row[0]) / jobs
        result.figures[f"submit_10k_s_{label}"] = submit
        sizes.append(
            {
                "spread_jobs": size,
                "big_batch_jobs": config.growth_big_batch,
                "jobs": jobs,
                "model_calls": int(counts[1]),
                "batches": int(counts[2]),
                "rollup_rows": dict(zip(ROLLUP_TABLES, map(int, counts[3:]), strict=True)),
                "rollup_pages_after_rebuild": pages_rebuilt,
                "rollup_pages_timed": _rollup_pages(url),
                "fill_s": round(fill_s, 1),
                "rebuild_s": round(rebuild_s, 1),
                "bytes": int(row[0]),
                "reads_ms": {k: round(v, 2) for k, v in reads.items()},
                "submit_s": round(submit, 3),
            }
        )
    return sizes
