"""The items of a JSON array, cut out of a byte stream one at a time.

A batch body may be a JSON array of up to 100,000 jobs. Parsing it whole (json.load)
builds every item before the first is checked: 8 million tiny items took 1.8 GB and
18 s. This finds where each top-level item starts and ends (strings, escapes and
nesting are tracked, nothing is decoded) and hands back its bytes, so the caller
parses and checks item by item, with the same strict parser as an NDJSON line, and
stops at the first bad item or the item cap. Memory holds one item and one chunk.

The cut is not a validator: an item's bytes may still be bad JSON, which its own
parse reports; what lies between items (commas, whitespace, the brackets) is checked
here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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
        self.item = 0  # the number of the item being cut, for messages

    def more(self) -> bool:
        """Read another chunk; False at the end of the stream."""
        # The buffer starts at most a separator before the current item: past this,
        # the item is too long whatever follows, so stop reading before memory grows.
        if len(self.data) - self.base > self.max_item_bytes + 1:
            raise ArrayError(f"item {self.item} is longer than {self.max_item_bytes} bytes")
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
    start = buf.search(_NOT_SPACE, 0)
    if start is None or buf.data[start.start()] != ord("["):
        raise ArrayError("expected a JSON array")
    pos = start.end()
    number = 0
    while True:
        buf.item = number + 1
        first = buf.search(_NOT_SPACE, pos)
        if first is None:
            raise ArrayError(f"the array ends early, after item {number}")
        if number == 0 and buf.data[first.start()] == ord("]"):
            pos = first.end()
            break
        number += 1
        end, closing = _item_end(buf, first.start(), number)
        if end - first.start() > max_item_bytes:
            raise ArrayError(f"item {number} is longer than {max_item_bytes} bytes")
        yield bytes(buf.data[first.start() : end])
        # Drop what has been handed back, so memory holds about one item at a time.
        pos = buf.consume(end + 1)
        if closing:
            break
    rest = buf.search(_NOT_SPACE, pos)
    if rest is not None:
        raise ArrayError(f"data after the array's closing bracket (after item {number})")


def _item_end(buf: _Buffer, start: int, number: int) -> tuple[int, bool]:
    """Where item `number` (starting at `start`) ends, and whether the array ends there."""
    depth = 0
    pos = start
    while True:
        pos = (_NESTED if depth else _TOP_LEVEL).match(buf.data, pos).end()  # type: ignore[union-attr]
        if pos == len(buf.data):
            if not buf.more():
                raise ArrayError(f"the array ends early, in item {number}")
            continue
        char = buf.data[pos]
        if char == ord('"'):  # a string that goes on past what has been read
            pos = _string_end(buf, pos + 1, number)
            continue
        pos += 1
        if char in b"[{":
            depth += 1
        elif depth:
            depth -= 1  # a mismatched bracket makes the item bad JSON, which its parse says
        elif char == ord(","):
            return pos - 1, False
        elif char == ord("]"):
            return pos - 1, True
        else:
            raise ArrayError(f"unexpected '}}' at the top level of item {number}")


def _string_end(buf: _Buffer, pos: int, number: int) -> int:
    """The position just past the closing quote of the string whose body starts at `pos`."""
    while True:
        pos = _STRING_BODY.match(buf.data, pos).end()  # type: ignore[union-attr]
        if pos < len(buf.data) and buf.data[pos] == ord('"'):
            return pos + 1
        # The read ends inside the string, perhaps right after a backslash: the match
        # stopped before that backslash, so it is read again with what follows it.
        if not buf.more():
            raise ArrayError(f"the array ends early, in a string of item {number}")
