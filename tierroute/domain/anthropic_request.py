"""Anthropic Messages API parameters on a job: their shapes, and how a job row stores them.

A job keeps `prompt` (the last user turn, what the classifier routes on) and
`system` (the system text plus the conversation so far, the classifier's context
and the budget's estimate) in their columns; whatever else the model call needs
(the turns themselves, sampling parameters, tools, structured output, custom_id)
goes in the `request_params` JSONB column, built here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tierroute.domain.storable import check_json

# How much of the earlier conversation the classifier sees: enough to read what the
# last turn refers to, without paying to classify a whole transcript.
MAX_CONTEXT_CHARS = 8_000
# Parameters copied as they are into the model call (tierroute does not interpret them).
PASSTHROUGH = ("temperature", "top_p", "top_k", "stop_sequences", "tools", "tool_choice")
# The marker in `thinking_override` that tells the complete step to load request_params.
PARAMS_MARKER = "request_params"
CUSTOM_ID_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class MessageTurn(BaseModel):
    """One turn of a conversation: text, or content blocks passed through as they are."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]

    @field_validator("content")
    @classmethod
    def _blocks(cls, value: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
        check_json(value)
        if isinstance(value, str):
            return value
        for number, block in enumerate(value):
            if not isinstance(block.get("type"), str):
                raise ValueError(f"block {number}: `type` is required")
            if block["type"] == "text" and not isinstance(block.get("text"), str):
                raise ValueError(f"block {number}: a text block needs `text`")
        return value


class AnthropicThinking(BaseModel):
    """Anthropic's `thinking` parameter (`{"type": "enabled", "budget_tokens": N}` etc.)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["enabled", "adaptive", "disabled"]
    budget_tokens: int | None = Field(default=None, ge=1024, le=64000)
    display: Literal["summarized", "omitted"] | None = None


class JsonSchemaFormat(BaseModel):
    """Structured output: the answer is JSON that follows `schema`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(BaseModel):
    """Anthropic's `output_config`: a structured-output format and an effort level."""

    model_config = ConfigDict(extra="forbid")

    format: JsonSchemaFormat | None = None
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None


def block_text(content: str | list[dict[str, Any]]) -> str:
    """The text of a turn or system: its text blocks joined; other blocks named."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            parts.append(f"[{block.get('type')}]")
    return "\n".join(parts)


@dataclass(frozen=True)
class StoredRequest:
    """What a job row holds of a request: columns and the request_params JSON."""

    prompt: str
    system: str | None
    thinking_override: dict[str, Any] | None
    request_params: dict[str, Any] | None


def _last_user_index(turns: list[MessageTurn]) -> int:
    for index in range(len(turns) - 1, -1, -1):
        if turns[index].role == "user":
            return index
    raise ValueError("needs at least one user turn")


def _context(turns: list[MessageTurn], last_user: int) -> str:
    """The turns around the last user turn, most recent kept when there are too many."""
    lines = [
        f"{turn.role}: {block_text(turn.content)}"
        for index, turn in enumerate(turns)
        if index != last_user
    ]
    text = "\n".join(lines)
    return text[-MAX_CONTEXT_CHARS:]


def conversation_key(
    metadata: dict[str, Any] | None, sticky: bool, system: str | None, first_user: str
) -> str | None:
    """Which conversation a job belongs to: its conversation_id, or (sticky) its opening."""
    conversation_id = (metadata or {}).get("conversation_id")
    if conversation_id is not None:
        return f"id:{conversation_id}"
    if sticky or (metadata or {}).get("sticky") is True:
        opening = f"{system or ''}\x1f{first_user}".encode()
        return "open:" + hashlib.sha256(opening).hexdigest()[:32]
    return None


def stored_request(
    *,
    prompt: str | None,
    messages: list[MessageTurn] | None,
    system: str | list[dict[str, Any]] | None,
    thinking_override: dict[str, Any] | None,
    extras: dict[str, Any],
    metadata: dict[str, Any] | None,
    sticky: bool,
) -> StoredRequest:
    """The row of a request given as `prompt` or as `messages` plus Anthropic's parameters."""
    system_text = block_text(system) if system is not None else None
    params: dict[str, Any] = {key: value for key, value in extras.items() if value is not None}
    if messages is None:
        assert prompt is not None  # the spec requires one of the two
        last = prompt
        first_user = prompt
        classifier_system = system_text
        turns = 1
        if isinstance(system, list):
            params["system"] = system
    else:
        index = _last_user_index(messages)
        last = block_text(messages[index].content) or "[no text]"
        first_user = next(block_text(t.content) for t in messages if t.role == "user")
        turns = sum(1 for turn in messages if turn.role == "user")
        simple = len(messages) == 1 and isinstance(messages[0].content, str)
        if not simple or isinstance(system, list):
            params["messages"] = [turn.model_dump() for turn in messages]
            if system is not None:
                params["system"] = system
        context = _context(messages, index)
        classifier_system = system_text
        if context:
            head = f"{system_text}\n\n" if system_text else ""
            classifier_system = f"{head}Conversation so far:\n{context}"
    user_id = (metadata or {}).get("user_id")
    if isinstance(user_id, str):
        params["metadata"] = {"user_id": user_id}
    key = conversation_key(metadata, sticky, system_text, first_user)
    if key is not None:
        params["conversation"] = key
        params["turn"] = turns
    override = dict(thinking_override) if thinking_override else None
    needs_call_params = any(k not in ("custom_id", "conversation", "turn") for k in params)
    if needs_call_params:
        override = {**(override or {}), PARAMS_MARKER: True}
    return StoredRequest(
        prompt=last,
        system=classifier_system,
        thinking_override=override,
        request_params=params or None,
    )


def thinking_from_anthropic(
    thinking: AnthropicThinking | None, effort: str | None
) -> dict[str, Any] | None:
    """Anthropic's `thinking` and `output_config.effort` as a tier thinking override."""
    override: dict[str, Any] = {}
    if thinking is not None:
        override["thinking"] = "none" if thinking.type == "disabled" else thinking.type
        if thinking.budget_tokens is not None:
            override["budget_tokens"] = thinking.budget_tokens
    if effort is not None:
        override["effort"] = effort
    return override or None
