"""Batches and jobs in the terminal: the upload bar, the live bar by status, status views."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from tierroute.cli.client import ApiClient, ApiError
from tierroute.cli.prompt_files import iter_upload_body
from tierroute.domain.errors import TierrouteError
from tierroute.domain.status import FINISHED, JobStatus

POLL_INTERVAL_S = 0.5
# How long the watcher rides out an API that stops answering (a restart, a busy
# moment under a 100,000-job batch) before it gives up.
POLL_ERROR_BUDGET_S = 60.0
# Without a terminal the live bar cannot redraw, so a plain line goes to the log this often.
LOG_INTERVAL_S = 10.0
# After the last byte the server still parses, stores and enqueues the whole batch.
UPLOAD_READ_TIMEOUT_S = 600.0
RESULT_EXCERPT_CHARS = 400

# The state machine's statuses, in life order (tierroute/domain/status.py).
STATUS_ORDER = tuple(status.value for status in JobStatus)
TERMINAL = frozenset(status.value for status in FINISHED)
STATUS_STYLE: dict[str, str] = {
    JobStatus.QUEUED: "dim",
    JobStatus.CLASSIFYING: "cyan",
    JobStatus.ROUTED: "magenta",
    JobStatus.RUNNING: "blue",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "yellow",
    JobStatus.DEAD: "bold red",
}


def upload_batch(
    client: ApiClient,
    path: Path,
    console: Console,
    *,
    force_tier: int | str | None = None,
    gzip: bool = True,
    mode: str | None = None,
) -> dict[str, Any]:
    """Stream a prompt file to POST /v1/batches with a bar of bytes read; returns `{id, count}`.

    `mode="batch_api"` answers the batch through Message Batches (`?mode=batch_api`).
    """
    headers = {"content-type": "application/x-ndjson"}
    if gzip:
        headers["content-encoding"] = "gzip"
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"uploading {path.name}", total=path.stat().st_size)

        sent = False

        def body() -> Iterator[bytes]:
            nonlocal sent
            yield from iter_upload_body(
                path,
                force_tier=force_tier,
                gzip=gzip,
                on_read=lambda n: progress.advance(task, n),
            )
            sent = True
            progress.update(task, description=f"{path.name}: server storing")

        timeout = httpx.Timeout(60.0, read=UPLOAD_READ_TIMEOUT_S)
        try:
            accepted: dict[str, Any] = client.request(
                "POST",
                "/v1/batches",
                content=body(),
                headers=headers,
                timeout=timeout,
                params={"mode": mode} if mode else None,
            )
        except KeyboardInterrupt:
            if sent:
                # The whole body arrived, so the server may still commit the batch.
                console.print("[yellow]the file was sent: the server may still create the batch")
            raise
    return accepted


def ordered(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Known statuses in life order, then any the server added, alphabetically."""
    known = [(s, counts[s]) for s in STATUS_ORDER if s in counts]
    extra = sorted((s, n) for s, n in counts.items() if s not in STATUS_ORDER)
    return known + extra


def finished_count(view: Mapping[str, Any]) -> int:
    """Jobs that have reached an end state."""
    counts = view.get("counts") or {}
    terminal = sum(int(n) for s, n in counts.items() if s in TERMINAL)
    # Our own sum too, so a server that does not count cancelled jobs as finished
    # can neither stall the bar nor keep `--wait` waiting for ever.
    return max(int(view.get("finished") or 0), terminal)


def is_done(view: Mapping[str, Any]) -> bool:
    """Whether every job of the batch has reached an end state."""
    return bool(view.get("done")) or finished_count(view) >= int(view.get("count", 0))


def _joined(parts: Iterable[Text], sep: str = "  ") -> Text:
    return Text(sep).join(parts)


def counts_text(counts: Mapping[str, int], zeros: bool = False) -> Text:
    """`queued 3  running 2  succeeded 5`, coloured by status."""
    parts = [
        Text.assemble((status, STATUS_STYLE.get(status, "")), f" {n:,}")
        for status, n in ordered(counts)
        if n or zeros
    ]
    return _joined(parts) if parts else Text("no jobs", style="dim")


