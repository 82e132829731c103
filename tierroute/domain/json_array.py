"""The items of a JSON array, cut out of a byte stream one at a time.

A batch body may be a JSON array of up to 100,000 jobs. Parsing it whole (json.load)
builds every item before the first is checked, so a huge array of tiny items costs
memory and time before any is refused. This finds where each top-level item starts
and ends (strings, escapes and nesting are tracked, nothing is decoded) and hands
back its bytes, so the caller parses and checks item by item, with the same strict
parser as an NDJSON line, and stops at the first bad item or the item cap. Memory
holds one item and one chunk.

The cut is not a validator: an item's bytes may still be bad JSON, which its own
parse reports; what lies between items (commas, whitespace, the brackets) is checked
here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from typing import IO

CHUNK_BYTES = 1 << 16
# Handed-back bytes are dropped in one go once this many pile up: dropping them item
# by item would move the rest of the buffer once per item.
COMPACT_BYTES = 1 << 20

_NOT_SPACE = re.compile(rb"[^ \t\r\n]")
# One match skips everything up to the next byte that matters, whole strings
# included: at an item's top level that is a comma or a bracket, deeper only a
# bracket, so runs like [1,2,3,...] and long prompts cost one step each.
_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_TOP_LEVEL = re.compile(rb'(?:[^"\[\]{},]++|' + _STRING + rb")*+", re.DOTALL)
_NESTED = re.compile(rb'(?:[^"\[\]{}]++|' + _STRING + rb")*+", re.DOTALL)
_STRING_BODY = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+', re.DOTALL)


class ArrayError(ValueError):
    """The body is not a JSON array of items; the message says where and why."""


class _Buffer:
    """Bytes read so far from the stream, less those of items already handed back."""

    def __init__(self, stream: IO[bytes], chunk_bytes: int, max_item_bytes: int) -> None:
        self.stream = stream
        self.chunk_bytes = chunk_bytes
        self.max_item_bytes = max_item_bytes
        self.data = bytearray()
        self.base = 0  # where the bytes not yet handed back start
        self.after = 0  # where a finished array or object ended
        self.what = "item 1"  # the value being cut, for messages

    def more(self) -> bool:
        """Read another chunk; False at the end of the stream."""
        # The buffer starts at most a separator before the current item: past this,
        # the item is too long whatever follows, so stop reading before memory grows.
        if len(self.data) - self.base > self.max_item_bytes + 1:
            raise ArrayError(f"{self.what} is longer than {self.max_item_bytes} bytes")
        chunk = self.stream.read(self.chunk_bytes)
        if not chunk:
            return False
        self.data += chunk
        return True

    def consume(self, upto: int) -> int:
        """Forget the bytes before `upto`; returns the new position of `upto`."""
        if upto < COMPACT_BYTES:
            self.base = upto
            return upto
        del self.data[:upto]
        self.base = 0
        return 0

    def search(self, pattern: re.Pattern[bytes], pos: int) -> re.Match[bytes] | None:
        """The next match at or after `pos`, reading on as needed; None at the end."""
        while True:
            match = pattern.search(self.data, pos)
            if match is not None or not self.more():
                return match


def array_items(
    stream: IO[bytes], max_item_bytes: int, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """The raw bytes of each top-level item of the JSON array in `stream`, in order."""
    buf = _Buffer(stream, chunk_bytes, max_item_bytes)
    pos = _expect(buf, 0, b"[", "expected a JSON array")
    number = yield from _items(buf, pos)
    _expect_end(buf, f"after the array's closing bracket (after item {number})")


def object_summary(
    stream: IO[bytes], array_key: str, max_item_bytes: int
) -> tuple[dict[str, bytes], bool]:
    """The members of the JSON object in `stream` as raw value bytes, but for the array
    under `array_key`, which is only checked item by item; and whether it was there."""
    members: dict[str, bytes] = {}
    has_array = False
    for key, raw, is_item in _object_events(stream, array_key, max_item_bytes):
        if key in members or (key == array_key and has_array and not is_item):
            raise ArrayError(f"member {key!r} appears twice")
        if raw is None:
            has_array = True
        elif not is_item:
            members[key] = raw
    return members, has_array


def object_array_items(stream: IO[bytes], array_key: str, max_item_bytes: int) -> Iterator[bytes]:
    """The raw bytes of each item of the array under `array_key` in the JSON object in
    `stream`, one at a time."""
    for _, raw, is_item in _object_events(stream, array_key, max_item_bytes):
        if is_item and raw is not None:
            yield raw


def _object_events(
    stream: IO[bytes], array_key: str, max_item_bytes: int, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[tuple[str, bytes | None, bool]]:
    """(key, raw value, False) for each member of the object; for the array under
    `array_key`, (key, None, False) where it starts, then (key, item, True) per item."""
    buf = _Buffer(stream, chunk_bytes, max_item_bytes)
    pos = _expect(buf, 0, b"{", "expected a JSON object")
    first = True
    while True:
        at = _next(buf, pos, "the object ends early")
        if first and buf.data[at] == ord("}"):
            pos = at + 1
            break
        first = False
        if buf.data[at] != ord('"'):
            raise ArrayError("expected a member name in double quotes")
        key_end = _string_end(buf, at + 1, "a member name")
        try:
            key = str(json.loads(bytes(buf.data[at:key_end])))
        except ValueError:
            raise ArrayError("a member name is not a valid JSON string") from None
        pos = _expect(buf, key_end, b":", f"expected ':' after {key!r}")
        at = _next(buf, pos, f"the object ends early, at {key!r}")
        buf.what = f"member {key!r}"
        if key == array_key and buf.data[at] == ord("["):
            yield key, None, False
            # A for loop drops the generator's return value; the end is in buf.after.
            for item in _items(buf, at + 1):
                yield key, item, True
            pos = buf.after
            at = _next(buf, pos, "the object ends early")
            closing = buf.data[at] == ord("}")
            if not closing and buf.data[at] != ord(","):
                raise ArrayError(f"expected ',' or '}}' after {key!r}")
            pos = buf.consume(at + 1)
        else:
            end, closing = _item_end(buf, at, f"member {key!r}", ord("}"))
            if end - at > max_item_bytes:
                raise ArrayError(f"member {key!r} is longer than {max_item_bytes} bytes")
            yield key, bytes(buf.data[at:end]), False
            pos = buf.consume(end + 1)
        if closing:
            break
    buf.after = pos
    _expect_end(buf, "after the object's closing brace")


def _items(buf: _Buffer, pos: int) -> Generator[bytes, None, int]:
    """The items of the array whose `[` ends just before `pos`; returns their number
    and leaves the position after the closing `]` in `buf.after`."""
    number = 0
    while True:
        buf.what = f"item {number + 1}"
        at = _next(buf, pos, f"the array ends early, after item {number}")
        if number == 0 and buf.data[at] == ord("]"):
            buf.after = at + 1
            return number
        number += 1
        end, closing = _item_end(buf, at, f"item {number}", ord("]"))
        if end - at > buf.max_item_bytes:
            raise ArrayError(f"item {number} is longer than {buf.max_item_bytes} bytes")
        yield bytes(buf.data[at:end])
        # Drop what has been handed back, so memory holds about one item at a time.
        pos = buf.consume(end + 1)
        if closing:
            buf.after = pos
            return number


def _next(buf: _Buffer, pos: int, early: str) -> int:
    """Where the next byte that is not whitespace is; ArrayError(`early`) at the end."""
    found = buf.search(_NOT_SPACE, pos)
    if found is None:
        raise ArrayError(early)
    return found.start()


def _expect(buf: _Buffer, pos: int, char: bytes, message: str) -> int:
    """The position after `char`, the next byte that is not whitespace."""
    found = buf.search(_NOT_SPACE, pos)
    if found is None or buf.data[found.start()] != char[0]:
        raise ArrayError(message)
    return found.end()


def _expect_end(buf: _Buffer, where: str) -> None:
    if buf.search(_NOT_SPACE, buf.after) is not None:
        raise ArrayError(f"data {where}")


def _item_end(buf: _Buffer, start: int, what: str, closer: int) -> tuple[int, bool]:
    """Where the value `what` (starting at `start`) ends, before a `,` or the `closer`
    of its container; and whether the container closes there."""
    depth = 0
    pos = start
    while True:
        pos = (_NESTED if depth else _TOP_LEVEL).match(buf.data, pos).end()  # type: ignore[union-attr]
        if pos == len(buf.data):
            if not buf.more():
                raise ArrayError(f"the body ends early, in {what}")
            continue
        char = buf.data[pos]
        if char == ord('"'):  # a string that goes on past what has been read
            pos = _string_end(buf, pos + 1, what)
            continue
        pos += 1
        if char in b"[{":
            depth += 1
        elif depth:
            depth -= 1  # a mismatched bracket makes the item bad JSON, which its parse says
        elif char == ord(","):
            return pos - 1, False
        elif char == closer:
            return pos - 1, True
        else:
            raise ArrayError(f"unexpected {chr(char)!r} at the top level of {what}")


def _string_end(buf: _Buffer, pos: int, what: str) -> int:
    """The position just past the closing quote of the string whose body starts at `pos`."""
    while True:
        pos = _STRING_BODY.match(buf.data, pos).end()  # type: ignore[union-attr]
        if pos < len(buf.data) and buf.data[pos] == ord('"'):
            return pos + 1
        # The read ends inside the string, perhaps right after a backslash: the match
        # stopped before that backslash, so it is read again with what follows it.
        if not buf.more():
            raise ArrayError(f"the body ends early, in a string of {what}")
