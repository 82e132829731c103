"""`tierroute up` hands Flower its login in the environment, never on argv (`ps` shows argv)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tierroute.config import Settings
from tierroute.devstack import stack as stack_module
from tierroute.devstack.stack import StackOptions, run_stack


class FakeChild:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name, self.argv, self.env = name, argv, env

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        pass


@contextlib.contextmanager
def no_embedded(*_: Any, **__: Any) -> Iterator[Any]:
    yield None


def test_flowers_password_is_in_its_environment_not_its_argv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    children: dict[str, FakeChild] = {}

    def start_child(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> FakeChild:
        children[name] = FakeChild(name, argv, env)
        return children[name]

    monkeypatch.setattr(stack_module, "start_child", start_child)
    monkeypatch.setattr(stack_module, "upgrade", lambda url: None)
    monkeypatch.setattr(stack_module, "issue_key", lambda url, name: "key")
    monkeypatch.setattr(stack_module, "wait_http", lambda *a, **k: None)
    monkeypatch.setattr(stack_module, "_wait_for_workers", lambda *a, **k: None)
    monkeypatch.setattr("tierroute.devstack.embedded.embedded_services", no_embedded)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")  # no simulator needed
    settings = Settings(
        database_url="postgresql+psycopg://u@db.invalid/t", broker_url="redis://localhost/0"
    )
    options = StackOptions(data_dir=tmp_path, flower_port=5555, flower_auth="admin:s3cret-pw")
    with run_stack(settings, options) as stack:
        assert stack.flower_auth == "admin:s3cret-pw"
    flower = children["flower"]
    assert not any("s3cret-pw" in part or "basic-auth" in part for part in flower.argv)
    assert flower.env["FLOWER_BASIC_AUTH"] == "admin:s3cret-pw"
    assert "--address=127.0.0.1" in flower.argv
    # Only Flower gets it.
    assert all("FLOWER_BASIC_AUTH" not in c.env for n, c in children.items() if n != "flower")
