"""Server-sent events for `stream: true`, in the Messages API's event order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

# Each block is sent in this many deltas at most; enough to look like streaming.
CHUNKS_PER_BLOCK = 8


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _chunks(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    """content_block_start, its deltas and content_block_stop for one block."""
    start: dict[str, Any]
    if block["type"] == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [
            {"type": "thinking_delta", "thinking": part}
            for part in _chunks(block["thinking"], CHUNKS_PER_BLOCK)
        ]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    else:
        start = {"type": "text", "text": "", "citations": None}
        deltas = [
            {"type": "text_delta", "text": part}
            for part in _chunks(block["text"], CHUNKS_PER_BLOCK)
        ]
    events = [
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
    ]
    events += [
        _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
        for d in deltas
    ]
    events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def message_events(message: dict[str, Any]) -> list[bytes]:
    """The full event sequence that streams `message` (a complete Message body)."""
    usage = message["usage"]
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_details": None,
        # The real API reports a provisional output count at the start.
        "usage": {**usage, "output_tokens": min(1, usage["output_tokens"])},
    }
    events = [_event("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        events += _block_events(index, block)
    delta = {
        "type": "message_delta",
        "delta": {
            "stop_reason": message["stop_reason"],
            "stop_sequence": None,
            "stop_details": message["stop_details"],
            "container": None,
        },
        "usage": {
            "input_tokens": usage["input_tokens"],
            "output_tokens": usage["output_tokens"],
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens_details": usage["output_tokens_details"],
            "server_tool_use": None,
        },
    }
    events.append(_event("message_delta", delta))
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


class EventStreamResponse(StreamingResponse):
    """SSE events spread over `seconds`; calls `on_done(fully_sent)` exactly once at the end.

    The callback runs from __call__ rather than the generator so that it also runs
    when the client leaves before the first event is produced.
    """

    def __init__(
        self,
        events: list[bytes],
        seconds: float,
        on_done: Callable[[bool], None],
        headers: dict[str, str] | None = None,
    ) -> None:
        self._completed = False
        self._on_done = on_done
        super().__init__(
            self._paced(events, seconds),
            media_type="text/event-stream",
            headers={**(headers or {}), "cache-control": "no-cache"},
        )

    async def _paced(self, events: list[bytes], seconds: float) -> AsyncIterator[bytes]:
        # An even pause before every event: the first one is the time to first token.
        pause = seconds / max(1, len(events))
        for event in events:
            if pause:
                await asyncio.sleep(pause)
            yield event
        self._completed = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the stream, then report whether it got through."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_done(self._completed)
