"""Every benchmark at smoke size, so none can rot. Figures are checked, never timings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.adversarial import pathological_prompt
from bench.backing import Backing
from bench.calls import cases as calls_cases
from bench.config import BenchConfig
from bench.report import DEFAULT_RESULTS_DIR, REQUIRED_FIGURES
from bench.runner import BENCHMARKS, run_benchmarks
from tests.conftest import Services

# Every benchmark runs once in the first test's setup, the rollups comparison's four
# pipeline runs, prune's three and flower's three batches included: minutes, not the
# suite's five-minute default per test.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def smoke_results(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run all benchmarks once at smoke size into a temp dir (never bench/results)."""
    results_dir = tmp_path_factory.mktemp("bench-results")
    backing = Backing(database_url=services.database_url, broker_url=services.broker_url)
    before = sorted(DEFAULT_RESULTS_DIR.glob("*.json"))
    before_mtimes = [p.stat().st_mtime for p in before]
    _, errors = run_benchmarks(BenchConfig.smoke_sized(results_dir=results_dir), backing=backing)
    assert errors == {}
    assert sorted(DEFAULT_RESULTS_DIR.glob("*.json")) == before
    assert [p.stat().st_mtime for p in before] == before_mtimes
    return results_dir


def test_every_benchmark_writes_its_file(smoke_results: Path) -> None:
    for name in BENCHMARKS:
        data = json.loads((smoke_results / f"{name}.json").read_text())
        assert data["name"] == name
        assert {"figures", "machine", "date", "settings"} <= set(data)
        assert data["settings"]["smoke"] is True
        assert {"cpu", "cores", "memory_gib", "python", "os", "git_commit"} <= set(data["machine"])


@pytest.mark.parametrize("figure", sorted(REQUIRED_FIGURES))
def test_required_figure_is_a_positive_number(smoke_results: Path, figure: str) -> None:
    data = json.loads((smoke_results / f"{REQUIRED_FIGURES[figure]}.json").read_text())
    value = data["figures"][figure]
    assert isinstance(value, int | float) and not isinstance(value, bool)
    assert math.isfinite(value) and value > 0


def test_ratios_are_reported(smoke_results: Path) -> None:
    figures: dict[str, float] = {}
    for name in ("pipeline", "latency", "submit"):
        figures |= json.loads((smoke_results / f"{name}.json").read_text())["figures"]
    for ratio in (
        "pipeline_to_floor_ratio",
        "latency_to_pipeline_ratio",
        "submit_speedup_vs_naive",
        "submit_anthropic_to_plain_ratio",
    ):
        assert figures[ratio] > 0


@pytest.mark.parametrize("name", ["pipeline", "latency"])
def test_cpu_per_job_is_split_by_process(smoke_results: Path, name: str) -> None:
    data = json.loads((smoke_results / f"{name}.json").read_text())
    split = data["details"]["pipeline"]["cpu_ms_per_job"]
    # Every stack process spent CPU on the batch.
    for process in ("api", "worker-classify", "worker-tiers", "simulator"):
        assert split[process] > 0, process
    # The servers outside it are measured too. At smoke size Postgres may spend less
    # than one 10 ms clock tick on the batch (a chunk of jobs is routed with two
    # statements), so only that it was measured is checked here.
    for server in ("postgres", "redis"):
        assert split[server] >= 0, server
    assert data["figures"]["cpu_ms_per_job"] == pytest.approx(split["total"], rel=0.01)
    assert split["total"] >= sum(v for k, v in split.items() if k != "total") - 0.01


def test_calls_benchmark_measures_cpu_per_call_for_each_case(smoke_results: Path) -> None:
    data = json.loads((smoke_results / "calls.json").read_text())
    names = [case.name for case in calls_cases(data["settings"]["latency_ms"], smoke=True)]
    assert data["settings"]["cases"] == names and len(set(names)) == 5
    for name in names:
        # Every case made calls, through the real SDK to the simulator child.
        assert data["figures"][f"calls_per_s_{name}"] > 0
        cpu_ms = data["figures"][f"calls_cpu_ms_{name}"]
        assert isinstance(cpu_ms, int | float) and math.isfinite(cpu_ms) and cpu_ms > 0


