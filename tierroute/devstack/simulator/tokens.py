"""Approximate token counting: about four characters per token, like English text."""

from __future__ import annotations

import json
import math
from typing import Any

from tierroute.domain.cost import TYPICAL_CHARS_PER_TOKEN as CHARS_PER_TOKEN
from tierroute.domain.cost import typical_tokens

# Role markers and turn separators cost a few tokens per message in the real API.
PER_MESSAGE_OVERHEAD = 3
# Images and documents are billed by size; a fixed figure is close enough offline.
IMAGE_TOKENS = 1200
DOCUMENT_TOKENS = 1500


def count_text_tokens(text: str) -> int:
    """Tokens for a piece of text: ceil(len/4), at least 1 (cost.typical_tokens)."""
    return typical_tokens(text)


def block_text(block: Any) -> str:
    """The readable text of one content block (empty for non-text blocks)."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return f"{block.get('name', '')} {json.dumps(block.get('input', {}), sort_keys=True)}"
    if kind == "tool_result":
        return content_text(block.get("content", ""))
    if kind == "document" and isinstance(block.get("source"), dict):
        source = block["source"]
        if source.get("type") == "text":
            return str(source.get("data", ""))
    return ""


def content_text(content: Any) -> str:
    """All text of a message's `content`: a string or a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(text for text in (block_text(b) for b in content) if text)
    return ""


def _fixed_block_tokens(content: Any) -> int:
    """Tokens of blocks that carry no text: images and binary documents."""
    if not isinstance(content, list):
        return 0
    total = 0
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "image":
            total += IMAGE_TOKENS
        elif block.get("type") == "document" and not block_text(block):
            total += DOCUMENT_TOKENS
    return total


def system_text(system: Any) -> str:
    """The system prompt as text: a string or a list of text blocks."""
    return content_text(system) if system is not None else ""


def count_input_tokens(body: dict[str, Any]) -> int:
    """Input tokens of a Messages request: system, messages, tools and output schema."""
    messages = body.get("messages") or []
    text_parts = [system_text(body.get("system"))]
    fixed = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        text_parts.append(content_text(content))
        fixed += _fixed_block_tokens(content) + PER_MESSAGE_OVERHEAD
    # Tool definitions and an output schema are shown to the model, so they cost input.
    if body.get("tools"):
        text_parts.append(json.dumps(body["tools"], sort_keys=True))
    output_config = body.get("output_config")
    if isinstance(output_config, dict) and isinstance(output_config.get("format"), dict):
        text_parts.append(json.dumps(output_config["format"], sort_keys=True))
    characters = sum(len(part) for part in text_parts)
    return max(1, math.ceil(characters / CHARS_PER_TOKEN) + fixed)


def last_user_text(messages: list[Any]) -> str:
    """Text of the last user message, or '' when there is none."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def truncate_to_tokens(text: str, tokens: int) -> str:
    """The longest prefix of `text` that fits in `tokens` tokens."""
    return text[: max(0, tokens) * CHARS_PER_TOKEN]
