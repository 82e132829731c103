"""The benchmarks' pure parts: percentiles, peaks, queue arithmetic, the memory roll-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import memory
from bench.flower import flower_counts
from bench.latency import peak_for
from bench.loadgen import percentile_ms
from bench.redisq import QueueSnapshot
from bench.report import Result, format_table, write_result


def test_percentiles_use_nearest_rank_at_bucket_middles() -> None:
    histogram = {2: 50, 3: 40, 9: 9, 40: 1}  # 100 requests, floored to whole ms
    assert percentile_ms(histogram, 0.50) == 2.5
    assert percentile_ms(histogram, 0.90) == 3.5
    assert percentile_ms(histogram, 0.99) == 9.5
    assert percentile_ms(histogram, 1.0) == 40.5
    assert percentile_ms({}, 0.99) == 0.0


def test_inflight_peak_is_the_busiest_tier_process() -> None:
    stats = {"peak_in_flight_by_client": {"tiers-1": 480, "tiers-2": 510, "classify-3": 600}}
    assert peak_for(stats, "tiers-") == 510
    assert peak_for(stats, "classify-") == 600
    assert peak_for({"peak_in_flight": 9}, "tiers-") is None


def test_bytes_per_message_counts_unacked_messages_too() -> None:
    before = QueueSnapshot(used_memory=1_000, depth=0, unacked=0, key_bytes=0)
    after = QueueSnapshot(used_memory=13_000, depth=8, unacked=2, key_bytes=11_000)
    assert after.per_message(before) == (10, 1200.0, 1100.0)
    assert before.per_message(before) == (0, None, None)


def test_flower_counts_sum_task_events_over_workers_and_task_names() -> None:
    text = "\n".join(
        [
            "# HELP flower_events_total Number of events",
            "# TYPE flower_events_total counter",
            'flower_events_total{task="tierroute.classify",type="task-received",worker="a"} 4.0',
            'flower_events_total{task="tierroute.complete",type="task-received",worker="b"} 6.0',
            'flower_events_total{task="tierroute.complete",type="task-succeeded",worker="b"} 5.0',
            'flower_events_total{task="tierroute.classify",type="task-failed",worker="a"} 1.0',
            'flower_events_total{task="tierroute.classify",type="task-started",worker="a"} 4.0',
            "# TYPE flower_worker_online gauge",
            'flower_worker_online{worker="a"} 1.0',
        ]
    )
    counts = flower_counts(text + "\n")
    assert (counts.received, counts.finished) == (10, 6)
    assert flower_counts("") == type(counts)(received=0, finished=0)


def _write(results_dir: Path, name: str, figures: dict[str, float]) -> None:
    write_result(Result(name, figures=figures), results_dir)


def test_memory_takes_maxima_over_benchmarks(tmp_path: Path) -> None:
    _write(tmp_path, "pipeline", {"rss_mb_max_api": 120, "rss_mb_max_worker_tiers": 150})
    _write(tmp_path, "latency", {"rss_mb_max_api": 110, "rss_mb_max_worker_tiers": 290})
    _write(tmp_path, "submit", {"rss_mb_max_api": 400, "feeder_rss_mb_max_worker_classify": 160})
    result = memory.run(tmp_path)
    assert result.figures["api_rss_mb_max"] == 400
    assert result.figures["worker_rss_mb_max"] == 290
    assert result.figures["rss_mb_max_worker_classify"] == 160


def test_memory_without_sources_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="run those first"):
        memory.run(tmp_path)


def test_result_file_and_table(tmp_path: Path) -> None:
    path, data = write_result(
        Result("api", figures={"api_p99_ms": 9.5, "api_errors": 0}, notes=["busy"]), tmp_path
    )
    assert json.loads(path.read_text())["figures"] == {"api_p99_ms": 9.5, "api_errors": 0}
    assert not list(tmp_path.glob("*.tmp"))
    table = format_table([data])
    assert "* api_p99_ms" in table and "  api_errors" in table and "note [api]: busy" in table
