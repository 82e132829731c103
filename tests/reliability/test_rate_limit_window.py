"""60 requests a minute for one model, shared by three tier worker processes: no 60 s
window at the (simulated) API holds more than 60 calls, and the limit is used."""

from __future__ import annotations

import bisect
import json

import httpx
import pytest

from tests.conftest import Services
from tests.reliability.conftest import (
    MODELS,
    assert_all_succeeded_once,
    latency_env,
    prompts,
    reliability_stack,
    submit_batch,
    wait_for_batch,
)

pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.slow]

RPM = 60
WINDOW_S = 60.0
# More jobs than two minutes of the limit, so the workers always have one waiting.
JOBS = 130


def max_in_window(times: list[float], window_s: float) -> int:
    """The most calls any window [t, t + window_s) holds (it suffices to start at calls)."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + window_s) - i for i, t in enumerate(ordered)), default=0
    )


def test_max_in_window_counts_half_open_windows() -> None:
    assert max_in_window([0.0, 30.0, 59.9, 60.0, 120.0], 60.0) == 3  # 60.0 starts a new one
    assert max_in_window([], 60.0) == 0


def test_three_workers_share_60_rpm_and_use_it(services: Services) -> None:
    model = MODELS["haiku"]
    with reliability_stack(
        services.database_url,
        services.broker_url,
        env={"TIERROUTE_RATE_LIMIT_OVERRIDES": json.dumps({"haiku": {"rpm": RPM}})},
        simulator_env=latency_env(haiku=200),
        tier_workers=3,
        tier_concurrency=8,
        classify_concurrency=4,
    ) as (stack, _):
        assert sum(c.name.startswith("worker-tiers") for c in stack.children) == 3
        # Forced to one model: no classifier calls, every call is a completion.
        batch_id = submit_batch(stack, prompts(JOBS, force_tier="haiku"))
        wait_for_batch(
            services.database_url, batch_id, JOBS, timeout_s=JOBS * 60 / RPM + 60, stack=stack
        )
        assert_all_succeeded_once(services.database_url, batch_id, JOBS)
        log = httpx.get(
            f"{stack.simulator_url}/_sim/requests", params={"model": model}, timeout=10
        ).json()["requests"]
    arrivals = [float(r["t"]) for r in log]
    assert len(arrivals) == JOBS  # one call per job: waiting never made a call
    busiest = max_in_window(arrivals, WINDOW_S)
    span = max(arrivals) - min(arrivals)
    per_minute = (len(arrivals) - 1) / span * 60
    print(
        f"\n{len(arrivals)} calls over {span:.1f}s: busiest {WINDOW_S:.0f}s window {busiest}, "
        f"{per_minute:.1f} calls/min = {per_minute / RPM:.1%} of the limit"
    )
    assert busiest <= RPM
    assert per_minute >= 0.9 * RPM
    # The pacing holds at the start too: the first minute is not a burst.
    assert max_in_window(arrivals, 10.0) <= RPM * 10 / WINDOW_S + 1
