"""Reading prompt files (JSONL) with errors that name the line."""

from __future__ import annotations

import json
from pathlib import Path

from tierroute.errors import InvalidInput
from tierroute.specs import JobSpec, parse_spec


def read_prompt_file(path: Path, force_tier: str | None = None) -> list[JobSpec]:
    """Parse a JSONL prompt file; the first bad line raises InvalidInput naming it."""
    specs: list[JobSpec] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{number}", f"not valid JSON: {exc.msg}") from None
            if force_tier is not None and isinstance(item, dict):
                item["force_tier"] = force_tier
            specs.append(parse_spec(item, f"{path}:{number}"))
    if not specs:
        raise InvalidInput(str(path), "no prompts in file")
    return specs


def to_ndjson(specs: list[JobSpec]) -> bytes:
    """Specs as an NDJSON request body."""
    lines = (spec.model_dump_json(exclude_none=True) for spec in specs)
    return ("\n".join(lines) + "\n").encode()
