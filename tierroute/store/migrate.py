"""Run Alembic migrations programmatically (`tierroute migrate`, the stack, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    script_location = Path(migrations.__file__).resolve().parent
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """`alembic upgrade head` on `database_url`."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """`alembic downgrade` on `database_url`."""
    command.downgrade(alembic_config(database_url), revision)
