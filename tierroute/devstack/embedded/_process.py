"""Helpers shared by the embedded launchers: ports, log tails, leftover processes, locks."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
from pathlib import Path
from typing import IO

import psutil

from tierroute.domain.errors import ConfigurationError

LOG = logging.getLogger("tierroute.devstack.embedded")
LOCALHOST = "127.0.0.1"
# Enough of a log to show why a server died without flooding the terminal.
TAIL_LINES = 40


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, host: str = LOCALHOST, timeout_s: float = 0.2) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def file_size(path: Path) -> int:
    """Size of a file, 0 if it does not exist (marks where this run's log starts)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def log_tail(path: Path, offset: int = 0, lines: int = TAIL_LINES) -> str:
    """The last lines a log gained after offset, for error messages."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    if not text.strip() and offset:
        # Nothing new (e.g. the binary died before logging): older lines still help.
        return log_tail(path, 0, lines)
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def owned_process(pid: int | None, name: str, workdir: Path) -> psutil.Process | None:
    """The live process `pid` if it is a `name` server working in `workdir`, else None."""
    # Pid files outlive their servers and pids get reused (often in containers), so a
    # pid alone is no proof; both servers chdir into their data dir, which is.
    if pid is None or pid == os.getpid():
        return None
    try:
        proc = psutil.Process(pid)
        if proc.name() != name:
            return None
        if Path(proc.cwd()).resolve() != workdir.resolve():
            return None
        return proc
    except (psutil.Error, OSError):
        return None


def terminate(
    proc: psutil.Process, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 10.0
) -> None:
    """Send sig (SIGTERM by default), then SIGKILL the process if it outlives timeout_s."""
    try:
        proc.send_signal(sig)
        proc.wait(timeout_s)
    except psutil.TimeoutExpired:
        LOG.warning("pid %s ignored %s for %.0f s; killing it", proc.pid, sig.name, timeout_s)
        proc.kill()
        proc.wait(timeout_s)
    except psutil.NoSuchProcess:
        pass


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file, None if absent or unreadable."""
    try:
        return int(path.read_text().split("\n", 1)[0].strip())
    except (OSError, ValueError):
        return None


class DataDirLock:
    """An exclusive flock held while we own a server; the kernel drops it if we die."""

    # Holding it proves that a server still running on the data dir is the orphan of a
    # dead process, so it is safe to stop; failing to get it means a live process owns
    # that server and we must not touch it.

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise ConfigurationError naming the holder."""
        if self._fh is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise ConfigurationError(
                f"{self.what} under {self.path.parent} is in use (by pid {holder}); "
                "stop that process, use another TIERROUTE_DATA_DIR, "
                "or point TIERROUTE_DATABASE_URL / TIERROUTE_BROKER_URL at running services"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fh is None:
            return
        try:
            self._fh.seek(0)
            self._fh.truncate()
            fcntl.flock(self._fh, fcntl.LOCK_UN)
        finally:
            self._fh.close()
            self._fh = None