def tiers_text(by_tier: Mapping[str, int]) -> Text:
    """`haiku 4  sonnet 3` (jobs routed so far)."""
    parts = [Text(f"{tier} {n:,}") for tier, n in by_tier.items() if n]
    return _joined(parts) if parts else Text("none routed yet", style="dim")


def summary_text(view: Mapping[str, Any]) -> Text:
    """One line: counts by status, by tier, and cost so far."""
    return _joined(
        [
            counts_text(view.get("counts") or {}),
            Text.assemble(("tiers ", "bold"), tiers_text(view.get("by_tier") or {})),
            Text(f"${float(view.get('cost_usd') or 0):.6f}", style="bold"),
        ],
        sep=" | ",
    )


class RateColumn(ProgressColumn):
    """Jobs finished per second, over rich's recent-speed window."""

    def render(self, task: Task) -> Text:
        """The rate, or a dash until two samples exist."""
        speed = task.finished_speed or task.speed
        shown = "-" if speed is None else f"{speed:,.1f}"
        return Text(f"{shown} jobs/s", style="progress.data.speed")


class _BatchProgress(Progress):
    """A progress bar with one line of detail under it."""

    line: Text = Text("")

    def get_renderables(self) -> Iterable[RenderableType]:
        """The bar, then the detail line."""
        yield self.make_tasks_table(self.tasks)
        yield self.line


