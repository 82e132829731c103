"""Batch bodies are read item by item: a huge array or an endless line is refused after
reading about one item, never parsed whole into memory."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Callable

import pytest

from tierroute.domain.errors import InvalidInput
from tierroute.domain.json_array import ArrayError, array_items
from tierroute.domain.status import BatchMode
from tierroute.pipeline.message_batches.body import read_batch_body
from tierroute.store.ingest import MAX_BLANK_LINES, MAX_ITEM_BYTES, json_array_specs, ndjson_specs

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


def peak_bytes_of(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("shape", ["array", "object"])
def test_a_batch_body_of_many_jobs_is_never_held_parsed_in_memory(shape: str) -> None:
    jobs = b"[" + b",".join([b'{"prompt": "p"}'] * 300_000) + b"]"
    raw = jobs if shape == "array" else b'{"jobs": ' + jobs + b', "mode": "batch_api"}'
    body = io.BytesIO(raw)

    def first_spec() -> None:
        specs, _ = read_batch_body(body, "application/json")
        assert next(iter(specs)).prompt == "p"

    # Parsed whole, 300,000 dicts take well over 50 MB; cut item by item, a few chunks.
    assert peak_bytes_of(first_spec) < 4 << 20 < len(raw)


def test_an_object_body_streams_its_jobs_and_reads_mode_wherever_it_is() -> None:
    raw = b'{"jobs": [{"prompt": "a"}, {"prompt": "b"}], "mode": "batch_api"}'
    specs, mode = read_batch_body(io.BytesIO(raw), "application/json")
    assert (mode, [spec.prompt for spec in specs]) == (BatchMode.BATCH_API, ["a", "b"])
    bad = b'{"mode": "live", "jobs": [{"prompt": "a"}, {"prompt": ""}]}'
    specs, mode = read_batch_body(io.BytesIO(bad), "application/json")
    assert mode == BatchMode.LIVE
    with pytest.raises(InvalidInput, match="jobs item 2: prompt"):
        list(specs)
    for raw, fragment in [
        (b'{"jobs": 5}', "jobs: must be an array"),
        (b'{"jobs": [], "extra": 1}', "extra: unknown field"),
        (b'{"jobs": [], "mode": "fast"}', "'fast' is not a batch mode"),
    ]:
        with pytest.raises(InvalidInput, match=fragment):
            read_batch_body(io.BytesIO(raw), "application/json")
