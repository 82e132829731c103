"""scripts/anthropic_roundtrip.py: the batch file it writes is valid, and its check sees losses."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from tierroute.store.ingest import ndjson_specs

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "anthropic_roundtrip.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("anthropic_roundtrip", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_line_it_writes_is_a_batch_request_the_server_takes(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    _script().write_batch(path, 200)
    specs = list(ndjson_specs(path.read_bytes().splitlines()))
    assert len({spec.custom_id for spec in specs}) == 200
    # The shapes it promises: multi-turn, structured output, a forced tier.
    assert any(spec.messages and len(spec.messages) == 3 for spec in specs)
    assert any(spec.output_config is not None for spec in specs)
    assert {spec.force_tier for spec in specs} == {None, "haiku"}


def test_the_check_reports_a_repeated_a_missing_and_a_failed_request(tmp_path: Path) -> None:
    def line(custom_id: str, kind: str = "succeeded") -> str:
        return json.dumps({"custom_id": custom_id, "result": {"type": kind}})

    path = tmp_path / "results.jsonl"
    path.write_text(
        "\n".join([line("req-000000"), line("req-000000"), line("req-000002", "errored")])
    )
    found = _script().check(path, 3)
    assert found["lines"] == 3 and found["distinct_custom_ids"] == 2
    assert found["repeated"] == ["req-000000"] and found["missing"] == ["req-000001"]
    assert found["result_types"] == {"succeeded": 2, "errored": 1}
