"""The `tierroute` command: demo, the local stack, and clients of the HTTP API."""

from __future__ import annotations

import functools
import json
import logging
import signal
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from tierroute.cli.client import ApiClient, ApiError, api_key, api_url
from tierroute.domain.errors import TierrouteError

console = Console()
F = TypeVar("F", bound=Callable[..., Any])


def _exit_on_sigterm() -> None:
    # `kill` or `docker stop` must unwind the stack like Ctrl-C, so embedded
    # Postgres and Redis are stopped by their context managers, not orphaned.
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def friendly_errors(func: F) -> F:
    """Turn our errors into one line on stderr and exit status 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (TierrouteError, ApiError) as exc:
            detail = exc.detail if isinstance(exc, TierrouteError) else str(exc)
            click.echo(f"error: {detail}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def api_option(func: F) -> F:
    """--api URL and --api-key KEY, for every command that talks to the HTTP API."""
    func = click.option(
        "--api-key",
        "key",
        default=None,
        help="API key (default $TIERROUTE_API_KEY); create one with `tierroute keys create`.",
    )(func)
    return click.option(
        "--api", "api", default=None, help="API base URL (default $TIERROUTE_API_URL or :8000)."
    )(func)


def open_client(api: str | None, key: str | None) -> ApiClient:
    """An API client for the resolved URL and key."""
    return ApiClient(api_url(api), api_key(key))


@click.group()
@click.version_option(package_name="tierroute")
def main() -> None:
    """tierroute: route each prompt to the cheapest Claude tier that answers it well."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--prompts", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--keep", is_flag=True, help="Keep the embedded database under the data dir.")
@friendly_errors
def demo(prompts: Path | None, keep: bool) -> None:
    """Start everything, route a sample set end to end, print the report, stop."""
    from tierroute.cli.demo import run_demo

    _exit_on_sigterm()
    run_demo(console, prompts, keep)


@main.command()
@click.option("--port", default=8000, show_default=True)
@click.option("--flower-port", default=5555, show_default=True)
@click.option(
    "--tier-workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Tier worker processes (each runs one core's worth of Python).",
)
@friendly_errors
def up(port: int, flower_port: int, tier_workers: int) -> None:
    """Run the local stack (API, workers, Flower, simulator) until Ctrl-C."""
    from tierroute.cli.demo import run_up

    _exit_on_sigterm()
    run_up(console, port, flower_port, tier_workers)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait", is_flag=True, help="Follow the batch until every job has finished.")
@click.option("--force-tier", default=None, help="Run every prompt on this tier (1-3 or name).")
@click.option(
    "--gzip/--no-gzip",
    "use_gzip",
    default=True,
    show_default=True,
    help="Compress the upload (Content-Encoding: gzip); --no-gzip for servers without it.",
)
@click.option(
    "--batch-api",
    is_flag=True,
    help="Answer through Anthropic's Message Batches: half price, results within 24 h.",
)
@api_option
@friendly_errors
def submit(
    file: Path,
    wait: bool,
    force_tier: str | None,
    use_gzip: bool,
    batch_api: bool,
    api: str | None,
    key: str | None,
) -> None:
    """Stream a JSONL prompt file as one batch; prints the batch id (last line of stdout)."""
    from tierroute.cli.progress import summary_text, upload_batch, wait_for_batch
    from tierroute.cli.prompt_files import check_prompt_file, force_tier_value

    # Bars and notes go to stderr so that `id=$(tierroute submit f.jsonl)` works.
    out = Console(stderr=True)
    tier = force_tier_value(force_tier) if force_tier is not None else None
    with out.status(f"checking {file.name}"):
        count = check_prompt_file(file)
    with open_client(api, key) as client:
        accepted = upload_batch(
            client,
            file,
            out,
            force_tier=tier,
            gzip=use_gzip,
            mode="batch_api" if batch_api else None,
        )
        batch_id = str(accepted["id"])
        out.print(f"batch [bold]{batch_id}[/] accepted: {accepted.get('count', count):,} prompts")
        if not wait:
            click.echo(batch_id)
            return
        try:
            view = wait_for_batch(client, batch_id, out, timeout_s=None)
        except KeyboardInterrupt:
            # Leaving the watch must not stop the work: the jobs are already queued.
            click.echo(f"still running: {batch_id} (tierroute status {batch_id})", err=True)
            sys.exit(130)
    # soft_wrap: one line however wide, for scripts that read stdout.
    console.print(Text("done: ").append(summary_text(view)), soft_wrap=True)
    click.echo(batch_id)
    counts = view.get("counts") or {}
    failed, cancelled = int(counts.get("failed", 0)), int(counts.get("cancelled", 0))
    if failed or cancelled:
        # Anything short of every job succeeding must fail a script's `submit --wait &&`.
        total = f"{int(view.get('count', count)):,}"
        what = f"{failed:,} of {total} jobs failed" if failed else f"{cancelled:,} of {total} jobs"
        if cancelled:
            what += f" and {cancelled:,} were cancelled" if failed else " were cancelled"
        click.echo(f"error: {what}; see them with: tierroute status {batch_id}", err=True)
        sys.exit(1)


