"""Anthropic's request shapes read as tierroute jobs: a Messages body, a Message Batches line.

`model` chooses the routing: `tierroute-auto` routes, a tier name or a tier's model
forces that tier. Parameters Anthropic has but tierroute does not honour are refused
by name, so a caller never believes a setting took effect when it did not.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from tierroute.domain.anthropic_request import CUSTOM_ID_PATTERN
from tierroute.domain.errors import InvalidInput
from tierroute.domain.specs import JobSpec, parse_spec
from tierroute.domain.tiers import TierTable

AUTO_MODEL = "tierroute-auto"
# Taken from a Messages body into the job as they are.
ACCEPTED = frozenset(
    {
        "messages",
        "system",
        "max_tokens",
        "metadata",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "thinking",
        "output_config",
        "tools",
        "tool_choice",
        # tierroute's own: keep the conversation on its tier without a conversation_id.
        "sticky",
    }
)


def forced_tier(model: object, tiers: TierTable, where: str = "model") -> str | None:
    """The tier `model` forces: None for `tierroute-auto`, else a tier name."""
    if model == AUTO_MODEL:
        return None
    if isinstance(model, str):
        if model in tiers.names or model.isdigit():
            return tiers.parse(model).name
        tier = tiers.by_model(model)
        if tier is not None:
            return tier.name
    known = ", ".join([*tiers.names, *(t.model for t in tiers.tiers)])
    raise InvalidInput(where, f"{model!r} is not a model here; use {AUTO_MODEL!r} or {known}")


def _check_metadata(metadata: object, where: str) -> None:
    """Anthropic's `user_id` and tierroute's conversation keys, each of its own type."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise InvalidInput(where, "must be an object")
    for name, kind in (("user_id", str), ("conversation_id", str), ("sticky", bool)):
        value = metadata.get(name)
        if value is not None and not isinstance(value, kind):
            raise InvalidInput(f"{where}.{name}", f"must be a {kind.__name__}")


def spec_from_messages_body(
    body: object,
    tiers: TierTable,
    where: str = "",
    custom_id: str | None = None,
    *,
    stream_ok: bool = False,
) -> JobSpec:
    """A job from a Messages API body (`POST /v1/messages`, or a batch line's `params`).

    `stream_ok`: the caller answers `stream: true` (a batch request cannot ask for it)."""
    if not isinstance(body, dict):
        raise InvalidInput(where.rstrip(".") or "body", "must be a JSON object")
    for name in body:
        if name not in ACCEPTED and name not in ("model", "stream"):
            raise InvalidInput(f"{where}{name}", "is not supported by tierroute")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidInput(f"{where}stream", "must be a boolean")
    if stream and not stream_ok:
        raise InvalidInput(f"{where}stream", "a batch request cannot be streamed")
    for required in ("model", "max_tokens", "messages"):
        if body.get(required) is None:
            raise InvalidInput(f"{where}{required}", "Field required")
    _check_metadata(body.get("metadata"), f"{where}metadata")
    item = {name: value for name, value in body.items() if name in ACCEPTED}
    item["force_tier"] = forced_tier(body["model"], tiers, f"{where}model")
    if custom_id is not None:
        item["custom_id"] = custom_id
    return parse_spec(item, where.rstrip(".") or "body")


def is_batch_line(item: object) -> bool:
    """Whether a JSONL object is a Message Batches request (`custom_id` and `params`)."""
    return isinstance(item, dict) and "custom_id" in item and "params" in item


def spec_from_batch_line(item: object, tiers: TierTable, where: str) -> JobSpec:
    """A job from one Message Batches request `{"custom_id", "params"}`."""
    if not is_batch_line(item):
        raise InvalidInput(where, "needs `custom_id` and `params`")
    assert isinstance(item, dict)
    extra = sorted(set(item) - {"custom_id", "params"})
    if extra:
        raise InvalidInput(f"{where}: {extra[0]}", "is not a field of a batch request")
    custom_id = item["custom_id"]
    if not isinstance(custom_id, str):
        raise InvalidInput(f"{where}: custom_id", "must be a string")
    params: Any = item["params"]
    return spec_from_messages_body(params, tiers, f"{where}: params.", custom_id)


class BatchParamsSpec(JobSpec):
    """A batch request's `params` read as a job: a JobSpec, plus `model` and `stream`.

    Those two are spent on the way in (`model` becomes `force_tier`); they are left
    out of dumps, so the job is the one `spec_from_batch_line` makes.
    """

    model: str = Field(exclude=True)
    # Strict, as spec_from_messages_body is: `"stream": 0` is refused there, not False.
    stream: StrictBool | None = Field(default=None, exclude=True)


class _BatchLine(BaseModel):
    """A whole Message Batches line, validated from its JSON in one pass."""

    model_config = ConfigDict(extra="forbid")

    custom_id: str
    params: BatchParamsSpec


# JobSpec fields a batch request's params may not set (tierroute's own shape).
_NOT_PARAMS = frozenset(JobSpec.model_fields) - ACCEPTED
_CUSTOM_ID = re.compile(CUSTOM_ID_PATTERN.removeprefix("^").removesuffix("$"))


def batch_line_spec_from_json(raw: bytes, tiers: TierTable) -> JobSpec | None:
    """The job `spec_from_batch_line` makes of a valid line, or None to take that path.

    One parse in pydantic's Rust JSON reader, straight into the job's models, instead
    of `json.loads`, a dict and a second validation: most lines of a 100,000-line batch
    file are valid, and this was most of their cost at submit (bench
    `submit_anthropic_prompts_per_s`). Whatever this path is not sure of (a bad line,
    and odd ones such as NaN or a lone surrogate, which Python's json reads and
    pydantic's does not) returns None, so `spec_from_batch_line` decides and names the
    problem, and both paths agree.
    """
    try:
        line = _BatchLine.model_validate_json(raw)
    except ValidationError:
        return None
    spec = line.params
    if (
        spec.model_fields_set & _NOT_PARAMS
        or spec.max_tokens is None
        or spec.stream is True
        or _CUSTOM_ID.fullmatch(line.custom_id) is None
    ):
        return None
    try:
        _check_metadata(spec.metadata, "metadata")
        spec.force_tier = forced_tier(spec.model, tiers)  # a tier name, as validated
    except InvalidInput:
        return None
    spec.custom_id = line.custom_id
    return spec
