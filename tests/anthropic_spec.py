"""Anthropic's OpenAPI spec (shared/data/anthropic-openapi.json) as JSON Schema validators."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

SPEC_PATH = Path(
    os.environ.get("TIERROUTE_ANTHROPIC_SPEC")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "anthropic-openapi.json"
)


@functools.cache
def _components() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.skip(f"no OpenAPI spec at {SPEC_PATH}")
    components: dict[str, Any] = json.loads(SPEC_PATH.read_text())["components"]
    return components


@functools.cache
def validator(schema_name: str) -> Any:
    """A validator for one of the spec's component schemas (refs resolved in the spec)."""
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": _components(),
        "$ref": f"#/components/schemas/{schema_name}",
    }
    return jsonschema_rs.validator_for(root)


def problems(schema_name: str, value: Any) -> list[str]:
    """What is wrong with `value` by the spec's `schema_name`; empty when it is valid."""
    return [f"{e.instance_path}: {e.message}" for e in validator(schema_name).iter_errors(value)]
