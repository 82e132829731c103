"""What a client may ask for: one validated shape shared by the API, the CLI and batches."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tierroute.domain.errors import InvalidInput
from tierroute.domain.storable import check_metadata, check_text
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
    """One prompt to route and answer."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    system: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    max_tokens: int | None = Field(default=None, ge=1, le=64000)
    force_tier: int | str | None = None
    thinking: ThinkingOverride | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("prompt", "system")
    @classmethod
    def _storable_text(cls, value: str | None) -> str | None:
        return check_text(value)

    @field_validator("metadata")
    @classmethod
    def _storable_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_metadata(value)

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
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