@main.command()
@click.argument("batch_id")
@api_option
@friendly_errors
def cancel(batch_id: str, api: str | None, key: str | None) -> None:
    """Cancel a batch's jobs that have not started; running jobs finish."""
    with open_client(api, key) as client:
        answer = client.request("POST", f"/v1/batches/{batch_id}/cancel")
    click.echo(f"cancelled {int(answer.get('cancelled', 0)):,} jobs of batch {batch_id}")


@main.command()
@click.argument("batch_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["anthropic", "tierroute"]),
    default="tierroute",
    show_default=True,
    help="anthropic: Message Batches result lines keyed by custom_id; tierroute: job views.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE instead of stdout.",
)
@api_option
@friendly_errors
def results(batch_id: str, fmt: str, output: Path | None, api: str | None, key: str | None) -> None:
    """Every finished result of a batch as JSONL, streamed with progress on stderr."""
    from tierroute.cli.results import write_results

    out = Console(stderr=True)
    with open_client(api, key) as client:
        if output is None:
            count = write_results(client, batch_id, fmt, sys.stdout.buffer, out)
        else:
            with output.open("wb") as handle:
                count = write_results(client, batch_id, fmt, handle, out)
    out.print(f"{count:,} results" + (f" written to {output}" if output else ""))


@main.command()
@click.argument("ident")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON view.")
@api_option
@friendly_errors
def status(ident: str, as_json: bool, api: str | None, key: str | None) -> None:
    """Status of a job or a batch."""
    from tierroute.cli.progress import failed_jobs_hint, render_batch, render_job

    base = api_url(api)
    with ApiClient(base, api_key(key)) as client:
        try:
            view = client.request("GET", f"/v1/jobs/{ident}")
            is_job = True
        except ApiError as exc:
            if exc.status_code != 404:
                raise
            try:
                view = client.request("GET", f"/v1/batches/{ident}")
            except ApiError as again:
                if again.status_code != 404:
                    raise
                raise ApiError(f"HTTP 404 no job or batch {ident}", 404, "not_found") from None
            is_job = False
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    if is_job:
        console.print(render_job(view))
        return
    console.print(render_batch(view))
    hint = failed_jobs_hint(view, base)
    if hint:
        click.echo(hint)  # plain, so the command is copied without wrapping


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the cost dashboard (GET /dashboard) to this file: one HTML page, no links.",
)
@click.option("--days", default=30, show_default=True, help="Days in the dashboard's charts.")
@api_option
@friendly_errors
def report(
    as_json: bool, html_file: Path | None, days: int, api: str | None, key: str | None
) -> None:
    """Distribution by tier, cost, cost if all Opus, savings, quality."""
    from tierroute.store.report import format_report

    if html_file is not None:
        with open_client(api, key) as client:
            page = client.get_text("/dashboard", params={"days": days})
        html_file.write_text(page, encoding="utf-8")
        click.echo(f"dashboard written to {html_file}")
        return
    data = open_client(api, key).request("GET", "/v1/report")
    click.echo(json.dumps(data, indent=2) if as_json else format_report(data))


@main.command()
@click.argument("job_id")
@click.argument("score", type=click.FloatRange(0.0, 1.0))
@click.option("--comment", default=None)
@api_option
@friendly_errors
def rate(job_id: str, score: float, comment: str | None, api: str | None, key: str | None) -> None:
    """Record a satisfaction rating in [0, 1] for a job."""
    body = {"satisfaction": score, "comment": comment}
    open_client(api, key).request("POST", f"/v1/jobs/{job_id}/rating", json=body)
    click.echo(f"rated {job_id}: {score}")


