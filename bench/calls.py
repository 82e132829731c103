"""(g) calls: CPU per model call in one process, a thread per call against one event loop.

Why tier workers wait for their calls on an event loop (worker/call_loop.py): with
a thread per call, each call gets dearer the more run at once, because every
thread that wakes with an answer queues for the GIL behind the others. Here one
process makes nothing but calls, through the project's own call_model (threads,
16 sync clients, as the tier worker had) and call_model_async (one loop, the tier
worker's 64 async clients), and its CPU time per call is read from
time.process_time. The simulator runs in a child process, so its CPU is not
counted.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx

from bench.config import BenchConfig
from bench.report import Result
from tierroute.config import Settings, default_tier_table
from tierroute.devstack.procs import free_port, start_child, wait_http
from tierroute.domain.status import CallPurpose
from tierroute.llm.provider import (
    build_completion_params,
    call_model,
    call_model_async,
    make_async_clients,
    make_client,
)
from worker.call_loop import ASYNC_CLIENTS

SYNC_CLIENTS = 16
PROMPT = "Explain the difference between TCP and UDP in two sentences."


@dataclass(frozen=True)
class Case:
    """One measurement: `callers` calls kept in flight, each way of waiting."""

    way: str  # "threads" or "loop"
    callers: int
    latency_ms: int

    @property
    def name(self) -> str:
        at = "" if self.latency_ms == 0 else f"_at_{self.latency_ms}ms"
        return f"{self.way}_{self.callers}{at}"


def cases(latency_ms: int, smoke: bool) -> list[Case]:
    """Zero latency (concurrency's own cost), then the latency-hiding benchmark's latency."""
    many, slow = (32, 40) if smoke else (256, 600)
    return [
        Case("threads", 16, 0),
        Case("threads", many, 0),
        Case("loop", many, 0),
        Case("threads", slow, latency_ms),
        Case("loop", slow, latency_ms),
    ]


# Calls ended in the window, its wall seconds, and this process's CPU seconds.
Measured = tuple[int, float, float]


class Window:
    """Counts calls that end between `open` and `close`, with the CPU spent meanwhile."""

    def __init__(self) -> None:
        self.stop = threading.Event()  # the callers end their loops
        self.counting = False
        self.calls = 0
        self._lock = threading.Lock()

    def ended_one(self) -> None:
        if self.counting:
            with self._lock:
                self.calls += 1

    def measure(self, seconds: float) -> Measured:
        self.calls, self.counting = 0, True
        wall, cpu = time.perf_counter(), time.process_time()
        time.sleep(seconds)
        self.counting = False
        return self.calls, time.perf_counter() - wall, time.process_time() - cpu


def _measured(
    threads: list[threading.Thread], window: Window, warm_s: float, seconds: float
) -> Measured:
    """Start the callers, let them warm up, measure, then stop them."""
    for thread in threads:
        thread.start()
    try:
        time.sleep(warm_s)
        return window.measure(seconds)
    finally:
        window.stop.set()
        for thread in threads:
            thread.join()


def _with_threads(
    settings: Settings, params: dict[str, Any], case: Case, warm_s: float, seconds: float
) -> Measured:
    tiers, window = default_tier_table(), Window()
    clients = [make_client(settings) for _ in range(SYNC_CLIENTS)]

    def caller(index: int) -> None:
        client = clients[index % len(clients)]
        while not window.stop.is_set():
            call_model(client, params, purpose=CallPurpose.COMPLETE, tiers=tiers, simulated=True)
            window.ended_one()

    threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(case.callers)]
    try:
        return _measured(threads, window, warm_s, seconds)
    finally:
        for client in clients:
            client.close()


def _on_a_loop(
    settings: Settings, params: dict[str, Any], case: Case, warm_s: float, seconds: float
) -> Measured:
    tiers, window = default_tier_table(), Window()

    async def callers() -> None:
        clients = make_async_clients(settings, ASYNC_CLIENTS)
        turn = itertools.count()

        async def caller() -> None:
            while not window.stop.is_set():
                client = clients[next(turn) % len(clients)]
                await call_model_async(
                    client, params, purpose=CallPurpose.COMPLETE, tiers=tiers, simulated=True
                )
                window.ended_one()

        await asyncio.gather(*(caller() for _ in range(case.callers)))
        for client in clients:
            await client.close()

    loop = threading.Thread(target=asyncio.run, args=(callers(),), daemon=True)
    return _measured([loop], window, warm_s, seconds)


def run(config: BenchConfig) -> Result:
    """Each case in turn against one simulator child; CPU per call of this process."""
    result = Result("calls")
    params = build_completion_params(default_tier_table().get("sonnet"), PROMPT, None, 256)
    warm_s = 1.0 if config.smoke else 3.0
    with tempfile.TemporaryDirectory(prefix="tierroute-bench-") as tmp:
        port = free_port()
        sim = start_child(
            "simulator",
            [sys.executable, "-m", "tierroute", "sim", "--port", str(port)],
            {},
            Path(tmp),
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{base_url}/_sim/stats", sim)
            settings = Settings().model_copy(
                update={"anthropic_api_key": None, "anthropic_base_url": base_url}
            )
            for case in cases(config.latency_ms, config.smoke):
                httpx.post(
                    f"{base_url}/_sim/config",
                    json={"default_latency_ms": case.latency_ms},
                    timeout=10,
                ).raise_for_status()
                way = _with_threads if case.way == "threads" else _on_a_loop
                calls, wall_s, cpu_s = way(settings, params, case, warm_s, config.calls_seconds)
                result.figures[f"calls_cpu_ms_{case.name}"] = 1000 * cpu_s / max(calls, 1)
                result.figures[f"calls_per_s_{case.name}"] = calls / wall_s
        finally:
            sim.stop()
    result.settings = {
        "seconds_per_case": config.calls_seconds,
        "latency_ms": config.latency_ms,
        "warmup_s": warm_s,
        "sync_clients": SYNC_CLIENTS,
        "async_clients": ASYNC_CLIENTS,
        "sdk": anthropic.__version__,
        "cases": [case.name for case in cases(config.latency_ms, config.smoke)],
    }
    result.notes.append(
        "calls_cpu_ms_* is this process's CPU per call (the simulator runs in a child): "
        "threads_N makes calls on N threads, loop_N keeps N calls in flight on one event loop"
    )
    return result
