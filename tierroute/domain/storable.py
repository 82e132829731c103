"""What Postgres can store: text without NUL or lone surrogates, JSON without NaN or Infinity.

Python's json module accepts `NaN`, `Infinity` and `1e999` (as inf) and `"\\ud800"`
(as a lone surrogate), but Postgres rejects all of them in `text` and `jsonb`. A value
that slips through validation fails at INSERT, as a 500; these checks make it a 422
that names the field and the place in it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Metadata is a caller's labels for a job (ids, tags), kept on every row; 16 KiB is
# far beyond that and keeps a 100,000-job batch's metadata under 1.6 GB.
MAX_METADATA_BYTES = 16 * 1024
# Deeper nesting is not labelling, and json.dumps recurses once per level.
MAX_METADATA_DEPTH = 32

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why Postgres cannot store `text`, or None if it can."""
    if "\x00" in text:
        return "must not contain NUL (\\u0000) characters"
    if not text.isascii() and _LONE_SURROGATE.search(text):
        return "must not contain lone UTF-16 surrogates (\\ud800-\\udfff); send valid Unicode"
    return None


def _json_problem(value: Any) -> str | None:
    """The first place in a JSON value Postgres cannot store, as `at <path>: why`."""
    # An explicit stack, not recursion: the value comes from a client.
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            return f"nested deeper than {MAX_METADATA_DEPTH} levels (at {path or 'top'})"
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"{problem} (at {path or 'top'})"
        elif isinstance(item, float) and not math.isfinite(item):
            return f"NaN and Infinity are not valid JSON numbers (at {path or 'top'})"
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = text_problem(str(key))
                if problem:
                    return f"{problem} (in a key at {path or 'top'})"
                stack.append((child, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{n}]", depth + 1) for n, child in enumerate(item))
    return None


def check_text(value: str | None) -> str | None:
    """`value` unchanged, or ValueError if it is a string Postgres cannot store."""
    if value is not None:
        problem = text_problem(value)
        if problem:
            raise ValueError(problem)
    return value


def check_json(value: Any) -> Any:
    """`value` unchanged, or ValueError naming where Postgres could not store it as JSON."""
    problem = _json_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def check_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """`value` unchanged, or ValueError naming where it is not storable JSON or too large."""
    if value is None:
        return None
    problem = _json_problem(value)
    if problem:
        raise ValueError(problem)
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"{size} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed")
    return value
