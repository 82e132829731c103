"""Streaming a batch's results: pages read apart from the writes, and a write timeout.

Each page is read in the thread pool in its own short transaction
(tierroute/store/results.py), so between pages the stream holds no database
connection, whatever the client does. A client that stops reading is dropped
after WRITE_TIMEOUT_S instead of keeping its response open for ever.

Only PAGE_READERS pages are built at once, across every stream: building one is
Python turning hundreds of rows into JSON, holding the GIL. Sixteen streams that
started together kept sixteen such threads runnable, and /healthz, which needs the
GIL a dozen times, waited behind them (bench/adversarial.py; bench/README.md).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
import weakref
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
from fastapi.responses import StreamingResponse
from starlette.types import Message, Send

from tierroute.store.results import LineShape, PageKey, read_page

log = logging.getLogger(__name__)

# How long one write may wait for the client to take the earlier ones (the server
# buffers about 64 KB). A reader that is merely slow drains that in seconds; one
# that has not for this long has stalled or gone.
WRITE_TIMEOUT_S = 60.0
# Bytes per write: what a stalled client can leave buffered in the server beyond
# the transport's own high-water mark, instead of a whole page.
WRITE_BYTES = 64 * 1024


# Threads building pages at once, per event loop (per API process): the others wait
# their turn on the loop, holding no thread. The GIL lets only one build at a time
# anyway; each more thread only adds a switch interval to every other request's wait
# for the GIL (bench/README.md, "Adversarial run").
PAGE_READERS = 1
_page_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def page_limiter() -> anyio.CapacityLimiter:
    """This event loop's limit on pages being built."""
    loop = asyncio.get_running_loop()
    limiter = _page_limiters.get(loop)
    if limiter is None:
        limiter = _page_limiters[loop] = anyio.CapacityLimiter(PAGE_READERS)
    return limiter


class _Stalled(Exception):
    """The client did not take a write within the write timeout."""


async def result_chunks(
    batch_id: uuid.UUID, shape: LineShape | None = None
) -> AsyncIterator[bytes]:
    """The batch's finished jobs as NDJSON, a page read at a time, in WRITE_BYTES pieces.

    `shape` turns each job's view into another line (Anthropic's batch results)."""
    after: PageKey | None = None
    while True:
        reader = read_page if shape is None else functools.partial(read_page, shape=shape)
        page = await anyio.to_thread.run_sync(reader, batch_id, after, limiter=page_limiter())
        data = memoryview(page.ndjson)
        for start in range(0, len(data), WRITE_BYTES):
            yield bytes(data[start : start + WRITE_BYTES])
        if page.next is None:
            return
        after = page.next


class NDJSONStream(StreamingResponse):
    """A StreamingResponse whose writes give up on a client that stops reading.

    On a stall the response ends unfinished (no last chunk), so the client sees a
    cut stream, not a complete one, and the server closes the connection.
    """

    media_type = "application/x-ndjson"

    async def stream_response(self, send: Send) -> None:
        timeout_s = WRITE_TIMEOUT_S  # read per response, so tests can lower it

        async def send_or_give_up(message: Message) -> None:
            with anyio.move_on_after(timeout_s) as scope:
                await send(message)
            if scope.cancelled_caught:
                raise _Stalled

        try:
            await super().stream_response(send_or_give_up)
        except _Stalled:
            log.warning("results stream: the client took no write for %g s; closing", timeout_s)
