"""`tierroute results BATCH`: every result of a batch, streamed to a file or stdout."""

from __future__ import annotations

from typing import IO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tierroute.cli.client import ApiClient

# Where each format's lines come from: Anthropic's result lines keyed by custom_id,
# or tierroute's own job views.
RESULT_PATHS = {
    "anthropic": "/v1/messages/batches/{batch_id}/results",
    "tierroute": "/v1/batches/{batch_id}/results",
}


def write_results(
    client: ApiClient, batch_id: str, fmt: str, out: IO[bytes], console: Console
) -> int:
    """Copy the batch's result lines to `out` as they arrive; returns how many were written."""
    view = client.request("GET", f"/v1/batches/{batch_id}")
    total = int(view.get("count", 0))
    finished = int(view.get("finished", total))
    if finished < total:
        console.print(
            f"[yellow]{total - finished:,} of {total:,} jobs have not finished;"
            " their results are not written"
        )
    written = 0
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"results of {batch_id}", total=finished)
        for line in client.stream_lines(RESULT_PATHS[fmt].format(batch_id=batch_id)):
            out.write(line + b"\n")
            written += 1
            progress.advance(task)
    return written
