"""A finished Message as Anthropic's stream of server-sent events.

tierroute answers once the routed job has finished, so the whole answer goes out as
one delta per block; code written for `stream=True` (or `client.messages.stream`)
runs unchanged, it only sees the text arrive at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def _block_events(index: int, block: dict[str, Any]) -> Iterator[bytes]:
    kind = block.get("type")
    if kind == "text":
        start: dict[str, Any] = {"type": "text", "text": "", "citations": None}
        deltas = [{"type": "text_delta", "text": block.get("text", "")}]
    elif kind == "tool_use":
        start = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block.get("input", {}))}]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [
            {"type": "thinking_delta", "thinking": block.get("thinking", "")},
            {"type": "signature_delta", "signature": block.get("signature", "")},
        ]
    else:
        start, deltas = block, []  # passed whole, as its start
    yield _event("content_block_start", {"index": index, "content_block": start})
    for delta in deltas:
        yield _event("content_block_delta", {"index": index, "delta": delta})
    yield _event("content_block_stop", {"index": index})


def message_events(message: dict[str, Any]) -> Iterator[bytes]:
    """message_start, each block's start, delta and stop, message_delta, message_stop."""
    usage = message["usage"]
    opening = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 0},
    }
    yield _event("message_start", {"message": opening})
    for index, block in enumerate(message["content"]):
        yield from _block_events(index, block)
    final_usage = {
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
        "cache_read_input_tokens": usage["cache_read_input_tokens"],
        "server_tool_use": None,
    }
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    yield _event("message_delta", {"delta": delta, "usage": final_usage})
    yield _event("message_stop", {})
