"""`tierroute demo` and `tierroute up`: the stack, driven end to end through HTTP."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path

from rich.console import Console

from tierroute.cli.client import ApiClient
from tierroute.cli.progress import wait_for_batch
from tierroute.cli.prompt_files import read_prompt_file, to_ndjson
from tierroute.config import get_settings
from tierroute.devstack.procs import free_port
from tierroute.devstack.stack import StackOptions, run_stack
from tierroute.store.report import format_report

# Simulated per-model latency for the demo, roughly the shape of real answer times,
# so the progress bar and the workers' concurrency are visible. Set
# TIERROUTE_SIM_LATENCY_MS yourself to change it.
DEMO_LATENCY_MS = {"claude-haiku-4-5": 300, "claude-sonnet-4-6": 900, "claude-opus-4-6": 1800}


def _simulator_env() -> dict[str, str]:
    if "TIERROUTE_SIM_LATENCY_MS" in os.environ:
        return {}
    return {
        "TIERROUTE_SIM_LATENCY_MS": json.dumps(DEMO_LATENCY_MS),
        "TIERROUTE_SIM_LATENCY_JITTER": "0.3",
    }


def bundled_prompts() -> Path:
    """The sample prompt set shipped with the package (spans all three tiers)."""
    return Path(str(resources.files("tierroute").joinpath("data/sample_prompts.jsonl")))


def run_demo(console: Console, prompts: Path | None, keep: bool) -> None:
    """Start the stack, route the prompts through the HTTP API, print the report, stop."""
    settings = get_settings()
    specs = read_prompt_file(prompts or bundled_prompts())
    data_dir = settings.data_dir / "demo" if keep else Path(tempfile.mkdtemp(prefix="tierroute-"))
    started = time.monotonic()
    try:
        with console.status("starting Postgres, Redis, simulator, API and workers"):
            options = StackOptions(
                data_dir=data_dir, api_port=free_port(), simulator_env=_simulator_env()
            )
            stack_cm = run_stack(settings, options)
            stack = stack_cm.__enter__()
        try:
            console.print(f"stack up in {time.monotonic() - started:.1f}s (logs: {stack.log_dir})")
            if stack.simulator_url:
                console.print("[yellow]No ANTHROPIC_API_KEY: models are SIMULATED.[/]")
            client = ApiClient(stack.api_url, stack.api_key)
            accepted = client.request(
                "POST",
                "/v1/batches",
                content=to_ndjson(specs),
                headers={"content-type": "application/x-ndjson"},
            )
            console.print(f"submitted batch {accepted['id']} with {accepted['count']} prompts")
            wait_for_batch(client, accepted["id"], console)
            console.print(format_report(client.request("GET", "/v1/report")))
            if keep:
                console.print(f"database kept under {data_dir}")
        finally:
            with console.status("stopping"):
                stack_cm.__exit__(None, None, None)
    finally:
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    console.print(f"demo finished in {time.monotonic() - started:.1f}s")


def run_up(console: Console, port: int, flower_port: int, tier_workers: int = 2) -> None:
    """Run the stack in the foreground until Ctrl-C."""
    settings = get_settings()
    options = StackOptions(
        data_dir=settings.data_dir,
        api_port=port,
        flower_port=flower_port,
        tier_workers=tier_workers,
    )
    with console.status("starting the stack"):
        stack_cm = run_stack(settings, options)
        stack = stack_cm.__enter__()
    try:
        console.print(f"API docs:  {stack.api_url}/docs")
        # Shown once and never logged: export it for the client commands.
        console.print(f"API key:   {stack.api_key}  (export TIERROUTE_API_KEY=...)", soft_wrap=True)
        console.print(f"Flower:    {stack.flower_url}  (basic auth {stack.flower_auth})")
        if stack.simulator_url:
            console.print(f"Simulator: {stack.simulator_url}  (models are SIMULATED)")
        console.print(f"Database:  {stack.database_url}")
        console.print(f"Broker:    {stack.broker_url}")
        console.print(f"Logs:      {stack.log_dir}")
        console.print("Ctrl-C stops everything.")
        while all(child.alive() for child in stack.children):
            time.sleep(1)
        dead = [child for child in stack.children if not child.alive()]
        for child in dead:
            console.print(f"[red]{child.name} exited:[/]\n{child.log_tail()}")
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        stack_cm.__exit__(None, None, None)
