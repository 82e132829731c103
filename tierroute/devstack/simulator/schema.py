"""Generate a JSON value that is valid for a JSON schema, deterministically from a seed.

Covers the subset structured outputs use: object, array, string, integer, number,
boolean, null, enum, const, anyOf/oneOf/allOf, type lists and local $ref.
"""

from __future__ import annotations

import random
from typing import Any

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "sample", "record")
_STRING_FORMATS = {
    "date": "2026-01-15",
    "date-time": "2026-01-15T12:00:00Z",
    "time": "12:00:00",
    "email": "simulated@example.com",
    "uri": "https://example.com/simulated",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "simulated.example.com",
    "ipv4": "192.0.2.1",
}
_MAX_DEPTH = 8


class SchemaGenerator:
    """Builds example instances of one schema; `$ref`s resolve against that schema."""

    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Follow a local `$ref` (#/$defs/..., #/definitions/...) to its target."""
        seen = 0
        while "$ref" in schema and seen < _MAX_DEPTH:
            target: Any = self.root
            for part in str(schema["$ref"]).lstrip("#/").split("/"):
                if not part:
                    continue
                target = target.get(part, {}) if isinstance(target, dict) else {}
            schema = target if isinstance(target, dict) else {}
            seen += 1
        return schema

    def generate(self, schema: Any, name: str = "value", depth: int = 0) -> Any:
        """An instance of `schema`; `name` (the property name) flavours strings."""
        if not isinstance(schema, dict):
            return None
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                # The first non-null branch gives the most informative example.
                branches = [self.resolve(b) for b in schema[key] if isinstance(b, dict)]
                useful = [b for b in branches if b.get("type") != "null"] or branches
                return self.generate(useful[0], name, depth + 1)
        if schema.get("allOf"):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged = _merge(merged, self.resolve(part) if isinstance(part, dict) else {})
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            return self.generate(_merge(merged, rest), name, depth + 1)
        kind = _pick_type(schema)
        if depth > _MAX_DEPTH:
            return _shallow(kind)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "string":
            return self._string(schema, name)
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "boolean":
            return self.rng.random() < 0.5
        return None

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        # Every declared property is filled; required ones must be, and the
        # others make the example more useful. Undeclared keys are never added,
        # so additionalProperties: false holds.
        result = {key: self.generate(sub, key, depth + 1) for key, sub in properties.items()}
        for key in schema.get("required") or []:
            if key not in result:
                result[key] = self.generate(schema.get("additionalProperties"), key, depth + 1)
        return result

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 1))
        high = int(schema.get("maxItems", max(low, 3)))
        count = max(low, min(high, 2))
        prefix = schema.get("prefixItems") or []
        items = [self.generate(sub, name, depth + 1) for sub in prefix[:count]]
        item_schema = schema.get("items", {"type": "string"})
        while len(items) < count:
            items.append(self.generate(item_schema, name, depth + 1))
        if schema.get("uniqueItems") and all(isinstance(i, str) for i in items):
            items = [f"{item} {i}" if i else item for i, item in enumerate(items)]
        return items

    def _string(self, schema: dict[str, Any], name: str) -> str:
        if schema.get("format") in _STRING_FORMATS:
            return _STRING_FORMATS[str(schema["format"])]
        word = self.rng.choice(_WORDS)
        text = f"simulated {name} {word}"
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        if len(text) < low:
            text += "x" * (low - len(text))
        if high is not None:
            text = text[: int(high)]
        return text

    def _integer(self, schema: dict[str, Any]) -> int:
        low, high = _bounds(schema, integer=True)
        value = self.rng.randint(int(low), int(high))
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            value = (value // step) * step
            if value < low:
                value += step
        return value

    def _number(self, schema: dict[str, Any]) -> float:
        low, high = _bounds(schema, integer=False)
        return round(low + (high - low) * self.rng.random(), 3) if high > low else low


def _pick_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [k for k in kind if k != "null"]
        return str(non_null[0]) if non_null else "null"
    if isinstance(kind, str):
        return kind
    return "object" if "properties" in schema else "string"


def _shallow(kind: str) -> Any:
    """A minimal value for schemas nested too deep to recurse further."""
    return {"object": {}, "array": [], "string": "", "integer": 0, "number": 0.0}.get(kind)


def _bounds(schema: dict[str, Any], *, integer: bool) -> tuple[float, float]:
    """Inclusive [low, high] from minimum/maximum and their exclusive forms."""
    nudge = 1 if integer else 1e-3
    low = float(schema.get("minimum", 0))
    high = float(schema.get("maximum", max(low, 0) + 100))
    if "exclusiveMinimum" in schema:
        low = float(schema["exclusiveMinimum"]) + nudge
    if "exclusiveMaximum" in schema:
        high = float(schema["exclusiveMaximum"]) - nudge
    if integer:
        low, high = float(int(-(-low // 1))), float(int(high // 1))
    return low, max(low, high)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Combine allOf parts: properties and required lists are unioned."""
    merged = {**base, **extra}
    merged["properties"] = {**base.get("properties", {}), **extra.get("properties", {})}
    required = [*base.get("required", []), *extra.get("required", [])]
    merged["required"] = list(dict.fromkeys(required))
    if not merged["properties"]:
        del merged["properties"]
    if not merged["required"]:
        del merged["required"]
    return merged


def generate_instance(schema: dict[str, Any], seed: int) -> Any:
    """A value valid for `schema`, the same for the same seed."""
    return SchemaGenerator(schema, random.Random(seed)).generate(schema)
