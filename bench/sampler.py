"""A background thread that samples process RSS (and other gauges) and keeps maxima."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from types import TracebackType

import psutil

from tierroute.devstack.procs import Child

SAMPLE_INTERVAL_S = 0.2
# The stack's children whose memory the Scale issue budgets.
MEASURED = ("api", "worker-classify", "worker-tiers")


def tree_rss_bytes(pid: int) -> int:
    """RSS of a process plus all its descendants (prefork pools, reloaders)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue  # a child that just exited
    return total


class Sampler:
    """Every 0.2 s: RSS per named process tree and any extra gauges; keeps the maxima."""

    def __init__(
        self,
        pids: dict[str, int],
        gauges: dict[str, Callable[[], float]] | None = None,
        interval_s: float = SAMPLE_INTERVAL_S,
    ) -> None:
        self.pids = dict(pids)
        self.gauges = dict(gauges or {})
        self.interval_s = interval_s
        self.rss_max_bytes: dict[str, int] = dict.fromkeys(self.pids, 0)
        self.gauge_max: dict[str, float] = dict.fromkeys(self.gauges, 0.0)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    @classmethod
    def for_children(
        cls, children: Iterable[Child], gauges: dict[str, Callable[[], float]] | None = None
    ) -> Sampler:
        """Sample the API and worker processes among a stack's children."""
        pids = {c.name: c.process.pid for c in children if c.name in MEASURED}
        return cls(pids, gauges)

    def sample_once(self) -> None:
        """Take one sample of every process and gauge."""
        for name, pid in self.pids.items():
            self.rss_max_bytes[name] = max(self.rss_max_bytes[name], tree_rss_bytes(pid))
        for name, read in self.gauges.items():
            try:
                self.gauge_max[name] = max(self.gauge_max[name], float(read()))
            except Exception:
                continue  # a gauge that fails once (e.g. Redis busy) is not fatal
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample_once()

    def rss_figures(self) -> dict[str, float]:
        """Per-process maxima in MB, named rss_mb_max_<process>."""
        return {
            f"rss_mb_max_{name.replace('-', '_')}": round(value / 2**20, 1)
            for name, value in self.rss_max_bytes.items()
        }
