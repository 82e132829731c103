"""The `tierroute` command as a user runs it: a real process, against the real stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tierroute.devstack.stack import RunningStack

pytestmark = pytest.mark.e2e


def tierroute(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tierroute", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def key_env(stack: RunningStack) -> dict[str, str]:
    """The stack's key in the environment, as a user would export it."""
    return {"TIERROUTE_API_KEY": stack.api_key}


def test_submit_wait_status_rate_report_route(
    stack: RunningStack, key_env: dict[str, str], tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "\n".join(json.dumps({"prompt": f"Translate 'hello {n}' into German."}) for n in range(5))
    )
    submitted = tierroute("submit", str(prompts), "--wait", "--api", stack.api_url, env=key_env)
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip().splitlines()[-1]

    batch = tierroute("status", batch_id, "--json", "--api", stack.api_url, env=key_env)
    assert batch.returncode == 0, batch.stderr
    assert json.loads(batch.stdout)["counts"]["succeeded"] == 5

    results = subprocess.run(
        ["curl", "-s", "-H", f"Authorization: Bearer {stack.api_key}",
         f"{stack.api_url}/v1/batches/{batch_id}/results"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    job_id = json.loads(results.stdout.splitlines()[0])["id"]
    job = tierroute("status", job_id, "--json", "--api", stack.api_url, env=key_env)
    assert json.loads(job.stdout)["status"] == "succeeded"

    rated = tierroute("rate", job_id, "0.8", "--api", stack.api_url, env=key_env)
    assert rated.returncode == 0, rated.stderr

    report = tierroute("report", "--api", stack.api_url, env=key_env)
    assert report.returncode == 0
    for heading in ("ROUTING REPORT", "Cost if all Opus", "Classifier cost", "SIMULATED"):
        assert heading in report.stdout

    routed = tierroute(
        "route", "Format this JSON: {}", "--json", "--api", stack.api_url,
        "--api-key", stack.api_key,
    )  # fmt: skip
    assert json.loads(routed.stdout)["tier"] == "haiku"


def test_cli_errors_are_one_line_not_a_traceback(
    stack: RunningStack, key_env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": ""}\n')
    result = tierroute("submit", str(bad), "--api", stack.api_url, env=key_env)
    assert result.returncode == 1
    assert "bad.jsonl:2" in result.stderr and "Traceback" not in result.stderr

    missing = tierroute("status", "no-such-job", "--api", stack.api_url, env=key_env)
    assert missing.returncode == 1 and "404" in missing.stderr

    out_of_range = tierroute("rate", "x", "1.5", "--api", stack.api_url, env=key_env)
    assert out_of_range.returncode == 2 and "1.5" in out_of_range.stderr

    no_key = tierroute("report", "--api", stack.api_url, env={"TIERROUTE_API_KEY": ""})
    assert no_key.returncode == 1 and "Traceback" not in no_key.stderr
    assert "401" in no_key.stderr and "TIERROUTE_API_KEY" in no_key.stderr
    assert len(no_key.stderr.strip().splitlines()) == 1

    offline = tierroute("report", "--api", "http://127.0.0.1:9")
    assert offline.returncode == 1 and "cannot reach the tierroute API" in offline.stderr
    assert "Traceback" not in offline.stderr


def test_demo_runs_on_the_embedded_default() -> None:
    """`tierroute demo` with no services configured: embedded Postgres and Redis."""
    data_dir = Path(tempfile.mkdtemp(prefix="tierroute-demo-test-"))
    prompts = data_dir / "prompts.jsonl"
    lines = [
        'Format this JSON: {"a":1}',
        "Write a Python function to merge two sorted lists into one sorted list",
        # The lesson's Opus example, whole: the classifier's tests hold it to Opus.
        "Review this distributed system architecture for scalability bottlenecks, "
        "consistency trade-offs, and failure modes: three API nodes, one Postgres primary, "
        "Redis for sessions, and a nightly batch that rebuilds the search index.",
    ]
    prompts.write_text("\n".join(json.dumps({"prompt": p}) for p in lines))
    env = {k: v for k, v in os.environ.items()
           if k not in ("TIERROUTE_DATABASE_URL", "TIERROUTE_BROKER_URL", "ANTHROPIC_API_KEY",
                        "ANTHROPIC_BASE_URL")}  # fmt: skip
    env["TIERROUTE_DATA_DIR"] = str(data_dir / "data")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tierroute", "demo", "--prompts", str(prompts)],
            capture_output=True, text=True, timeout=240, env=env,
        )  # fmt: skip
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "SIMULATED" in out and "Cost if all Opus" in out and "Saved:" in out
    for tier in ("haiku", "sonnet", "opus"):
        line = next(line for line in out.splitlines() if line.strip().startswith(tier))
        assert " 1 jobs" in line, line
