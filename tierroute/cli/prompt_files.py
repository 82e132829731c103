"""Reading prompt files (JSONL): checked cheaply, parsed whole, or streamed as an upload body."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from tierroute.domain.anthropic_batch import is_batch_line
from tierroute.domain.errors import InvalidInput
from tierroute.domain.specs import JobSpec, parse_spec

CHUNK_BYTES = 256 * 1024
# Level 1 compresses prompt text about 3x at a few hundred MB/s; higher levels gain
# little on text and would make the CLI, not the network, the bottleneck on loopback.
GZIP_LEVEL = 1
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer, as Content-Encoding: gzip means

ReadCallback = Callable[[int], None]


def read_prompt_file(path: Path, force_tier: str | None = None) -> list[JobSpec]:
    """Parse a JSONL prompt file; the first bad line raises InvalidInput naming it."""
    specs: list[JobSpec] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{number}", f"not valid JSON: {exc.msg}") from None
            if force_tier is not None and isinstance(item, dict):
                item["force_tier"] = force_tier
            specs.append(parse_spec(item, f"{path}:{number}"))
    if not specs:
        raise InvalidInput(str(path), "no prompts in file")
    return specs


def to_ndjson(specs: list[JobSpec]) -> bytes:
    """Specs as an NDJSON request body."""
    lines = (spec.model_dump_json(exclude_none=True) for spec in specs)
    return ("\n".join(lines) + "\n").encode()


def check_prompt_file(path: Path) -> int:
    """Cheaply check each line is a JSON object with a non-blank prompt; returns the count."""
    # Only what catches most mistakes before a long upload: the server runs the full
    # validation and names the line, so duplicating it here would only risk disagreeing.
    count = 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                item = json.loads(line)
            except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
                message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                raise InvalidInput(where, f"not valid JSON: {message}") from None
            if not isinstance(item, dict):
                raise InvalidInput(where, "each line must be a JSON object")
            if is_batch_line(item) or "messages" in item:
                # Anthropic's shapes (a Message Batches line, or turns): the server checks them.
                count += 1
                continue
            prompt = item.get("prompt")
            if not isinstance(prompt, str):
                raise InvalidInput(where, "prompt: a string is required")
            if not prompt.strip():
                raise InvalidInput(where, "prompt: must not be empty or only whitespace")
            count += 1
    if not count:
        raise InvalidInput(str(path), "no prompts in file")
    return count


def force_tier_value(raw: str) -> int | str:
    """A --force-tier option as JSON wants it: a rank as an int, otherwise the name."""
    text = raw.strip()
    # The server owns the tier table (a deployment may override it), so only the
    # shape is decided here; the server says whether the tier exists.
    return int(text) if text.isdigit() else text


def iter_file_chunks(
    path: Path, on_read: ReadCallback | None = None, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """The file's bytes unchanged, a chunk at a time."""
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            if on_read is not None:
                on_read(len(chunk))
            yield chunk


def iter_with_force_tier(
    path: Path,
    force_tier: int | str,
    on_read: ReadCallback | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[bytes]:
    """The file's lines with `force_tier` set on each object, re-serialised line by line."""
    buffer: list[bytes] = []
    size = 0
    with path.open("rb") as handle:
        for line in handle:
            if on_read is not None:
                on_read(len(line))
            out = line
            if line.strip():
                # Blank and unparseable lines pass through as they are, so the
                # server's line numbers still match the file's.
                try:
                    item = json.loads(line)
                except ValueError:
                    item = None
                if is_batch_line(item) and isinstance(item["params"], dict):
                    item["params"]["model"] = str(force_tier)  # a batch line forces by model
                    out = json.dumps(item, ensure_ascii=False).encode() + b"\n"
                elif isinstance(item, dict):
                    item["force_tier"] = force_tier
                    out = json.dumps(item, ensure_ascii=False).encode() + b"\n"
            buffer.append(out)
            size += len(out)
            if size >= chunk_bytes:
                yield b"".join(buffer)
                buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


def gzip_chunks(chunks: Iterable[bytes], level: int = GZIP_LEVEL) -> Iterator[bytes]:
    """Gzip a byte stream on the fly (one gzip member), yielding output as it forms."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def iter_upload_body(
    path: Path,
    *,
    force_tier: int | str | None = None,
    gzip: bool = True,
    on_read: ReadCallback | None = None,
) -> Iterator[bytes]:
    """The prompt file as an NDJSON request body, streamed; never whole in memory."""
    if force_tier is None:
        raw = iter_file_chunks(path, on_read)
    else:
        raw = iter_with_force_tier(path, force_tier, on_read)
    return gzip_chunks(raw) if gzip else raw
