"""The embedded default really starts Postgres and Redis, and never leaves them behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

import tierroute
from tierroute.devstack.embedded import EmbeddedPostgres, EmbeddedRedis, embedded_services
from tierroute.devstack.embedded._process import port_is_open, read_pid
from tierroute.domain.errors import ConfigurationError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh data dir outside pytest's tmp root."""
    # As root, Postgres runs as a system user that must traverse the data dir's parents,
    # and every pytest session re-chmods /tmp/pytest-of-<user> to 0700 when it starts: a
    # concurrent pytest run would lock our server out of its own files.
    path = Path(tempfile.mkdtemp(prefix="tierroute-embedded-test-"))
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _gone(pid: int) -> bool:
    # The postmaster is reparented to init once pg_ctl exits; a zombie awaiting reaping is gone.
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_start_use_stop_then_reuse_the_cluster(data_dir: Path) -> None:
    with embedded_services(data_dir) as urls:
        assert urls.database_url is not None and urls.broker_url is not None
        assert urls.database_url.startswith("postgresql+psycopg://postgres:")
        assert "@127.0.0.1:" in urls.database_url
        assert urls.database_url.endswith("/tierroute")
        assert urls.broker_url.startswith("redis://127.0.0.1:") and urls.broker_url.endswith("/0")
        with psycopg.connect(_libpq(urls.database_url), autocommit=True) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
            assert conn.execute("select current_database()").fetchone() == ("tierroute",)
            conn.execute("create table survives_restart (id int)")
        assert redis.Redis.from_url(urls.broker_url).ping()
        pg_pid = read_pid(data_dir / "postgres" / "postmaster.pid")
        redis_pid = read_pid(data_dir / "redis" / "redis.pid")
        assert pg_pid is not None and redis_pid is not None
        ports = [_port(urls.database_url), _port(urls.broker_url)]

    assert not any(port_is_open(port) for port in ports)
    assert _wait_gone(pg_pid) and _wait_gone(redis_pid)
    assert not (data_dir / "postgres" / "postmaster.pid").exists()

    # Warm start: the initialised cluster (and its data) is reused.
    with embedded_services(data_dir) as urls:
        assert urls.database_url is not None and urls.broker_url is not None
        with psycopg.connect(_libpq(urls.database_url)) as conn:
            assert conn.execute("select count(*) from survives_restart").fetchone() == (0,)
        assert redis.Redis.from_url(urls.broker_url).ping()
        ports = [_port(urls.database_url), _port(urls.broker_url)]
    assert not any(port_is_open(port) for port in ports)


def test_services_stop_when_the_block_raises(data_dir: Path) -> None:
    ports: list[int] = []
    with pytest.raises(RuntimeError, match="boom"), embedded_services(data_dir) as urls:
        assert urls.database_url is not None and urls.broker_url is not None
        ports += [_port(urls.database_url), _port(urls.broker_url)]
        raise RuntimeError("boom")
    assert len(ports) == 2
    assert not any(port_is_open(port) for port in ports)


def test_only_what_is_needed_starts(data_dir: Path) -> None:
    with embedded_services(data_dir, need_postgres=False) as urls:
        assert urls.database_url is None and urls.broker_url is not None
    assert not (data_dir / "postgres").exists()


_ORPHAN_MAKER = """
import json, sys, time
from pathlib import Path
from tierroute.devstack.embedded import EmbeddedPostgres, EmbeddedRedis
pg = EmbeddedPostgres(Path(sys.argv[1]))
rd = EmbeddedRedis(Path(sys.argv[1]))
print(json.dumps([pg.start(), rd.start()]), flush=True)
time.sleep(600)
"""


def test_servers_a_killed_process_left_are_stopped_on_next_start(data_dir: Path) -> None:
    # The child must import this checkout of tierroute, installed or not.
    source_root = str(Path(tierroute.__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([source_root, os.environ.get("PYTHONPATH", "")]),
    }
    maker = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_MAKER, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert maker.stdout is not None
        old_pg_url, old_redis_url = json.loads(maker.stdout.readline())
        old_pg_pid = read_pid(data_dir / "postgres" / "postmaster.pid")
        old_redis_pid = read_pid(data_dir / "redis" / "redis.pid")
        assert old_pg_pid is not None and old_redis_pid is not None
        # While the owner lives, its servers are not ours to touch.
        with pytest.raises(ConfigurationError, match="in use"):
            EmbeddedRedis(data_dir).start()
    finally:
        os.kill(maker.pid, signal.SIGKILL)
        maker.wait()
    assert port_is_open(_port(old_pg_url)) and port_is_open(_port(old_redis_url))

    with EmbeddedPostgres(data_dir) as pg, EmbeddedRedis(data_dir) as rd:
        assert _wait_gone(old_pg_pid) and _wait_gone(old_redis_pid)
        assert not port_is_open(_port(old_pg_url)) and not port_is_open(_port(old_redis_url))
        assert pg.url is not None and rd.url is not None
        with psycopg.connect(_libpq(pg.url)) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        assert redis.Redis.from_url(rd.url).ping()


def test_redis_on_a_taken_port_fails_with_its_log(data_dir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        embedded = EmbeddedRedis(data_dir, port=port)
        with pytest.raises(ConfigurationError, match="Address already in use"):
            embedded.start()
    assert embedded.url is None
    assert not (data_dir / "redis" / "redis.pid").exists()


def test_postgres_that_cannot_start_fails_with_its_log(data_dir: Path) -> None:
    embedded = EmbeddedPostgres(data_dir, settings={"shared_buffers": "lots"})
    with pytest.raises(ConfigurationError, match="failed to start") as failure:
        embedded.start()
    assert 'invalid value for parameter "shared_buffers"' in failure.value.detail
    assert embedded.url is None
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