def test_adversarial_run_answers_every_attacker(smoke_results: Path) -> None:
    data = json.loads((smoke_results / "adversarial.json").read_text())
    figures, details = data["figures"], data["details"]
    assert figures["healthz_requests"] > 0 and figures["healthz_failures"] == 0
    # The acceptance line's count (the p99 is a timing: bench/README.md has it).
    assert figures["idle_in_transaction_after_settle"] == 0
    assert details["verdict"]["idle in transaction 5 s after == 0"] is True
    # Readers that read got the results stream; the silent ones stayed connected.
    readers = details["readers"]
    assert len(readers) == data["settings"]["readers"]
    assert all(r["status"] == "HTTP/1.1 200 OK" for r in readers if r["reads"])
    assert all(r["error"] == "" for r in readers)
    # The unauthenticated body is refused from its headers.
    assert details["unauth_body"]["status"] == 401
    prompt = details["pathological_prompt"]
    assert (prompt["route_status"], prompt["job_status"]) == (200, "succeeded")


def test_pathological_prompt_is_all_newlines_but_one_letter() -> None:
    text = pathological_prompt(800_000)
    assert len(text) == 800_000 and text.count("\n") == 799_999 and text.endswith("x")


def test_growth_times_a_bulk_submit_empty_and_at_each_size(smoke_results: Path) -> None:
    data = json.loads((smoke_results / "growth.json").read_text())
    figures, sizes = data["figures"], data["details"]["sizes"]
    labels = [f"{n / 1e6:g}m" for n in data["settings"]["sizes"]]
    for label in ["empty", *labels]:
        assert figures[f"submit_10k_s_{label}"] > 0, label
    assert figures[f"submit_10k_s_{labels[-1]}_vs_empty"] > 0
    # The submitted batches were deleted: each size holds exactly the jobs it filled,
    # its spread jobs and the one big batch on top.
    big = data["settings"]["big_batch"]
    assert [size["jobs"] - big for size in sizes] == data["settings"]["sizes"]
    assert [size["spread_jobs"] for size in sizes] == data["settings"]["sizes"]


def test_prune_deletes_the_old_jobs_and_keeps_the_batch_and_the_spend(
    smoke_results: Path,
) -> None:
    data = json.loads((smoke_results / "prune.json").read_text())
    figures = data["figures"]
    old = data["settings"]["old_jobs"]
    assert figures["prune_jobs_deleted"] == old and figures["prune_old_jobs_left"] == 0
    assert 0 <= figures["prune_jobs_deleted_during_batch"] <= old
    # Nothing in flight was touched, and the rollups still count what was pruned.
    assert figures["prune_batch_jobs_failed"] == 0
    assert figures["prune_rollup_spend_kept"] == 1
    assert [run["run"] for run in data["details"]["runs"]] == ["baseline", "during", "baseline"]
    assert figures["prune_batch_throughput_ratio"] > 0
    # The old jobs span the months 120-180 days back: at least the oldest of them ends
    # before the 90-day cutoff, and both partitioned tables' partitions of it are dropped.
    assert figures["prune_partitions_dropped"] >= 2


def test_flower_memory_is_sampled_after_every_batch(smoke_results: Path) -> None:
    data = json.loads((smoke_results / "flower.json").read_text())
    figures, settings = data["figures"], data["settings"]
    batches = settings["batches"]
    assert batches == 3 and settings["prompts_per_batch"] == 50
    rss = [figures[f"flower_rss_mb_after_batch_{n}"] for n in range(1, batches + 1)]
    assert all(mb > 0 for mb in rss)
    assert figures["flower_rss_mb_peak"] >= max(rss)
    # Flower heard of the batches' tasks through its events, and kept no more than its cap.
    assert figures["flower_tasks_seen"] > 0
    assert 0 < figures["flower_tasks_kept"] <= figures["flower_max_tasks"]
    assert [b["finished"] for b in data["details"]["batches"]] == [50] * batches
    assert figures["jobs_per_s"] > 0
