"""CPU seconds spent per process during a run: what each job costs the machine.

Throughput on a shared 2-core machine is noisy; CPU time per job is much less so,
and it says where a job's cost goes (API, workers, simulator, Postgres, Redis).
"""

from __future__ import annotations

from collections.abc import Iterable

import psutil

from tierroute.devstack.procs import Child

# Servers that run outside the stack but do work for every job.
SERVERS = {"postgres": "postgres", "redis-server": "redis"}


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _cpu_seconds(procs: Iterable[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue  # exited, or not ours to read
        total += times.user + times.system
    return total


class CpuMeter:
    """Snapshots of CPU time by stack child and by server; deltas per job."""

    def __init__(self, children: Iterable[Child]) -> None:
        self.pids = {c.name: c.process.pid for c in children}
        self._start: dict[str, float] = {}

    def snapshot(self) -> dict[str, float]:
        """CPU seconds so far of each child's process tree and of each server."""
        seconds = {name: _cpu_seconds(_tree(pid)) for name, pid in self.pids.items()}
        servers: dict[str, list[psutil.Process]] = {label: [] for label in SERVERS.values()}
        for proc in psutil.process_iter(["name"]):
            label = SERVERS.get(proc.info["name"] or "")
            if label is not None:
                servers[label].append(proc)
        seconds.update({label: _cpu_seconds(procs) for label, procs in servers.items()})
        return seconds

    def start(self) -> None:
        self._start = self.snapshot()

    def ms_per_job(self, jobs: int) -> dict[str, float]:
        """CPU milliseconds per job since `start`, by process, plus their total.

        Server processes started meanwhile (new Postgres backends) count from zero,
        which is right: all their CPU time was spent during the run.
        """
        end = self.snapshot()
        per_job = {
            name: round(max(0.0, end[name] - self._start.get(name, 0.0)) * 1000 / max(jobs, 1), 3)
            for name in end
        }
        per_job["total"] = round(sum(per_job.values()), 3)
        return per_job
