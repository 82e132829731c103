"""The declarative tier table: models, prices and thinking settings per tier."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from tierroute.domain.errors import ConfigurationError, InvalidInput

EFFORT_LEVELS = ("low", "medium", "high", "xhigh", "max")


class ThinkingMode(StrEnum):
    """How a tier asks the model to think."""

    NONE = "none"
    ADAPTIVE = "adaptive"
    ENABLED = "enabled"


@dataclass(frozen=True)
class Tier:
    """One row of the tier table. Prices are USD per million tokens."""

    name: str
    rank: int
    model: str
    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    context_window: int
    max_output_tokens: int
    supports_adaptive_thinking: bool
    supports_effort: bool
    thinking: ThinkingMode = ThinkingMode.NONE
    thinking_budget_tokens: int = 0
    effort: str | None = None
    # Anthropic's per-minute limits for the model (requests, input and output
    # tokens); 0 means unlimited. A deployment sets its own organisation's figures.
    rpm: int = 0
    itpm: int = 0
    otpm: int = 0
    # The shortest prefix (tokens up to a cache_control breakpoint) the model caches;
    # a shorter one is billed in full and never cached. 0 turns caching off for the tier.
    min_cache_tokens: int = 1024

    def __post_init__(self) -> None:
        if self.thinking is ThinkingMode.ADAPTIVE and not self.supports_adaptive_thinking:
            raise ConfigurationError(f"tier {self.name}: {self.model} has no adaptive thinking")
        if self.effort is not None and not self.supports_effort:
            raise ConfigurationError(f"tier {self.name}: {self.model} does not accept effort")
        if self.effort is not None and self.effort not in EFFORT_LEVELS:
            raise ConfigurationError(f"tier {self.name}: unknown effort {self.effort!r}")
        if self.thinking is ThinkingMode.ENABLED and self.thinking_budget_tokens < 1024:
            raise ConfigurationError(f"tier {self.name}: thinking budget must be >= 1024 tokens")


@dataclass(frozen=True)
class TierTable:
    """All tiers, cheapest first, with lookups by name, rank and model."""

    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        ranks = [t.rank for t in self.tiers]
        if sorted(ranks) != list(range(1, len(ranks) + 1)):
            raise ConfigurationError(f"tier ranks must be 1..N without gaps, got {ranks}")

    @property
    def names(self) -> list[str]:
        return [t.name for t in sorted(self.tiers, key=lambda t: t.rank)]

    @property
    def top(self) -> Tier:
        """The most capable tier: the baseline that savings are measured against."""
        return max(self.tiers, key=lambda t: t.rank)

    @property
    def cheapest(self) -> Tier:
        return min(self.tiers, key=lambda t: t.rank)

    def get(self, name: str) -> Tier:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise ConfigurationError(f"unknown tier {name!r}; known: {', '.join(self.names)}")

    def by_rank(self, rank: int) -> Tier:
        for tier in self.tiers:
            if tier.rank == rank:
                return tier
        raise ConfigurationError(f"no tier of rank {rank}")

    def by_model(self, model: str) -> Tier | None:
        for tier in self.tiers:
            if tier.model == model:
                return tier
        return None

    def parse(self, value: object) -> Tier:
        """Read a user's tier choice: a rank (1..N, int or digit string) or a tier name."""
        if isinstance(value, bool):
            raise InvalidInput("force_tier", "must be a tier rank or name")
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            rank = int(value)
            if not 1 <= rank <= len(self.tiers):
                raise InvalidInput(
                    "force_tier", f"{rank} is not a tier; use 1..{len(self.tiers)} or a name"
                )
            return self.by_rank(rank)
        if isinstance(value, str):
            name = value.strip().lower()
            for tier in self.tiers:
                if tier.name == name:
                    return tier
            raise InvalidInput(
                "force_tier",
                f"{value!r} is not a tier; use 1..{len(self.tiers)} or one of "
                f"{', '.join(self.names)}",
            )
        raise InvalidInput("force_tier", "must be a tier rank (int) or name (str)")

    def cost_ratio(self, tier: Tier) -> float:
        """Price of a tier relative to the top tier (input and output prices averaged)."""
        top = self.top
        return float((tier.input + tier.output) / (top.input + top.output))


def _tier_from_row(row: dict[str, Any]) -> Tier:
    money = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
    values = dict(row)
    for key in money:
        values[key] = Decimal(str(values[key]))
    values["thinking"] = ThinkingMode(values.get("thinking", "none"))
    try:
        return Tier(**values)
    except TypeError as exc:
        raise ConfigurationError(f"bad tier row {row.get('name')!r}: {exc}") from exc


def load_tier_table(path: Path | None = None) -> TierTable:
    """Load the tier table from `path`, or the bundled default."""
    if path is None:
        text = resources.files("tierroute.domain").joinpath("tiers.toml").read_text()
    else:
        text = path.read_text()
    data = tomllib.loads(text)
    return TierTable(tuple(_tier_from_row(row) for row in data.get("tier", [])))


# Where rules in the domain (a request's force_tier) find the process's tier table.
# The domain reads no settings, so config installs its own source at import
# (TIERROUTE_TIERS_FILE); until then it is the bundled table.
_table_source: Callable[[], TierTable] = load_tier_table


def use_tier_table(source: Callable[[], TierTable]) -> None:
    """Make `source` the tier table `active_tier_table` returns."""
    global _table_source
    _table_source = source


def active_tier_table() -> TierTable:
    """The tier table this process routes with."""
    return _table_source()
