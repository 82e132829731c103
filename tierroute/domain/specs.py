"""What a client may ask for: one validated shape shared by the API, the CLI and batches."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tierroute.domain.anthropic_request import (
    CUSTOM_ID_PATTERN,
    PASSTHROUGH,
    AnthropicThinking,
    MessageTurn,
    OutputConfig,
    StoredRequest,
    stored_request,
    thinking_from_anthropic,
)
from tierroute.domain.errors import InvalidInput
from tierroute.domain.storable import check_json, check_metadata, check_text
from tierroute.domain.tiers import EFFORT_LEVELS, active_tier_table

MAX_PROMPT_CHARS = 800_000  # ~200k tokens: the tier models' context window


class ThinkingOverride(BaseModel):
    """A request's own thinking settings; tiers apply only what their model supports."""

    model_config = ConfigDict(extra="forbid")

    thinking: Literal["none", "adaptive", "enabled"] | None = None
    budget_tokens: int | None = Field(default=None, ge=1024, le=64000)
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class JobSpec(BaseModel):
    """One request to route and answer: a `prompt`, or Anthropic's `messages` and parameters."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    # Shorthand for one user turn; exactly one of `prompt` and `messages` is given.
    prompt: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_CHARS)
    messages: list[MessageTurn] | None = Field(default=None, min_length=1, max_length=10_000)
    system: str | list[dict[str, Any]] | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=128000)
    force_tier: int | str | None = None
    # tierroute's own override ({"thinking": "none"}) or Anthropic's ({"type": "enabled"}).
    thinking: ThinkingOverride | AnthropicThinking | None = None
    metadata: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    stop_sequences: list[str] | None = Field(default=None, max_length=8191)
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    output_config: OutputConfig | None = None
    custom_id: str | None = Field(default=None, pattern=CUSTOM_ID_PATTERN)
    # Follow-ups never run on a cheaper tier than an earlier turn of the conversation.
    sticky: bool = False

    @model_validator(mode="before")
    @classmethod
    def _asks_something(cls, data: Any) -> Any:
        # Checked first: a body with neither would otherwise only hear about its
        # unknown fields (e.g. `text`), never that `prompt` is what is missing.
        if isinstance(data, dict) and data.get("prompt") is None and data.get("messages") is None:
            unknown = sorted(str(key) for key in data if key not in cls.model_fields)
            hint = f" (unknown fields: {', '.join(unknown)})" if unknown else ""
            raise ValueError(f"give exactly one of `prompt` and `messages`{hint}")
        return data

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> JobSpec:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of `prompt` and `messages`")
        if self.messages is not None and not any(t.role == "user" for t in self.messages):
            raise ValueError("messages: needs at least one user turn")
        if isinstance(self.system, str) and len(self.system) > MAX_PROMPT_CHARS:
            raise ValueError(f"system: at most {MAX_PROMPT_CHARS} characters")
        return self

    def stored(self) -> StoredRequest:
        """The job row's prompt, system, thinking override and request_params."""
        thinking = self.thinking
        effort = self.output_config.effort if self.output_config else None
        if isinstance(thinking, AnthropicThinking) or (thinking is None and effort):
            override = thinking_from_anthropic(thinking, effort)
        else:
            override = thinking.as_dict() if thinking else None
        extras: dict[str, Any] = {key: getattr(self, key) for key in PASSTHROUGH}
        extras["custom_id"] = self.custom_id
        if self.output_config is not None and self.output_config.format is not None:
            extras["output_config"] = {
                "format": self.output_config.format.model_dump(by_alias=True)
            }
        return stored_request(
            prompt=self.prompt,
            messages=self.messages,
            system=self.system,
            thinking_override=override,
            extras=extras,
            metadata=self.metadata,
            sticky=self.sticky,
        )

    @field_validator("prompt")
    @classmethod
    def _storable_text(cls, value: str | None) -> str | None:
        return check_text(value)

    @field_validator("system", "tools", "tool_choice", "stop_sequences")
    @classmethod
    def _storable_json(cls, value: Any) -> Any:
        return check_json(value)

    @field_validator("metadata")
    @classmethod
    def _storable_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_metadata(value)

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty or only whitespace")
        return value

    @field_validator("force_tier")
    @classmethod
    def _known_tier(cls, value: int | str | None) -> str | None:
        if value is None:
            return None
        try:
            return active_tier_table().parse(value).name
        except InvalidInput as exc:
            raise ValueError(exc.detail.removeprefix("force_tier: ")) from exc


def parse_spec(item: object, where: str) -> JobSpec:
    """Validate one submitted item; the error names `where` (a line or item) and the field."""
    try:
        return JobSpec.model_validate(item)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "value"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(where, f"{field}: {message}") from None


__all__ = ["EFFORT_LEVELS", "JobSpec", "ThinkingOverride", "parse_spec"]
