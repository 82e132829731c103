"""`tierroute rollup` and `tierroute prune`: the cost rollups and the raw rows' retention."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy.orm import Session


def _session_scope() -> AbstractContextManager[Session]:
    _init_engine()
    from tierroute.store.engine import session_scope

    return session_scope()


def _init_engine() -> None:
    from tierroute.config import get_settings
    from tierroute.store.engine import init_engine

    init_engine(get_settings())


@click.command()
@click.option("--rebuild", is_flag=True, help="Recompute the rollups from the raw rows.")
@click.option("--compact", is_flag=True, help="Fold hours older than two days into days now.")
def rollup(rebuild: bool, compact: bool) -> None:
    """The cost rollups that the report, dashboard, /metrics and views read.

    Triggers keep them current and the classify worker's beat compacts them hourly;
    --rebuild recomputes them from raw rows (days before the last prune keep their
    rollups), --compact folds old hours into days. Writers wait while a rebuild runs.
    """
    from tierroute.store import rollups

    if not (rebuild or compact):
        raise click.UsageError("nothing to do: give --rebuild or --compact")
    started = time.monotonic()
    with _session_scope() as session:
        if rebuild:
            rollups.rebuild(session)
        else:
            rollups.compact(session)
    if rebuild:
        from tierroute.store.engine import raw_autocommit

        with raw_autocommit() as cur:  # VACUUM runs outside a transaction
            rollups.repack(cur)
    done = "rebuilt from raw rows" if rebuild else "compacted"
    click.echo(f"rollups {done} in {time.monotonic() - started:.1f} s")


def parse_age(text: str) -> timedelta:
    """'90d', '12h', '30m' or a bare number of days, as a timedelta."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    value, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "d")
    try:
        amount = float(value)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give a number of days (90d), hours or minutes"
        ) from None
    if amount <= 0:
        raise click.BadParameter("the age must be positive")
    return timedelta(**{units[unit]: amount})


@click.command()
@click.option("--older-than", "older_than", required=True, help="Age of the rows to drop: 90d.")
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for gzip JSONL exports of the rows, written before they are deleted.",
)
@click.option(
    "--chunk",
    type=click.IntRange(min=1),
    default=1_000,
    show_default=True,
    help="Jobs per transaction.",
)
@click.option(
    "--busy-share",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.5,
    show_default=True,
    help="Largest share of the wall time spent deleting; the rest is left to the pipeline.",
)
def prune(older_than: str, archive: Path | None, chunk: int, busy_share: float) -> None:
    """Delete finished jobs and their calls older than --older-than; rollups keep their sums."""
    from tierroute.store.engine import session_scope
    from tierroute.store.retention import prune as prune_rows

    cutoff = datetime.now(UTC) - parse_age(older_than)
    _init_engine()
    done = prune_rows(
        session_scope, cutoff, archive_dir=archive, chunk=chunk, busy_share=busy_share
    )
    click.echo(
        f"pruned {done.jobs:,} jobs and {done.calls:,} calls from before "
        f"{done.cutoff.isoformat(timespec='seconds')} in {done.seconds:.1f} s"
    )
    for path in done.archive:
        click.echo(f"archived to {path}")
    if done.partitions_dropped:
        click.echo(f"dropped empty month partitions: {', '.join(done.partitions_dropped)}")
