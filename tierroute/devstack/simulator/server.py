"""Run the simulator: blocking under uvicorn (CLI), or in a background thread (tests)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from tierroute.devstack.simulator.app import create_app
from tierroute.devstack.simulator.config import SimulatorConfig
from tierroute.devstack.simulator.state import SimulatorState

# Benchmarks hold hundreds of connections open; uvicorn's default backlog is enough,
# but never let it cap concurrency.
_BACKLOG = 4096
# Idle connections stay open as behind a typical load balancer (uvicorn's default is
# 5 s, the same as the client's keep-alive expiry: a client reusing a connection the
# server is closing at that moment sees "connection failed").
_KEEP_ALIVE_S = 75


def run_simulator(
    host: str = "127.0.0.1", port: int = 8765, config: SimulatorConfig | None = None
) -> None:
    """Serve the simulated Messages API until interrupted (used by `tierroute sim`)."""
    app = create_app(config)
    print(f"tierroute simulator (SIMULATED Anthropic API) on http://{host}:{port}", flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        backlog=_BACKLOG,
        timeout_keep_alive=_KEEP_ALIVE_S,
        timeout_graceful_shutdown=2,
    )


@dataclass
class RunningSimulator:
    """A simulator served from a background thread; `state` allows direct inspection."""

    base_url: str
    state: SimulatorState

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change runtime settings, as POST /_sim/config does."""
        return self.state.update(changes)

    def reset(self, *, keep_config: bool = False) -> None:
        """Clear stats and faults, as POST /_sim/reset does."""
        self.state.reset(keep_config=keep_config)

    def stats(self) -> dict[str, Any]:
        """The same data as GET /_sim/stats."""
        return self.state.snapshot()


@contextmanager
def serve_in_thread(
    config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningSimulator]:
    """Start a simulator on `port` (0 = any free port) in a thread; stop it on exit."""
    app = create_app(config)
    # Binding here, before uvicorn starts, gives the real port with no race.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            backlog=_BACKLOG,
            timeout_keep_alive=_KEEP_ALIVE_S,
            timeout_graceful_shutdown=1,
            lifespan="off",
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="tierroute-sim", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("simulator failed to start")
        time.sleep(0.01)
    try:
        yield RunningSimulator(base_url=f"http://{host}:{bound_port}", state=app.state.sim)
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
