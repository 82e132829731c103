"""Mutable server state: current config, seeded fault and jitter generators, and statistics."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict, deque
from typing import Any

from tierroute.devstack.simulator.config import TIMEOUT_CODE, SimulatorConfig
from tierroute.domain.tiers import TierTable, load_tier_table

# Stats key for requests whose client hung up before the answer was sent.
CLIENT_CLOSED = 499
# Request header naming the calling process (e.g. "tiers-1234"), so a benchmark can
# tell how many calls one worker process keeps in flight.
CLIENT_HEADER = "x-tierroute-client"
# Arrival times kept for GET /_sim/requests (rate-limit tests count calls per window).
ARRIVALS_KEPT = 100_000


class Stats:
    """Request counts by model and status, token totals, and in-flight gauges."""

    def __init__(self) -> None:
        self.by_model: defaultdict[str, defaultdict[int, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.tokens: defaultdict[str, dict[str, int]] = defaultdict(
            lambda: {"input_tokens": 0, "output_tokens": 0}
        )
        self.in_flight = 0
        self.peak_in_flight = 0
        self.in_flight_by_client: defaultdict[str, int] = defaultdict(int)
        self.peak_in_flight_by_client: defaultdict[str, int] = defaultdict(int)
        # (unix time, model) of each /v1/messages request as it arrived.
        self.arrivals: deque[tuple[float, str]] = deque(maxlen=ARRIVALS_KEPT)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy for GET /_sim/stats."""
        by_status: defaultdict[int, int] = defaultdict(int)
        for statuses in self.by_model.values():
            for status, count in statuses.items():
                by_status[status] += count
        return {
            "total": sum(by_status.values()),
            "by_status": {str(s): n for s, n in sorted(by_status.items())},
            "by_model": {
                model: {str(s): n for s, n in sorted(statuses.items())}
                for model, statuses in sorted(self.by_model.items())
            },
            "tokens": {model: dict(t) for model, t in sorted(self.tokens.items())},
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "in_flight_by_client": {
                client: n for client, n in sorted(self.in_flight_by_client.items()) if n
            },
            "peak_in_flight_by_client": dict(sorted(self.peak_in_flight_by_client.items())),
        }


class SimulatorState:
    """Everything a running simulator remembers between requests.

    Handlers run on one event loop, but tests and embedders may call these methods
    from other threads, so every mutation holds a lock (never across an await).
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.initial = config
        self.table: TierTable = load_tier_table(config.tiers_file)
        self._lock = threading.Lock()
        self.config = config
        self.stats = Stats()
        self._sequence_pos = 0
        self._fault_rng = random.Random(config.seed)
        self._jitter_rng = random.Random(config.seed + 1)

    def _restart_generators(self) -> None:
        self._sequence_pos = 0
        self._fault_rng = random.Random(self.config.seed)
        self._jitter_rng = random.Random(self.config.seed + 1)

    def update(self, changes: dict[str, Any]) -> SimulatorConfig:
        """Apply runtime changes (validated); the fault sequence and seeds restart."""
        with self._lock:
            self.config = self.config.updated(changes)
            self._restart_generators()
            return self.config

    def reset(self, *, keep_config: bool = False) -> None:
        """Clear statistics and restart faults; restore the startup config unless kept."""
        with self._lock:
            if not keep_config:
                self.config = self.initial
            old = self.stats
            self.stats = Stats()
            # Requests still running will decrement the gauges when they finish.
            self.stats.in_flight = old.in_flight
            self.stats.in_flight_by_client.update(
                (client, n) for client, n in old.in_flight_by_client.items() if n
            )
            self._restart_generators()

    def next_fault(self, model: str) -> int | None:
        """The status to inject for this request: None = answer, 0 = hang, else an error."""
        with self._lock:
            config = self.config
            if not config.faults_apply_to(model):
                return None
            if self._sequence_pos < len(config.fault_sequence):
                code = config.fault_sequence[self._sequence_pos]
                self._sequence_pos += 1
                return None if code == 200 else code
            if config.total_fault_rate == 0:
                return None
            draw = self._fault_rng.random()
            for code, rate in (
                (429, config.fault_rate_429),
                (529, config.fault_rate_529),
                (500, config.fault_rate_500),
                (TIMEOUT_CODE, config.fault_rate_timeout),
                (400, config.fault_rate_400),
            ):
                if draw < rate:
                    return code
                draw -= rate
            return None

    def latency_s(self, model: str, output_tokens: int) -> float:
        """Seconds to wait before answering: base latency, jitter and per-token time."""
        with self._lock:
            config = self.config
            factor = 1.0
            if config.latency_jitter:
                factor += config.latency_jitter * (2 * self._jitter_rng.random() - 1)
        millis = config.latency_for(model) * factor
        millis += config.latency_per_output_token_ms * output_tokens
        return max(0.0, millis) / 1000.0

    def arrived(self, model: str) -> None:
        """Log a /v1/messages request's arrival time, whatever its outcome."""
        with self._lock:
            self.stats.arrivals.append((time.time(), model))

    def arrival_log(self, model: str | None = None) -> list[tuple[float, str]]:
        """Arrival times (unix seconds) and models, oldest first; one model's if given."""
        with self._lock:
            return [a for a in self.stats.arrivals if model is None or a[1] == model]

    def started(self, client: str | None = None) -> None:
        """A /v1/messages request began: bump the in-flight gauges (also `client`'s)."""
        with self._lock:
            stats = self.stats
            stats.in_flight += 1
            stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
            if client:
                stats.in_flight_by_client[client] += 1
                stats.peak_in_flight_by_client[client] = max(
                    stats.peak_in_flight_by_client[client], stats.in_flight_by_client[client]
                )

    def finished(
        self,
        model: str,
        status: int,
        usage: tuple[int, int] | None = None,
        client: str | None = None,
    ) -> None:
        """A /v1/messages request ended with `status`; `usage` is (input, output) tokens."""
        with self._lock:
            self.stats.in_flight = max(0, self.stats.in_flight - 1)
            if client:
                by_client = self.stats.in_flight_by_client
                by_client[client] = max(0, by_client[client] - 1)
            self.stats.by_model[model][status] += 1
            if usage is not None:
                self.stats.tokens[model]["input_tokens"] += usage[0]
                self.stats.tokens[model]["output_tokens"] += usage[1]

    def snapshot(self) -> dict[str, Any]:
        """Statistics as JSON-ready data."""
        with self._lock:
            return self.stats.snapshot()
