"""Jobs through classify and complete with PgBouncer in transaction mode in front of Postgres.

PgBouncer hands each transaction whatever server connection is free, so a statement
psycopg prepared on one client connection meets other clients' statements of the
same name (`_pg3_0`, …) or is missing. With one server connection for the test
database, every client shares it: prepared statements fail at once, which is what
TIERROUTE_DB_PREPARED_STATEMENTS=false prevents.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.conftest import IN_CI, Services, clear_settings_caches
from tests.steps import complete_job
from tierroute.devstack.procs import free_port
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import JobStatus
from tierroute.pipeline.classify_chunk import classify_batch
from tierroute.pipeline.steps import classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.jobs import create_job
from tierroute.store.models import Job, ModelCall
from worker import tasks

pytestmark = pytest.mark.integration
PROMPTS = [
    'Format this JSON: {"name": "John", "age": 30}',
    "Write a Python function to merge two sorted lists into one sorted list",
    "Review this distributed system design for consistency trade-offs and failure modes",
    "What is the capital of France?",
]


def _pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    if found is None:
        message = "pgbouncer is not installed (Debian package `pgbouncer`); .ci/run installs it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def _run_as() -> list[str]:
    # PgBouncer refuses to run as root; it drops to the user that `-u` names.
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["-u", user]
    pytest.fail("running as root, and no postgres or nobody user for pgbouncer to run as")


@pytest.fixture(scope="module")
def pgbouncer(services: Services) -> Iterator[str]:
    """A PgBouncer in transaction mode before the test database; yields its database URL."""
    binary = _pgbouncer_binary()
    url = make_url(services.database_url)
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="tierroute-pgbouncer-"))
    user = url.username or "postgres"
    (work / "userlist.txt").write_text(f'"{user}" "{url.password or ""}"\n')
    (work / "pgbouncer.ini").write_text(
        f"""
[databases]
{url.database} = host={url.host or "127.0.0.1"} port={url.port or 5432} pool_size=1

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = {"trust" if url.password is None else "plain"}
auth_file = {work / "userlist.txt"}
pool_mode = transaction
max_client_conn = 200
logfile = {work / "pgbouncer.log"}
pidfile = {work / "pgbouncer.pid"}
ignore_startup_parameters = extra_float_digits,options
"""
    )
    work.chmod(0o777)  # the user pgbouncer drops to writes its log and pid file here
    process = subprocess.Popen(
        [binary, *_run_as(), str(work / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    bounced = url.set(host="127.0.0.1", port=port)
    libpq = bounced.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        for _ in range(100):
            if process.poll() is not None:
                log = (work / "pgbouncer.log").read_text(errors="replace")
                pytest.fail(f"pgbouncer exited with {process.returncode}:\n{log}")
            try:
                with psycopg.connect(libpq, connect_timeout=2) as conn:
                    assert conn.execute("SELECT 1").fetchone() == (1,)
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        else:
            pytest.fail("pgbouncer did not accept connections")
        yield bounced.render_as_string(hide_password=False)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def rt(
    clean_db: Services, sim: RunningSimulator, pgbouncer: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    """A runtime whose engine reaches Postgres only through PgBouncer."""
    monkeypatch.setenv("TIERROUTE_DATABASE_URL", pgbouncer)
    monkeypatch.setenv("TIERROUTE_DB_PREPARED_STATEMENTS", "false")
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    monkeypatch.setenv("TIERROUTE_DB_POOL_SIZE", "4")
    monkeypatch.delenv("TIERROUTE_DAILY_BUDGET_USD", raising=False)
    clear_settings_caches()
    runtime = get_runtime()
    assert make_url(runtime.settings.database_url or "").port == make_url(pgbouncer).port
    yield runtime
    clear_settings_caches()


def submit(prompt: str) -> uuid.UUID:
    with session_scope() as session:
        job, _ = create_job(session, JobSpec(prompt=prompt), default_max_tokens=64)
        return job.id


def one_by_one(rt: Runtime, prompt: str) -> JobStatus:
    job_id = submit(prompt)
    assert classify_job(rt, job_id) is not None
    assert complete_job(rt, job_id) is None
    with session_scope() as session:
        return session.get_one(Job, job_id).status


def test_jobs_run_through_classify_and_complete_behind_pgbouncer(rt: Runtime) -> None:
    # Threads, so the engine's pool holds several client connections, and enough
    # jobs that psycopg's default (prepare on the 5th run) would prepare statements.
    prompts = [f"{PROMPTS[i % len(PROMPTS)]} ({i})" for i in range(24)]
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda prompt: one_by_one(rt, prompt), prompts))
    assert statuses == [JobStatus.SUCCEEDED] * len(prompts)
    with session_scope() as session:
        calls = session.scalar(
            select(func.count()).select_from(ModelCall).where(ModelCall.purpose == "complete")
        )
    assert calls == len(prompts)


def test_the_workers_batched_path_runs_behind_pgbouncer(rt: Runtime) -> None:
    # What the feeder's classify_many and the tier workers' complete_many do.
    for round_ in range(3):
        ids = [submit(f"{prompt} [{round_}]") for prompt in PROMPTS * 3]
        routing = classify_batch(rt, ids)
        by_tier: dict[str, list[str]] = {}
        for job_id, tier in routing.hand_on:
            by_tier.setdefault(tier, []).append(str(job_id))
        assert sum(len(tier_ids) for tier_ids in by_tier.values()) == len(ids)
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda item: tasks.complete_many.run(item[1], item[0]), by_tier.items()))
        with session_scope() as session:
            done = session.scalars(select(Job.status).where(Job.id.in_(ids))).all()
        assert list(done) == [JobStatus.SUCCEEDED] * len(ids)
