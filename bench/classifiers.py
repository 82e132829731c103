"""(f) classifiers: per-prompt latency p50/p99, memory, and API calls per 1,000 prompts.

Compares the local router, the hybrid one and the Haiku (llm) classifier, the last two
against the in-process simulator with no added latency: their figures are a floor, a
real API adds its own round trip to every call they make. The prompts are the rubric
set and the demo's sample set, cycled to `classifier_prompts`.
"""

from __future__ import annotations

import gc
import json
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from bench.config import BenchConfig
from bench.report import Result
from tierroute.classify import Classifier, build_classifier
from tierroute.config import Settings, default_tier_table
from tierroute.devstack.simulator import SimulatorConfig, serve_in_thread
from tierroute.llm.provider import make_client
from tierroute.training.datasets import load_rubric

CLASSIFIERS = ("local", "hybrid", "llm")
WARMUP = 20


def bench_prompts(count: int) -> list[str]:
    """Rubric and sample prompts, cycled to `count`."""
    prompts = [i.prompt for i in load_rubric()]
    sample = resources.files("tierroute") / "data" / "sample_prompts.jsonl"
    prompts += [json.loads(line)["prompt"] for line in sample.read_text().splitlines() if line]
    return [prompts[i % len(prompts)] for i in range(count)]


def _rss_mb() -> float:
    gc.collect()
    return float(psutil.Process().memory_info().rss) / 2**20


def measure(classifier: Classifier, prompts: list[str]) -> dict[str, float]:
    """Latency percentiles, calls per 1,000 prompts and the share escalated (hybrid)."""
    for prompt in prompts[:WARMUP]:
        classifier.classify(prompt)
    times, calls, asked = [], 0, 0
    for prompt in prompts:
        started = time.perf_counter()
        decision = classifier.classify(prompt)
        times.append(time.perf_counter() - started)
        calls += decision.call is not None
        asked += "asked llm" in decision.reasoning
    ms = np.asarray(times) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "api_calls_per_1000": 1000 * calls / len(prompts),
        "llm_asked_share": asked / len(prompts),
    }


def run(config: BenchConfig) -> Result:
    """Each classifier over the same prompts, one after the other, in this process."""
    result = Result("classifiers")
    prompts = bench_prompts(config.classifier_prompts)
    tiers = default_tier_table()
    details: dict[str, Any] = {}
    # An empty router dir: every run measures the artifact shipped in the package.
    with serve_in_thread(SimulatorConfig()) as sim, tempfile.TemporaryDirectory() as empty:
        base = Settings().model_copy(
            update={
                "anthropic_api_key": None,
                "anthropic_base_url": sim.base_url,
                "router_dir": Path(empty),
            }
        )
        client = make_client(base)
        try:
            for name in CLASSIFIERS:
                before = _rss_mb()
                settings = base.model_copy(update={"classifier": name})
                classifier = build_classifier(settings, tiers, client)
                loaded = _rss_mb()
                figures = measure(classifier, prompts)
                figures["rss_mb_to_load"] = max(0.0, loaded - before)
                for key, value in figures.items():
                    if key != "llm_asked_share" or name == "hybrid":
                        result.figures[f"{name}_{key}"] = value
                details[name] = {"version": getattr(classifier, "version", None)}
        finally:
            client.close()
    result.figures["process_rss_mb"] = _rss_mb()
    result.settings = {
        "prompts": len(prompts),
        "warmup_prompts": WARMUP,
        "classifiers": list(CLASSIFIERS),
        "llm_backend": "in-process simulator, no added latency (a floor for llm and hybrid)",
        "hybrid_confidence": base.hybrid_confidence,
        "confidence_threshold": base.confidence_threshold,
    }
    result.details = details
    result.notes.append(
        "latency is per decision in one thread; llm and hybrid include the SDK round trip "
        "to the in-process simulator, and a real API adds its own latency to each call"
    )
    return result
