"""A Messages-API-compatible HTTP server that stands in for Anthropic offline.

Answers are deterministic and labelled "[simulated <model>]"; latency and faults
(429 with retry-after, 529, 500, timeouts, 400) are configurable per model.
"""

from __future__ import annotations

from tierroute.devstack.simulator.app import create_app
from tierroute.devstack.simulator.config import SimulatorConfig
from tierroute.devstack.simulator.rubric import Classification, classify
from tierroute.devstack.simulator.server import RunningSimulator, run_simulator, serve_in_thread

__all__ = [
    "Classification",
    "RunningSimulator",
    "SimulatorConfig",
    "classify",
    "create_app",
    "run_simulator",
    "serve_in_thread",
]
