"""The fixed-rate load tool: loadtest (npm), driven through bench/tools/loadgen.mjs."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from bench.machine import REPO_ROOT

TOOLS_DIR = REPO_ROOT / "bench" / "tools"
LOADGEN = TOOLS_DIR / "loadgen.mjs"
INSTALL = REPO_ROOT / "bench" / "install-tools.sh"


@dataclass(frozen=True)
class LoadResult:
    """Requests sent at a fixed rate, and the latency distribution in milliseconds."""

    requests: int
    errors: int
    error_codes: dict[str, int]
    seconds: float
    achieved_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    raw: dict[str, Any]


def ensure_tools() -> None:
    """Run bench/install-tools.sh (idempotent), so a fresh checkout can benchmark."""
    if shutil.which("node") is None:
        raise RuntimeError("node is not on PATH; the API benchmark's load tool needs Node.js")
    subprocess.run(["bash", str(INSTALL)], check=True, cwd=REPO_ROOT)


def percentile_ms(histogram: dict[int, int], fraction: float) -> float:
    """Nearest-rank percentile of a whole-millisecond histogram, at the bucket's middle.

    loadtest floors each latency to a whole millisecond, so a bucket `m` holds
    [m, m + 1) ms; its middle is the least biased single value.
    """
    total = sum(histogram.values())
    if total == 0:
        return 0.0
    rank = max(1, math.ceil(round(fraction * total, 6)))
    seen = 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= rank:
            return ms + 0.5
    return max(histogram) + 0.5


def run_load(url: str, rate: int, seconds: int, api_key: str | None = None) -> LoadResult:
    """GET `url` at `rate` requests per second for `seconds`, open loop."""
    # The key goes through the environment, not argv, where `ps` would show it.
    env = {**os.environ, "LOADGEN_AUTHORIZATION": f"Bearer {api_key}" if api_key else ""}
    out = subprocess.run(
        ["node", str(LOADGEN), url, str(rate), str(seconds)],
        cwd=TOOLS_DIR,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
        env=env,
    )
    raw: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    histogram = {int(ms): int(n) for ms, n in raw["histogramMs"].items()}
    elapsed = float(raw["elapsedSeconds"]) or float(seconds)
    return LoadResult(
        requests=int(raw["totalRequests"]),
        errors=int(raw["totalErrors"]),
        error_codes={str(k): int(v) for k, v in raw["errorCodes"].items()},
        seconds=elapsed,
        achieved_rps=int(raw["totalRequests"]) / elapsed,
        p50_ms=percentile_ms(histogram, 0.50),
        p90_ms=percentile_ms(histogram, 0.90),
        p99_ms=percentile_ms(histogram, 0.99),
        max_ms=float(raw["maxLatencyMs"]),
        raw=raw,
    )
