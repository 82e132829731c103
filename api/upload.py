"""Reading a large request body: streamed, gunzipped on the fly, spooled to disk."""

from __future__ import annotations

import tempfile
import zlib
from typing import IO

from fastapi import Request

from tierroute.errors import InvalidInput, TierrouteError

# Bodies up to this size stay in memory; larger ones spill to a temporary file.
SPOOL_IN_MEMORY = 16 << 20
# 100,000 prompts of a few KB each; refuse anything far beyond that (and gzip bombs).
MAX_BODY_BYTES = 1 << 30


class PayloadTooLarge(TierrouteError):
    """The (decompressed) body is larger than a batch may be."""

    code = "payload_too_large"
    http_status = 413


async def spool_body(request: Request) -> IO[bytes]:
    """The request body, decompressed if `Content-Encoding: gzip`, as a file at offset 0."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise InvalidInput("content-encoding", f"{encoding!r} is not supported; use gzip")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    written = 0
    try:
        async for chunk in request.stream():
            if inflater is not None:
                try:
                    chunk = inflater.decompress(chunk)
                except zlib.error as exc:
                    raise InvalidInput("body", f"not valid gzip: {exc}") from None
            written += len(chunk)
            if written > MAX_BODY_BYTES:
                raise PayloadTooLarge(f"body larger than {MAX_BODY_BYTES >> 20} MiB")
            spool.write(chunk)
        if inflater is not None:
            spool.write(inflater.flush())
            if not inflater.eof:
                raise InvalidInput("body", "gzip stream is truncated")
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool
