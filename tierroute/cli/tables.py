"""`tierroute rollup` and `tierroute prune`: the cost rollups and the raw rows' retention."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager

import click
from sqlalchemy.orm import Session


def _session_scope() -> AbstractContextManager[Session]:
    from tierroute.config import get_settings
    from tierroute.store.engine import init_engine, session_scope

    init_engine(get_settings())
    return session_scope()


@click.command()
@click.option("--rebuild", is_flag=True, help="Recompute the rollups from the raw rows.")
def rollup(rebuild: bool) -> None:
    """The cost rollups that the report, dashboard, /metrics and views read.

    Triggers keep them current; --rebuild recomputes them from raw rows (hours
    before the last prune keep their rollups). Writers wait while it runs.
    """
    from tierroute.store import rollups

    if not rebuild:
        raise click.UsageError("nothing to do: give --rebuild")
    started = time.monotonic()
    with _session_scope() as session:
        rollups.rebuild(session)
    click.echo(f"rollups rebuilt from raw rows in {time.monotonic() - started:.1f} s")