def wait_for_batch(
    client: ApiClient, batch_id: str, console: Console, timeout_s: float | None = 600.0
) -> dict[str, Any]:
    """Poll the batch about twice a second with a live bar until it is done; returns its view."""
    path = f"/v1/batches/{batch_id}"
    started = time.monotonic()
    view: dict[str, Any] = client.request("GET", path)
    failing_since: float | None = None
    last_log = started
    with _BatchProgress(
        TextColumn("[bold]jobs[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("jobs", total=view.get("count", 0), completed=0)
        while True:
            progress.update(task, completed=finished_count(view))
            line = summary_text(view)
            if failing_since is not None:
                line.append("  (API not answering; retrying)", style="yellow")
            progress.line = line
            if is_done(view):
                return view
            now = time.monotonic()
            if timeout_s is not None and now - started > timeout_s:
                raise TierrouteError(
                    f"batch {batch_id} not finished after {timeout_s:.0f}s; "
                    f"follow it with: tierroute status {batch_id}"
                )
            if not console.is_interactive and now - last_log >= LOG_INTERVAL_S:
                last_log = now
                done, total = finished_count(view), view.get("count", 0)
                console.print(Text(f"{done:,}/{total:,} finished | ").append(line), soft_wrap=True)
            time.sleep(POLL_INTERVAL_S)
            try:
                view = client.request("GET", path)
                failing_since = None
            except ApiError as exc:
                # A 4xx will not heal (the batch is gone); no answer or a 5xx may.
                if exc.status_code is not None and exc.status_code < 500:
                    raise
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > POLL_ERROR_BUDGET_S:
                    raise


def _grid(rows: Iterable[tuple[str, RenderableType]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return table


def _money(value: Any) -> str:
    amount = float(value or 0)
    return f"{'-' if amount < 0 else ''}${abs(amount):.6f}"


def render_batch(view: Mapping[str, Any]) -> RenderableType:
    """A batch for `tierroute status`: progress, counts by status and tier, cost."""
    count = int(view.get("count", 0))
    finished = finished_count(view)
    share = float(view.get("progress", finished / count if count else 1.0))
    state = Text("done", style="green") if is_done(view) else Text("in progress", style="blue")
    counts = view.get("counts") or {}
    rows: list[tuple[str, RenderableType]] = [
        ("batch", Text.assemble(str(view.get("id")), "  ", state)),
        ("progress", Text(f"{finished:,}/{count:,} finished ({share:.1%})")),
        ("status", counts_text(counts, zeros=True)),
        ("tiers", tiers_text(view.get("by_tier") or {})),
    ]
    cost = Text(_money(view.get("cost_usd")))
    if "cost_if_opus_usd" in view:
        opus = float(view["cost_if_opus_usd"] or 0)
        saved = opus - float(view.get("cost_usd") or 0)
        cost.append(f"  (all Opus {_money(opus)}, saved {_money(saved)})")
    rows.append(("cost", cost))
    if view.get("mode") and view["mode"] != "live":
        rows.append(("mode", Text(str(view["mode"]))))
    for provider in view.get("provider_batches") or []:
        rows.append(("message batch", provider_batch_text(provider)))
    if view.get("created_at"):
        rows.append(("created", Text(str(view["created_at"]))))
    return _grid(rows)


def provider_batch_text(provider: Mapping[str, Any]) -> Text:
    """One Message Batch: tier, Anthropic's id, processing_status and request_counts."""
    status = str(provider.get("processing_status"))
    style = "green" if status == "ended" else "blue"
    counts = provider.get("request_counts") or {}
    shown = "  ".join(f"{name} {int(n):,}" for name, n in counts.items() if n)
    return Text.assemble(
        f"{provider.get('tier')}  {provider.get('id')}  ", (status, style), f"  {shown}"
    )


def failed_jobs_hint(view: Mapping[str, Any], api_base: str) -> str | None:
    """How to list a batch's failed jobs with their errors, when it has any."""
    failed = int((view.get("counts") or {}).get("failed", 0))
    if not failed:
        return None
    # The results stream carries each finished job with its error; there is no filter yet.
    results = f"{api_base}/v1/batches/{view.get('id')}/results"
    query = "'select(.status == \"failed\") | {id, error}'"
    return f"{failed:,} failed jobs, with their errors:\n  curl -s {results} | jq -c {query}"


def _excerpt(text: str, limit: int = RESULT_EXCERPT_CHARS) -> Text:
    if len(text) <= limit:
        return Text(text)
    return Text(text[:limit].rstrip() + " …").append(
        f" ({len(text):,} chars; --json for all)", style="dim"
    )


def render_job(view: Mapping[str, Any]) -> RenderableType:
    """A job for `tierroute status`: state, tier and model, routing, cost, result excerpt."""
    status = str(view.get("status"))
    rows: list[tuple[str, RenderableType]] = [
        ("job", Text.assemble(str(view.get("id")), "  ", (status, STATUS_STYLE.get(status, "")))),
    ]
    if view.get("batch_id"):
        rows.append(("batch", Text(str(view["batch_id"]))))
    if view.get("tier"):
        model = view.get("model")
        rows.append(("tier", Text(f"{view['tier']}" + (f"  ({model})" if model else ""))))
    routing = view.get("routing")
    if routing:
        line = Text(f"confidence {float(routing.get('confidence') or 0):.2f}")
        if routing.get("score") is not None:
            line.append(f"  score {routing['score']}")
        line.append(f"  classifier {routing.get('classifier')}")
        if routing.get("proposed_tier") and routing["proposed_tier"] != routing.get("tier"):
            line.append(f"  proposed {routing['proposed_tier']}")
        if routing.get("fallback_reason"):
            line.append(f"  fallback: {routing['fallback_reason']}", style="yellow")
        rows.append(("routing", line))
        if routing.get("reasoning"):
            rows.append(("reasoning", Text(str(routing["reasoning"]))))
    cost = Text(_money(view.get("cost_usd")))
    if "cost_if_opus_usd" in view:
        cost.append(
            f"  (classifier {_money(view.get('classifier_cost_usd'))}, "
            f"all Opus {_money(view['cost_if_opus_usd'])}, saved {_money(view.get('savings_usd'))})"
        )
    rows.append(("cost", cost))
    usage = [
        f"in {view['input_tokens']:,}" if view.get("input_tokens") is not None else "",
        f"out {view['output_tokens']:,}" if view.get("output_tokens") is not None else "",
        f"latency {view['latency_ms']:,} ms" if view.get("latency_ms") is not None else "",
        f"attempts {view['attempts']}" if view.get("attempts") is not None else "",
    ]
    if any(usage):
        rows.append(("tokens", Text("  ".join(part for part in usage if part))))
    if view.get("error"):
        rows.append(("error", Text(str(view["error"]), style="red")))
    if view.get("result"):
        result = _excerpt(str(view["result"]))
        if view.get("simulated"):
            result.append("  (simulated model)", style="yellow")
        rows.append(("result", result))
    return _grid(rows)
