"""(e) memory: peak RSS of the API and of each worker type over benchmarks (a)–(c).

Each of those samples RSS while it runs (bench/sampler.py); this gathers their
maxima from the result files, so it needs no stack of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import Result, read_result

SOURCES = ("pipeline", "latency", "submit")
PREFIX = "rss_mb_max_"


def run(results_dir: Path) -> Result:
    """Maxima per process kind over the (a)–(c) results found in `results_dir`."""
    result = Result("memory")
    per_source: dict[str, dict[str, float]] = {}
    maxima: dict[str, float] = {}
    for source in SOURCES:
        data: dict[str, Any] | None = read_result(results_dir, source)
        if data is None:
            result.notes.append(f"no {source}.json in {results_dir}: not included")
            continue
        rss: dict[str, float] = {}
        for name, value in data["figures"].items():
            # submit also samples the classify worker that runs its feeder phase.
            name = name.removeprefix("feeder_")
            if name.startswith(PREFIX):
                process = name.removeprefix(PREFIX)
                rss[process] = max(rss.get(process, 0.0), float(value))
        per_source[source] = rss
        for process, value in rss.items():
            maxima[process] = max(maxima.get(process, 0.0), value)
    if not maxima:
        raise RuntimeError("memory needs results of pipeline, latency or submit: run those first")
    workers = [v for process, v in maxima.items() if process.startswith("worker_")]
    if "api" in maxima:
        result.figures["api_rss_mb_max"] = maxima["api"]
    if workers:
        result.figures["worker_rss_mb_max"] = max(workers)
    result.figures.update({f"{PREFIX}{process}": v for process, v in sorted(maxima.items())})
    result.settings = {
        "sampled": "RSS of each process and its children, every 0.2 s (psutil)",
        "sources": [s for s in SOURCES if s in per_source],
        "budget_mb_per_worker_process": 300,
    }
    result.details = {"per_benchmark": per_source}
    return result
