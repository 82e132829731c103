"""Watching a batch finish, with a progress bar by status."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tierroute.client import ApiClient


def wait_for_batch(
    client: ApiClient, batch_id: str, console: Console, timeout_s: float = 600.0
) -> dict[str, Any]:
    """Poll the batch until every job has finished; returns the final batch view."""
    deadline = time.monotonic() + timeout_s
    with Progress(
        TextColumn("[bold]routing[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        view = client.request("GET", f"/v1/batches/{batch_id}")
        task = progress.add_task("batch", total=view["count"], detail="")
        while True:
            counts = view["counts"]
            detail = " ".join(f"{k}={v}" for k, v in counts.items() if v)
            progress.update(task, completed=view["finished"], detail=detail)
            if view["done"]:
                return dict(view)
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} not finished after {timeout_s:.0f}s")
            time.sleep(0.5)
            view = client.request("GET", f"/v1/batches/{batch_id}")