@main.command()
@click.argument("text")
@click.option("--json", "as_json", is_flag=True)
@api_option
@friendly_errors
def route(text: str, as_json: bool, api: str | None, key: str | None) -> None:
    """The routing decision for TEXT alone; nothing is executed."""
    decision = open_client(api, key).request("POST", "/v1/route", json={"prompt": text})
    if as_json:
        click.echo(json.dumps(decision, indent=2))
        return
    note = " (simulated)" if decision["simulated"] else ""
    console.print(
        f"tier [bold]{decision['tier']}[/] ({decision['model']}){note}\n"
        f"confidence {decision['confidence']:.2f}  score {decision['score']}  "
        f"classifier {decision['classifier']} {decision.get('version') or ''}\n"
        f"reasoning: {decision['reasoning']}"
    )
    if decision["fallback_reason"]:
        console.print(f"fallback: {decision['fallback_reason']}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True)
@friendly_errors
def sim(host: str, port: int) -> None:
    """Serve the Anthropic Messages API simulator (configure with TIERROUTE_SIM_*)."""
    from tierroute.devstack.simulator import run_simulator

    click.echo(f"simulated Anthropic Messages API on http://{host}:{port} (not real models)")
    run_simulator(host=host, port=port)


@main.command()
@friendly_errors
def migrate() -> None:
    """`alembic upgrade head` on TIERROUTE_DATABASE_URL."""
    from tierroute.config import get_settings
    from tierroute.store.migrate import upgrade

    url = get_settings().database_url
    if url is None:
        raise TierrouteError("TIERROUTE_DATABASE_URL is not set")
    upgrade(url)
    click.echo("database is at the latest migration")


@main.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.argument("name")
@click.option(
    "--daily-budget",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Most this key may spend per UTC day, in USD.",
)
@friendly_errors
def keys_create(name: str, daily_budget: float | None) -> None:
    """Create an API key; the secret is printed once and stored hashed."""
    from tierroute.config import get_settings
    from tierroute.store.engine import init_engine, session_scope
    from tierroute.store.keys import create_api_key

    init_engine(get_settings())
    budget = None if daily_budget is None else Decimal(str(daily_budget))
    with session_scope() as session:
        key, raw = create_api_key(session, name, daily_budget_usd=budget)
    click.echo(f"created key {key.prefix}… for {name!r}; store it now, it is not shown again:")
    click.echo(raw)


@keys.command("budget")
@click.argument("name")
@click.argument("usd", required=False, type=click.FloatRange(min=0, min_open=True))
@click.option("--clear", is_flag=True, help="Remove the key's own budget.")
@friendly_errors
def keys_budget(name: str, usd: float | None, clear: bool) -> None:
    """Set the daily USD budget of the keys named NAME (or --clear it)."""
    from tierroute.config import get_settings
    from tierroute.store.engine import init_engine, session_scope
    from tierroute.store.keys import set_daily_budget

    if (usd is None) == (not clear):
        raise click.UsageError("give a budget in USD, or --clear")
    init_engine(get_settings())
    budget = None if clear or usd is None else Decimal(str(usd))
    with session_scope() as session:
        changed = set_daily_budget(session, name, budget)
    if changed == 0:
        raise click.ClickException(f"no active key named {name!r}")
    shown = "no budget of its own" if budget is None else f"a daily budget of ${budget}"
    click.echo(f"{changed} key(s) named {name!r} now have {shown}")


@keys.command("revoke")
@click.argument("key_id_or_prefix")
@friendly_errors
def keys_revoke(key_id_or_prefix: str) -> None:
    """Revoke a key, named by its id or its prefix (as `keys create` shows it)."""
    from tierroute.config import get_settings
    from tierroute.store.engine import init_engine, session_scope
    from tierroute.store.keys import find_key, revoke_api_key

    init_engine(get_settings())
    with session_scope() as session:
        key = find_key(session, key_id_or_prefix)
        shown = f"key {key.prefix}… ({key.name!r}, id {key.id})"
        if not revoke_api_key(session, key.id):
            click.echo(f"{shown} was already revoked")
            return
    # A running API trusts a key it has just seen for a short while (api/auth.py KeyCache).
    click.echo(f"revoked {shown}; a running API refuses it once its key cache entry expires")


# Routing quality (issue 5): train, calibrate and evaluate the local router.
from tierroute.cli import routing  # noqa: E402

main.add_command(routing.train)
main.add_command(routing.calibrate)
main.add_command(routing.eval_command)
main.add_command(routing.eval_data)
main.add_command(routing.eval_rubric)

# Cost tables (issue 16): rebuild the rollups, prune old raw rows.
from tierroute.cli import tables  # noqa: E402

main.add_command(tables.rollup)
main.add_command(tables.prune)
