"""Flower keeps a bounded number of tasks wherever it is started (issue 16)."""

from __future__ import annotations

from pathlib import Path

import flower.options  # noqa: F401  (defines Flower's options on tornado's registry)
import pytest
import yaml
from tornado.options import options as tornado_options

from tierroute.config import Settings
from tierroute.devstack.stack import flower_argv

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_cap_is_well_below_flowers_own() -> None:
    default = Settings.model_fields["flower_max_tasks"].default
    assert default == 10_000
    assert default < tornado_options.max_tasks  # Flower's 100,000


def test_the_setting_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERROUTE_FLOWER_MAX_TASKS", "2500")
    assert Settings().flower_max_tasks == 2500
    monkeypatch.setenv("TIERROUTE_FLOWER_MAX_TASKS", "0")
    with pytest.raises(ValueError, match="flower_max_tasks"):
        Settings()


def test_the_stack_passes_the_cap_under_flowers_own_option_name() -> None:
    argv = flower_argv(5555, 1234)
    assert argv[1:6] == ["-m", "celery", "-A", "worker", "flower"]
    assert "--max_tasks=1234" in argv
    # The name Flower 2.x defines; tornado refuses an unknown option at start.
    assert "max_tasks" in tornado_options
    # The login stays off argv.
    assert not any("auth" in part for part in argv)


def test_compose_passes_the_cap_with_the_same_default() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = [str(part) for part in compose["services"]["flower"]["command"]]
    assert command[:4] == ["celery", "-A", "worker", "flower"]
    assert "--max_tasks=${TIERROUTE_FLOWER_MAX_TASKS:-10000}" in command
