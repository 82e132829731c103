"""What the numbers were measured on: CPU, memory, Python, OS, commit, and how busy."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    # Read-only queries; a tarball without .git simply has no commit.
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def load_average() -> float:
    """The 1-minute load average: above ~0.5 before a run, others are using the CPUs."""
    return round(os.getloadavg()[0], 2)


# Shared servers: their CPU is partly ours (our queries) and partly others'; not counted.
SHARED_SERVERS = ("postgres", "redis-server")


def _foreign_cpu() -> dict[tuple[int, float], float]:
    """CPU seconds so far of every process that is neither ours nor a shared server."""
    me = os.getpid()
    seen: dict[tuple[int, float], float] = {}
    for proc in psutil.process_iter(["pid", "name", "create_time", "cpu_times"]):
        try:
            info = proc.info
            if info["pid"] == me or (info["name"] or "").startswith(SHARED_SERVERS):
                continue
            if any(parent.pid == me for parent in proc.parents()):
                continue
            times = info["cpu_times"]
            seen[(info["pid"], info["create_time"])] = times.user + times.system
        except (psutil.Error, AttributeError, TypeError):
            continue
    return seen


class CpuWatch:
    """How many cores other people's processes kept busy while a benchmark ran.

    The load average counts our own workers too; this counts only processes that
    are not descendants of this one (Postgres and Redis excluded, being shared).
    """

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.before = _foreign_cpu()

    def others_cores(self) -> float:
        """Average cores used by others since construction."""
        after = _foreign_cpu()
        used = sum(cpu - self.before.get(key, 0.0) for key, cpu in after.items())
        return round(max(0.0, used) / max(time.monotonic() - self.started, 1e-6), 2)


def machine_info() -> dict[str, Any]:
    """The machine block every result file carries."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "git_commit": commit,
        # Benchmarks run on working trees too; say when the commit is not the whole story.
        "git_dirty": bool(status) if status is not None else None,
    }
