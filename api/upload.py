"""Reading a large request body: streamed, gunzipped on the fly, spooled to disk."""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Iterable, Iterator
from typing import IO

from fastapi import Request

from tierroute.domain.errors import InvalidInput, TierrouteError

# Bodies up to this size stay in memory; larger ones spill to a temporary file.
SPOOL_IN_MEMORY = 16 << 20
# 100,000 prompts of a few KB each; refuse anything far beyond that (and gzip bombs).
MAX_BODY_BYTES = 1 << 30
# The most one decompress call may return; the size limit is checked between calls.
INFLATE_STEP = 1 << 20
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer, as Content-Encoding: gzip means


class PayloadTooLarge(TierrouteError):
    """The (decompressed) body is larger than a batch may be."""

    code = "payload_too_large"
    http_status = 413


class GzipBody:
    """Decompresses a gzip body as it arrives: every member, and nothing else.

    `cat a.gz b.gz` is one valid gzip stream of two members (RFC 1952), which gzip -d
    reads whole; zlib stops after the first, and its prompts were once dropped in
    silence. Each member is read here, and bytes after a member that are not another
    member are refused, never ignored.
    """

    def __init__(self) -> None:
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._members = 1

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decompressed bytes in `data`, a piece at a time."""
        while True:
            if self._inflater.eof:
                if not data:
                    return
                self._inflater = zlib.decompressobj(_GZIP_WBITS)
                self._members += 1
            try:
                # Bounded output, so one small chunk cannot inflate past the size
                # limit in a single call.
                out = self._inflater.decompress(data, INFLATE_STEP)
            except zlib.error as exc:
                raise InvalidInput("body", self._describe(exc)) from None
            if out:
                yield out
            if self._inflater.eof:
                data = self._inflater.unused_data
            else:
                data = self._inflater.unconsumed_tail
                if not data and len(out) < INFLATE_STEP:
                    return  # all input taken and no output pending

    def finish(self) -> Iterator[bytes]:
        """What is left; InvalidInput if the stream stops inside a member."""
        yield from self.feed(b"")
        if not self._inflater.eof:
            if self._members > 1:
                detail = (
                    f"gzip member {self._members} is truncated, or the data after"
                    f" member {self._members - 1} is not gzip"
                )
            else:
                detail = "gzip stream is truncated"
            raise InvalidInput("body", detail)

    def _describe(self, exc: zlib.error) -> str:
        if self._members > 1:
            return f"data after gzip member {self._members - 1} is not gzip ({exc})"
        return f"not valid gzip: {exc}"


async def spool_body(request: Request) -> IO[bytes]:
    """The request body, decompressed if `Content-Encoding: gzip`, as a file at offset 0."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise InvalidInput("content-encoding", f"{encoding!r} is not supported; use gzip")
    gzip = GzipBody() if encoding == "gzip" else None
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    written = 0

    def write(pieces: Iterable[bytes]) -> None:
        nonlocal written
        for piece in pieces:
            written += len(piece)
            if written > MAX_BODY_BYTES:
                raise PayloadTooLarge(f"body larger than {MAX_BODY_BYTES >> 20} MiB")
            spool.write(piece)

    try:
        async for chunk in request.stream():
            write(gzip.feed(chunk) if gzip is not None else (chunk,))
        if gzip is not None:
            write(gzip.finish())
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool
