"""The classifiers benchmark at smoke size: its file, figures and settings (never timings)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.config import BenchConfig
from bench.report import DEFAULT_RESULTS_DIR
from bench.runner import run_benchmarks


def test_classifiers_benchmark_writes_its_figures(tmp_path: Path) -> None:
    before = sorted(DEFAULT_RESULTS_DIR.glob("*.json"))
    results, errors = run_benchmarks(BenchConfig.smoke_sized(results_dir=tmp_path), ["classifiers"])
    assert errors == {} and sorted(DEFAULT_RESULTS_DIR.glob("*.json")) == before
    data = json.loads((tmp_path / "classifiers.json").read_text())
    assert results == [data]
    assert {"figures", "machine", "date", "settings"} <= set(data)
    assert data["settings"]["smoke"] is True and data["settings"]["prompts"] == 60
    figures = data["figures"]
    for name in ("local", "hybrid", "llm"):
        for figure in ("p50_ms", "p99_ms", "api_calls_per_1000", "rss_mb_to_load"):
            value = figures[f"{name}_{figure}"]
            assert isinstance(value, int | float) and math.isfinite(value) and value >= 0
    assert figures["local_api_calls_per_1000"] == 0
    assert figures["llm_api_calls_per_1000"] == 1000
    assert (
        abs(figures["hybrid_api_calls_per_1000"] - 1000 * figures["hybrid_llm_asked_share"]) < 0.2
    )
