"""Batch bodies are read item by item: a huge array or an endless line is refused after
reading about one item, never parsed whole into memory."""

from __future__ import annotations

import io
import json

import pytest

from tierroute.domain.json_array import ArrayError, array_items
from tierroute.errors import InvalidInput
from tierroute.ingest import MAX_BLANK_LINES, MAX_ITEM_BYTES, json_array_specs, ndjson_specs

TRICKY = (
    b' [ {"prompt": "a, ] } [ {", "metadata": {"q": "\\"", "b": "\\\\", "l": [1, [2, {}]]}},'
    b'\n"x\\\\\\"]" , 12.5e3,[],{} ,null ]  \n'
)


class CountingReader(io.BytesIO):
    """Counts the bytes the parser asked for."""

    taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = super().readline(size)
        self.taken += len(data)
        return data


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 8, 64, 1 << 16])
def test_items_are_cut_where_json_puts_them_whatever_the_read_size(chunk_bytes: int) -> None:
    items = list(array_items(io.BytesIO(TRICKY), 1000, chunk_bytes))
    assert [json.loads(item) for item in items] == json.loads(TRICKY)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "expected a JSON array"),
        (b'{"jobs": []}', "expected a JSON array"),
        (b"[1, 2", "ends early, in item 2"),
        (b'[1, "abc', "ends early, in a string of item 2"),
        (b'["ab\\', "ends early, in a string of item 1"),
        (b"[1] [2]", "data after the array"),
        (b"[1}", "unexpected '}'"),
        (b"[" + b"1" * 200 + b"]", "item 1 is longer than 100 bytes"),
        (b'["' + b"x" * 500, "item 1 is longer than 100 bytes"),
    ],
)
def test_what_is_not_an_array_of_items_says_why(body: bytes, fragment: str) -> None:
    with pytest.raises(ArrayError, match=fragment.replace("[", r"\[")):
        list(array_items(io.BytesIO(body), 100, 7))


def test_a_huge_array_is_read_one_item_at_a_time() -> None:
    body = b"[" + b",".join([b'{"prompt": "p"}'] * 500_000) + b"]"
    reader = CountingReader(body)
    specs = json_array_specs(reader)
    assert next(specs).prompt == "p"
    # The first item is checked after one read, not after the whole 8 MB.
    assert reader.taken <= 1 << 16 < len(body)


def test_bad_json_between_items_names_the_place() -> None:
    with pytest.raises(InvalidInput, match="body: not valid JSON: data after the array"):
        list(json_array_specs(io.BytesIO(b'[{"prompt": "a"}] {"prompt": "b"}')))
    with pytest.raises(InvalidInput, match="item 2: not valid JSON"):
        list(json_array_specs(io.BytesIO(b'[{"prompt": "a"}, {"prompt": "b",}]')))


def test_an_endless_line_is_refused_after_one_item_of_bytes() -> None:
    reader = CountingReader(b'{"prompt": "' + b"x" * (3 * MAX_ITEM_BYTES) + b'"}\n')
    with pytest.raises(InvalidInput, match="line 1: longer than"):
        list(ndjson_specs(reader))
    assert reader.taken <= MAX_ITEM_BYTES + 1


def test_blank_lines_count_toward_a_limit() -> None:
    fine = b"\n" * MAX_BLANK_LINES + b'{"prompt": "a"}\n'
    assert [spec.prompt for spec in ndjson_specs(io.BytesIO(fine))] == ["a"]
    reader = CountingReader(b"\n" * (10 * MAX_BLANK_LINES) + b'{"prompt": "a"}\n')
    with pytest.raises(InvalidInput, match=f"more than {MAX_BLANK_LINES} blank lines"):
        list(ndjson_specs(reader))
    assert reader.taken == MAX_BLANK_LINES + 1
