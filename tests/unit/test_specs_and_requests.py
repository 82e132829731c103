"""Client input validation and the request shapes we send per tier."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from tierroute.classify.llm import DECISION_SCHEMA, build_classify_params
from tierroute.cli.prompt_files import read_prompt_file
from tierroute.domain.errors import InvalidInput
from tierroute.domain.specs import JobSpec
from tierroute.domain.tiers import load_tier_table
from tierroute.llm.provider import build_completion_params, retry_after_seconds
from tierroute.store.ingest import json_array_specs, ndjson_specs

TABLE = load_tier_table()


def test_force_tier_is_normalised_to_a_name() -> None:
    assert JobSpec(prompt="x", force_tier=1).force_tier == "haiku"
    assert JobSpec(prompt="x", force_tier="SONNET").force_tier == "sonnet"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "must not be empty"),
        ({"prompt": "x", "force_tier": 7}, "7 is not a tier"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "x", "surprise": 1}, "surprise"),
        ({"prompt": "x", "thinking": {"budget_tokens": 10}}, "budget_tokens"),
    ],
)
def test_bad_specs_name_the_problem(body: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        JobSpec.model_validate(body)
    assert fragment in str(excinfo.value)


def test_haiku_request_has_no_thinking_and_no_effort() -> None:
    params = build_completion_params(TABLE.get("haiku"), "hi", None, 512)
    assert "thinking" not in params
    assert "output_config" not in params
    assert params["max_tokens"] == 512


def test_sonnet_thinks_adaptively_at_medium_effort() -> None:
    params = build_completion_params(TABLE.get("sonnet"), "hi", "be brief", 512)
    assert params["model"] == "claude-sonnet-4-6"
    assert params["thinking"] == {"type": "adaptive"}
    assert params["output_config"] == {"effort": "medium"}
    assert params["system"] == "be brief"


def test_manual_thinking_leaves_room_for_the_answer() -> None:
    params = build_completion_params(TABLE.get("haiku"), "hi", None, 512, {"thinking": "enabled"})
    assert params["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert params["max_tokens"] == 512 + 1024


def test_opus_uses_adaptive_thinking_and_effort() -> None:
    params = build_completion_params(TABLE.get("opus"), "hi", None, 512)
    assert params["thinking"] == {"type": "adaptive"}
    assert params["output_config"] == {"effort": "high"}


def test_a_request_override_stays_within_the_models_capabilities() -> None:
    override = {"thinking": "adaptive", "effort": "low"}
    haiku = build_completion_params(TABLE.get("haiku"), "hi", None, 512, override)
    assert haiku["thinking"]["type"] == "enabled"  # Haiku 4.5 has no adaptive thinking
    assert "output_config" not in haiku  # nor effort
    opus = build_completion_params(TABLE.get("opus"), "hi", None, 512, {"thinking": "none"})
    assert "thinking" not in opus
    assert opus["output_config"] == {"effort": "high"}
    # The SDK deprecates manual budgets where adaptive thinking exists.
    manual = build_completion_params(TABLE.get("opus"), "hi", None, 512, {"thinking": "enabled"})
    assert manual["thinking"] == {"type": "adaptive"}


def test_classifier_asks_haiku_for_structured_output() -> None:
    params = build_classify_params("claude-haiku-4-5", "Format this JSON")
    assert params["model"] == "claude-haiku-4-5"
    assert params["output_config"]["format"] == {"type": "json_schema", "schema": DECISION_SCHEMA}
    assert "<prompt>\nFormat this JSON\n</prompt>" in params["messages"][0]["content"]


class _Response:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


def test_retry_after_prefers_milliseconds_and_ignores_dates() -> None:
    assert retry_after_seconds(_Response({"retry-after": "7"})) == 7.0
    assert retry_after_seconds(_Response({"retry-after-ms": "1500", "retry-after": "7"})) == 1.5
    assert retry_after_seconds(_Response({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"})) is None
    assert retry_after_seconds(_Response({})) is None


def test_batch_bodies_can_be_json_arrays_or_ndjson() -> None:
    array = list(json_array_specs(io.BytesIO(b'[{"prompt": "a"}, {"prompt": "b"}]')))
    assert [s.prompt for s in array] == ["a", "b"]
    ndjson = [b'{"prompt": "a"}\n', b"\n", b'{"prompt": "b", "force_tier": 3}\n']
    assert [s.force_tier for s in ndjson_specs(ndjson)] == [None, "opus"]


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        ([b'{"prompt": "a"}', b'{"prompt": '], "line 2: not valid JSON"),
        ([b'{"prompt": "a"}', b'{"prompt": ""}'], "line 2: prompt"),
        ([b"", b"", b'{"prompt": "a", "force_tier": 9}'], "line 3: force_tier"),
        ([b"[1, 2]"], "line 1: "),
    ],
)
def test_ndjson_errors_name_the_line(lines: list[bytes], fragment: str) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        list(ndjson_specs(lines))
    assert fragment in excinfo.value.detail


def test_json_array_errors_name_the_item() -> None:
    with pytest.raises(InvalidInput, match="item 2: force_tier"):
        list(json_array_specs(io.BytesIO(b'[{"prompt": "a"}, {"prompt": "b", "force_tier": 9}]')))
    with pytest.raises(InvalidInput, match="not valid JSON"):
        list(json_array_specs(io.BytesIO(b'[{"prompt": "a"},')))


def test_prompt_files_report_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"prompt": "ok"}) + "\n" + json.dumps({"prompt": 5}) + "\n")
    with pytest.raises(InvalidInput, match=r"prompts.jsonl:2"):
        read_prompt_file(path)


def test_bundled_sample_set_is_valid_and_large_enough() -> None:
    from tierroute.cli.demo import bundled_prompts

    specs = read_prompt_file(bundled_prompts())
    assert len(specs) >= 60
    rubric = {s.metadata["rubric"] for s in specs if s.metadata}
    assert rubric == {"simple", "moderate", "complex"}
