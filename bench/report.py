"""Result files (bench/results/NAME.json) and the table printed at the end of a run."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.machine import REPO_ROOT, CpuWatch, load_average, machine_info

DEFAULT_RESULTS_DIR = REPO_ROOT / "bench" / "results"

# The figures the Scale issue names; the rest of each file is context.
REQUIRED_FIGURES: dict[str, str] = {
    "submit_prompts_per_s": "submit",
    "submit_naive_prompts_per_s": "submit",
    "submit_anthropic_prompts_per_s": "submit",
    "pipeline_jobs_per_s": "pipeline",
    "chain_floor_per_s": "pipeline",
    "latency_jobs_per_s": "latency",
    "inflight_peak": "latency",
    "api_p50_ms": "api",
    "api_p99_ms": "api",
    "worker_rss_mb_max": "memory",
    "api_rss_mb_max": "memory",
    "redis_bytes_per_queued_job": "submit",
}


@dataclass
class Result:
    """One benchmark's outcome: named figures, the settings used, and notes."""

    name: str
    figures: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    load_before: float = field(default_factory=load_average)
    cpu_watch: CpuWatch = field(default_factory=CpuWatch, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The file's content: figures, machine, date, settings, and the rest."""
        return {
            "name": self.name,
            "figures": {k: _rounded(v) for k, v in self.figures.items()},
            "machine": machine_info(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "settings": self.settings,
            "load_average_1m": {"before": self.load_before, "after": load_average()},
            # Above ~0.2 the two cores were shared with someone else: figures are noisy.
            "others_cpu_cores_avg": self.cpu_watch.others_cores(),
            "notes": self.notes,
            "details": self.details,
        }


def _rounded(value: float) -> float:
    if isinstance(value, int) or not math.isfinite(value):
        return value
    return round(value, 4 if abs(value) < 10 else 1)


def write_result(result: Result, results_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Write NAME.json atomically (a crashed run never leaves half a file); return it."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{result.name}.json"
    data = result.to_json()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path, data


def read_result(results_dir: Path, name: str) -> dict[str, Any] | None:
    """A previously written result, or None."""
    path = results_dir / f"{name}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def format_table(results: list[dict[str, Any]]) -> str:
    """A plain-text table of every figure, required ones marked with '*'."""
    rows = [("benchmark", "figure", "value")]
    for data in results:
        for name, value in data["figures"].items():
            mark = "*" if name in REQUIRED_FIGURES else " "
            rows.append((data["name"], f"{mark} {name}", f"{value:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}" for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    for data in results:
        for note in data.get("notes", []):
            lines.append(f"note [{data['name']}]: {note}")
    return "\n".join(lines)
