"""Dollars from the SDK's usage object, cache tokens included."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from tierroute.domain.tiers import Tier

MILLION = Decimal(1_000_000)


class CacheCreationLike(Protocol):
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int


class UsageLike(Protocol):
    """The fields of `anthropic.types.Usage` that cost depends on."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None
    cache_read_input_tokens: int | None

    @property
    def cache_creation(self) -> CacheCreationLike | None: ...


@dataclass(frozen=True)
class TokenCounts:
    """Token counts of one call, normalised (None → 0, cache writes split by TTL)."""

    input_tokens: int
    output_tokens: int
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0

    @property
    def cache_creation_input_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_write_5m_tokens=self.cache_write_5m_tokens + other.cache_write_5m_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
        )

    @classmethod
    def from_usage(cls, usage: UsageLike) -> TokenCounts:
        created = usage.cache_creation_input_tokens or 0
        breakdown = getattr(usage, "cache_creation", None)
        if breakdown is not None:
            write_5m = breakdown.ephemeral_5m_input_tokens
            write_1h = breakdown.ephemeral_1h_input_tokens
        else:
            # Without a TTL breakdown the write used the default 5-minute cache.
            write_5m, write_1h = created, 0
        return cls(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_write_5m_tokens=write_5m,
            cache_write_1h_tokens=write_1h,
            cache_read_tokens=usage.cache_read_input_tokens or 0,
        )


def cost_usd(tokens: TokenCounts, tier: Tier) -> Decimal:
    """What `tokens` cost at `tier`'s prices. Thinking tokens are in output_tokens."""
    total = (
        tokens.input_tokens * tier.input
        + tokens.output_tokens * tier.output
        + tokens.cache_write_5m_tokens * tier.cache_write_5m
        + tokens.cache_write_1h_tokens * tier.cache_write_1h
        + tokens.cache_read_tokens * tier.cache_read
    )
    return total / MILLION


def worst_case_write(tokens: int, ttl: str, tier: Tier) -> TokenCounts:
    """`tokens` that a call may write to the cache with `ttl` ("5m" or "1h"), counted
    at the dearer of that write and plain input, for a ceiling that never undercounts:
    a prefix the API does not cache bills as input instead."""
    write_price = tier.cache_write_1h if ttl == "1h" else tier.cache_write_5m
    if write_price < tier.input:
        return TokenCounts(input_tokens=tokens, output_tokens=0)
    if ttl == "1h":
        return TokenCounts(input_tokens=0, output_tokens=0, cache_write_1h_tokens=tokens)
    return TokenCounts(input_tokens=0, output_tokens=0, cache_write_5m_tokens=tokens)


# Message Batches bill every token kind (cache reads and writes included) at half price.
BATCH_RATE = Decimal("0.5")


def batch_api_saving_usd(billed_usd: Decimal) -> Decimal:
    """What calls billed `billed_usd` at the batch rate saved against the same calls live."""
    return billed_usd * (1 - BATCH_RATE) / BATCH_RATE


def cache_savings_usd(tokens: TokenCounts, tier: Tier) -> Decimal:
    """What prompt caching saved on a call: may be negative for a write nobody read.

    Cache reads priced at the input rate minus what they cost, minus the premium
    the cache writes paid over the input rate.
    """
    read_saved = tokens.cache_read_tokens * (tier.input - tier.cache_read)
    write_premium = tokens.cache_write_5m_tokens * (
        tier.cache_write_5m - tier.input
    ) + tokens.cache_write_1h_tokens * (tier.cache_write_1h - tier.input)
    return (read_saved - write_premium) / MILLION


# Token estimates are made before a call, to reserve budget and rate-limit capacity,
# so they must not undercount. Claude's tokenizer is a byte-level BPE: no token holds
# less than one UTF-8 byte, so bytes are a hard upper bound. Outside ASCII we take
# that bound (CJK is 3 bytes a character and about one token; an emoji is 4 bytes
# and 1 to 4 tokens), since four characters a token undercounts such text up to
# fourfold. ASCII text runs 3.5-4.5 characters a token as prose, about 3 as code,
# and 2-3 as digits, hex or base64; two characters a token covers all of them.
ASCII_CHARS_PER_TOKEN = 2
# Per-request framing the text does not show: role markers and turn separators, and
# the short marker block that opens a cache-scoped system prompt.
REQUEST_OVERHEAD_TOKENS = 32
# A typical count, not a bound: English prose runs about four characters a token.
# Routing evaluation prices answers with it, and the simulator bills by it.
TYPICAL_CHARS_PER_TOKEN = 4


def typical_tokens(text: str) -> int:
    """About how many tokens `text` is, at four characters a token (at least 1)."""
    return max(1, -(-len(text) // TYPICAL_CHARS_PER_TOKEN))


def estimate_tokens(text: str) -> int:
    """An upper bound on the tokens of `text`: ASCII at two characters, other bytes one each."""
    if text.isascii():
        return -(-len(text) // ASCII_CHARS_PER_TOKEN)
    ascii_chars = len(text.encode("ascii", "ignore"))
    other_bytes = len(text.encode("utf-8", "surrogatepass")) - ascii_chars
    return -(-ascii_chars // ASCII_CHARS_PER_TOKEN) + other_bytes
