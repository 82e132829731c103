"""Check a Messages request the way the real API does, including per-model capabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tierroute.domain.tiers import EFFORT_LEVELS, TierTable

MIN_THINKING_BUDGET = 1024


class InvalidRequest(Exception):
    """The request would get a 400 invalid_request_error from the real API."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Capabilities:
    """What a model accepts. Unknown models accept everything."""

    adaptive_thinking: bool = True
    effort: bool = True
    max_output_tokens: int | None = None


def capabilities_for(model: str, table: TierTable) -> Capabilities:
    """Capabilities from the tier table row for `model`, or permissive defaults."""
    tier = table.by_model(model)
    if tier is None:
        return Capabilities()
    return Capabilities(
        adaptive_thinking=tier.supports_adaptive_thinking,
        effort=tier.supports_effort,
        max_output_tokens=tier.max_output_tokens,
    )


@dataclass(frozen=True)
class MessageRequest:
    """The parts of a valid request the simulator acts on."""

    model: str
    max_tokens: int
    messages: list[dict[str, Any]]
    thinking_type: str | None
    budget_tokens: int | None
    thinking_display: str | None
    effort: str | None
    schema: dict[str, Any] | None
    stream: bool = False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def require_model(body: Any) -> str:
    """The request's model id; the body must be a JSON object with a string model."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required")
    return model


def validate_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """`messages` must be a non-empty list of {role, content} turns."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages.{index}: must be an object")
        if message.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{index}.role: must be 'user' or 'assistant'")
        if not isinstance(message.get("content"), str | list):
            raise InvalidRequest(f"messages.{index}.content: must be a string or a list")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise InvalidRequest("system: must be a string or a list of text blocks")
    return messages


def _validate_thinking(
    body: dict[str, Any], model: str, max_tokens: int, caps: Capabilities
) -> tuple[str | None, int | None, str | None]:
    thinking = body.get("thinking")
    if thinking is None:
        return None, None, None
    if not isinstance(thinking, dict):
        raise InvalidRequest("thinking: must be an object")
    kind = thinking.get("type")
    display = thinking.get("display")
    if kind == "disabled":
        return None, None, None
    if kind == "adaptive":
        if not caps.adaptive_thinking:
            raise InvalidRequest(
                f"thinking.type: adaptive thinking is not supported on model {model}"
            )
        return "adaptive", None, display
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < MIN_THINKING_BUDGET:
            raise InvalidRequest(
                f"thinking.enabled.budget_tokens: Input should be greater than or equal to "
                f"{MIN_THINKING_BUDGET}"
            )
        if budget >= max_tokens:
            raise InvalidRequest("`max_tokens` must be greater than `thinking.budget_tokens`")
        return "enabled", budget, display
    raise InvalidRequest("thinking.type: must be 'enabled', 'adaptive' or 'disabled'")


def _validate_output_config(
    body: dict[str, Any], model: str, caps: Capabilities
) -> tuple[str | None, dict[str, Any] | None]:
    config = body.get("output_config")
    if config is None:
        return None, None
    if not isinstance(config, dict):
        raise InvalidRequest("output_config: must be an object")
    extra = sorted(set(config) - {"effort", "format"})
    if extra:
        raise InvalidRequest(f"output_config.{extra[0]}: Extra inputs are not permitted")
    effort = config.get("effort")
    if effort is not None:
        if effort not in EFFORT_LEVELS:
            raise InvalidRequest(f"output_config.effort: must be one of {', '.join(EFFORT_LEVELS)}")
        if not caps.effort:
            raise InvalidRequest(f"output_config.effort: effort is not supported on model {model}")
    fmt = config.get("format")
    if fmt is None:
        return effort, None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise InvalidRequest("output_config.format.type: must be 'json_schema'")
    if not isinstance(fmt.get("schema"), dict):
        raise InvalidRequest("output_config.format.schema: Field required")
    return effort, fmt["schema"]


def validate_request(body: Any, table: TierTable) -> MessageRequest:
    """Parse a /v1/messages body or raise InvalidRequest naming the problem."""
    model = require_model(body)
    max_tokens = body.get("max_tokens")
    # The API accepts 0 ("pre-warm the prompt cache without generating").
    if not _is_int(max_tokens) or max_tokens < 0:
        raise InvalidRequest("max_tokens: must be an integer >= 0")
    caps = capabilities_for(model, table)
    if caps.max_output_tokens is not None and max_tokens > caps.max_output_tokens:
        raise InvalidRequest(
            f"max_tokens: {max_tokens} > {caps.max_output_tokens}, which is the maximum "
            f"allowed number of output tokens for {model}"
        )
    messages = validate_messages(body)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("stream: must be a boolean")
    thinking_type, budget, display = _validate_thinking(body, model, max_tokens, caps)
    temperature = body.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, int | float) or not 0.0 <= temperature <= 1.0:
            raise InvalidRequest("temperature: must be between 0 and 1")
        if thinking_type is not None and temperature != 1:
            raise InvalidRequest("`temperature` may only be set to 1 when thinking is enabled")
    effort, schema = _validate_output_config(body, model, caps)
    return MessageRequest(
        model=model,
        max_tokens=max_tokens,
        messages=messages,
        thinking_type=thinking_type,
        budget_tokens=budget,
        thinking_display=display,
        effort=effort,
        schema=schema,
        stream=stream,
    )
