"""`tierroute submit / status / cancel` against an HTTP stub (respx): no Postgres, no Redis."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from click.testing import CliRunner, Result

from tierroute.cli import progress
from tierroute.cli.main import main
from tierroute.cli.prompt_files import CHUNK_BYTES, iter_upload_body

API = "http://api.test"
BATCH_ID = "6f1c2a9e-0000-4000-8000-000000000001"
JOB_ID = "6f1c2a9e-0000-4000-8000-0000000000aa"


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "POLL_INTERVAL_S", 0.0)
    monkeypatch.delenv("TIERROUTE_API_URL", raising=False)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        yield router


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    lines = [
        json.dumps({"prompt": "Translate 'hello' into German."}),
        json.dumps({"prompt": "Prove it", "metadata": {"n": 2}, "force_tier": "haiku"}),
        "",  # blank lines stay, so the server's line numbers match the file's
        json.dumps({"prompt": "Grüße, naïve café", "max_tokens": 50}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--api", API])


def batch_view(**counts: int) -> dict[str, Any]:
    full = {"queued": 0, "classifying": 0, "routed": 0, "running": 0, "succeeded": 0, "failed": 0}
    full |= counts
    finished = full["succeeded"] + full["failed"] + full.get("cancelled", 0)
    count = sum(full.values())
    return {
        "id": BATCH_ID,
        "count": count,
        "counts": full,
        "by_tier": {"haiku": 2, "sonnet": 1},
        "finished": finished,
        "progress": finished / count,
        "done": finished == count,
        "cost_usd": 0.001234,
        "cost_if_opus_usd": 0.004,
        "created_at": "2026-05-09T10:00:00+00:00",
    }


class Upload:
    """Records what the CLI uploaded, chunk by chunk, and answers 202."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.headers: httpx.Headers = httpx.Headers()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.headers = request.headers
        assert isinstance(request.stream, httpx.SyncByteStream)
        self.chunks = list(request.stream)
        return httpx.Response(202, json={"id": BATCH_ID, "count": 3})

    @property
    def body(self) -> bytes:
        raw = b"".join(self.chunks)
        return gzip.decompress(raw) if self.headers.get("content-encoding") == "gzip" else raw


def test_submit_streams_the_file_gzipped(api: respx.MockRouter, prompts: Path) -> None:
    upload = Upload()
    api.post("/v1/batches").mock(side_effect=upload)
    result = run("submit", str(prompts))
    assert result.exit_code == 0, result.output
    assert upload.headers["content-encoding"] == "gzip"
    assert upload.headers["content-type"] == "application/x-ndjson"
    assert "content-length" not in upload.headers  # chunked: the size is never needed up front
    assert upload.body == prompts.read_bytes()
    assert result.stdout.splitlines() == [BATCH_ID]  # stdout holds only the id
    assert "accepted: 3 prompts" in result.stderr


def test_force_tier_is_set_on_every_line(api: respx.MockRouter, prompts: Path) -> None:
    upload = Upload()
    api.post("/v1/batches").mock(side_effect=upload)
    result = run("submit", str(prompts), "--force-tier", "3")
    assert result.exit_code == 0, result.output
    sent = upload.body.decode().splitlines()
    original = prompts.read_text(encoding="utf-8").splitlines()
    assert len(sent) == len(original) and sent[2] == ""
    for mine, theirs in zip(sent, original, strict=True):
        if theirs:
            assert json.loads(mine) == {**json.loads(theirs), "force_tier": 3}

    run("submit", str(prompts), "--force-tier", "opus", "--no-gzip")
    assert {json.loads(line)["force_tier"] for line in upload.body.splitlines() if line} == {"opus"}


def test_no_gzip_sends_the_file_as_it_is(api: respx.MockRouter, prompts: Path) -> None:
    upload = Upload()
    api.post("/v1/batches").mock(side_effect=upload)
    assert run("submit", str(prompts), "--no-gzip").exit_code == 0
    assert "content-encoding" not in upload.headers
    assert b"".join(upload.chunks) == prompts.read_bytes()


def test_a_large_file_is_streamed_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    line = json.dumps({"prompt": "p" * 300}) + "\n"
    path.write_text(line * 4000)  # 1.2 MB
    read: list[int] = []
    for force_tier in (None, 2):
        read.clear()
        chunks = list(
            iter_upload_body(path, force_tier=force_tier, gzip=False, on_read=read.append)
        )
        assert len(chunks) > 3 and max(map(len, chunks)) <= CHUNK_BYTES + len(line) + 20
        assert sum(read) == path.stat().st_size
    zipped = b"".join(iter_upload_body(path))
    assert gzip.decompress(zipped) == path.read_bytes()


def test_server_rejection_is_one_line_not_a_traceback(api: respx.MockRouter, prompts: Path) -> None:
    detail = "line 7: prompt: must not be empty or only whitespace"
    api.post("/v1/batches").respond(422, json={"error": "invalid_input", "detail": detail})
    result = run("submit", str(prompts))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: HTTP 422 invalid_input: {detail}"
    assert [line for line in result.stderr.splitlines() if "error" in line] == [
        f"error: HTTP 422 invalid_input: {detail}"
    ]
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_a_bad_line_is_caught_before_uploading(api: respx.MockRouter, tmp_path: Path) -> None:
    route = api.post("/v1/batches").respond(202, json={"id": BATCH_ID, "count": 1})
    bad = tmp_path / "bad.jsonl"
    for text, fragment in [
        ('{"prompt": "ok"}\n{"prompt": ""}\n', "bad.jsonl:2: prompt: must not be empty"),
        ('{"prompt": "ok"}\n\n{"prompt": "x",\n', "bad.jsonl:3: not valid JSON"),
        ('["not", "an object"]\n', "bad.jsonl:1: each line must be a JSON object"),
        ("\n\n", "no prompts"),
    ]:
        bad.write_text(text)
        result = run("submit", str(bad))
        assert result.exit_code == 1 and fragment in result.stderr, result.output
        assert "Traceback" not in result.output
    assert not route.called


def test_wait_polls_until_done_and_prints_final_counts(
    api: respx.MockRouter, prompts: Path
) -> None:
    api.post("/v1/batches").respond(202, json={"id": BATCH_ID, "count": 3})
    polls = api.get(f"/v1/batches/{BATCH_ID}").mock(
        side_effect=[
            httpx.Response(200, json=batch_view(queued=3)),
            httpx.Response(200, json=batch_view(running=2, succeeded=1)),
            httpx.Response(200, json=batch_view(succeeded=3)),
        ]
    )
    result = run("submit", str(prompts), "--wait")
    assert result.exit_code == 0, result.output
    assert polls.call_count == 3
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == BATCH_ID
    assert "succeeded 3" in lines[-2] and "haiku 2" in lines[-2] and "$0.001234" in lines[-2]


def test_wait_rides_out_a_brief_api_outage(api: respx.MockRouter, prompts: Path) -> None:
    api.post("/v1/batches").respond(202, json={"id": BATCH_ID, "count": 3})
    api.get(f"/v1/batches/{BATCH_ID}").mock(
        side_effect=[
            httpx.Response(200, json=batch_view(queued=3)),
            httpx.Response(503, text="restarting"),
            httpx.ConnectError("refused"),
            httpx.Response(200, json=batch_view(succeeded=3)),
        ]
    )
    result = run("submit", str(prompts), "--wait")
    assert result.exit_code == 0, result.output


def test_failures_exit_1_and_say_how_to_see_them(api: respx.MockRouter, prompts: Path) -> None:
    api.post("/v1/batches").respond(202, json={"id": BATCH_ID, "count": 3})
    api.get(f"/v1/batches/{BATCH_ID}").respond(200, json=batch_view(succeeded=1, failed=2))
    result = run("submit", str(prompts), "--wait")
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[-1] == BATCH_ID
    assert f"error: 2 of 3 jobs failed; see them with: tierroute status {BATCH_ID}" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_statuses_count_and_cancelled_jobs_end_the_wait(
    api: respx.MockRouter, prompts: Path
) -> None:
    api.post("/v1/batches").respond(202, json={"id": BATCH_ID, "count": 4})
    view = batch_view(succeeded=2, cancelled=1, paused=1)
    # A server that does not yet count cancelled jobs as finished must not hang the wait.
    view.update(finished=2, done=False, count=3)
    view["counts"].pop("paused")
    first = batch_view(queued=2, paused=1)
    api.get(f"/v1/batches/{BATCH_ID}").mock(
        side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=view)]
    )
    result = run("submit", str(prompts), "--wait")
    assert result.exit_code == 1
    assert "error: 1 of 3 jobs were cancelled; see them" in result.stderr

    api.get(f"/v1/jobs/{BATCH_ID}").respond(404, json={"error": "not_found", "detail": "x"})
    api.get(f"/v1/batches/{BATCH_ID}").mock(side_effect=None).respond(200, json=first)
    shown = run("status", BATCH_ID)
    assert "paused 1" in shown.stdout


def test_ctrl_c_while_waiting_leaves_the_batch_running(
    api: respx.MockRouter, prompts: Path
) -> None:
    api.post("/v1/batches").respond(202, json={"id": BATCH_ID, "count": 3})
    answers = iter([httpx.Response(200, json=batch_view(queued=3))])

    def poll(request: httpx.Request) -> httpx.Response:
        for answer in answers:
            return answer
        raise KeyboardInterrupt  # the user presses Ctrl-C during the second poll

    api.get(f"/v1/batches/{BATCH_ID}").mock(side_effect=poll)
    cancel = api.post(f"/v1/batches/{BATCH_ID}/cancel").respond(200, json={"cancelled": 0})
    result = run("submit", str(prompts), "--wait")
    assert result.exit_code == 130
    assert f"still running: {BATCH_ID} (tierroute status {BATCH_ID})" in result.stderr
    assert not cancel.called


def test_cancel_prints_the_count(api: respx.MockRouter) -> None:
    route = api.post(f"/v1/batches/{BATCH_ID}/cancel").respond(
        200, json={"id": BATCH_ID, "cancelled": 1234}
    )
    result = run("cancel", BATCH_ID)
    assert result.exit_code == 0, result.output
    assert route.called and result.stdout.strip() == f"cancelled 1,234 jobs of batch {BATCH_ID}"

    api.post("/v1/batches/nope/cancel").respond(
        404, json={"error": "not_found", "detail": "batch nope not found"}
    )
    missing = run("cancel", "nope")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "error: HTTP 404 not_found: batch nope not found"


def test_status_of_a_batch(api: respx.MockRouter) -> None:
    api.get(f"/v1/jobs/{BATCH_ID}").respond(404, json={"error": "not_found", "detail": "no"})
    view = batch_view(running=1, succeeded=1, failed=1)
    api.get(f"/v1/batches/{BATCH_ID}").respond(200, json=view)
    result = run("status", BATCH_ID)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for fragment in ("2/3 finished (66.7%)", "running 1", "failed 1", "queued 0", "haiku 2"):
        assert fragment in out
    assert "$0.001234" in out and "saved $0.002766" in out
    assert f"curl -s {API}/v1/batches/{BATCH_ID}/results | jq" in out  # where the errors are

    raw = run("status", BATCH_ID, "--json")
    assert json.loads(raw.stdout) == view


def test_status_of_a_job(api: respx.MockRouter) -> None:
    job = {
        "id": JOB_ID,
        "batch_id": BATCH_ID,
        "status": "succeeded",
        "tier": "sonnet",
        "model": "claude-sonnet-4-6",
        "routing": {
            "tier": "sonnet",
            "proposed_tier": "sonnet",
            "confidence": 0.85,
            "score": 5,
            "reasoning": "Needs [bold]real[/bold] code, not a lookup",
            "classifier": "llm",
            "cost_ratio": 0.6,
            "fallback_reason": None,
        },
        "result": "def merge(a, b):\n" + "x" * 2000,
        "input_tokens": 40,
        "output_tokens": 900,
        "cost_usd": 0.0135,
        "classifier_cost_usd": 0.0005,
        "cost_if_opus_usd": 0.0225,
        "savings_usd": 0.009,
        "latency_ms": 1234,
        "attempts": 1,
        "error": None,
        "simulated": True,
    }
    api.get(f"/v1/jobs/{JOB_ID}").respond(200, json=job)
    result = run("status", JOB_ID)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for fragment in (
        "succeeded",
        "claude-sonnet-4-6",
        "confidence 0.85",
        "Needs [bold]real[/bold] code",  # user text is shown, never read as markup
        "$0.013500",
        "def merge(a, b):",
        "--json for all",
        "simulated",
    ):
        assert fragment in out, fragment
    assert "x" * 1000 not in out.replace("\n", "").replace(" ", "")


def test_status_of_an_unknown_id_and_an_unreachable_api(api: respx.MockRouter) -> None:
    api.get("/v1/jobs/nope").respond(404, json={"error": "not_found", "detail": "job nope"})
    api.get("/v1/batches/nope").respond(404, json={"error": "not_found", "detail": "batch nope"})
    missing = run("status", "nope")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "error: HTTP 404 no job or batch nope"

    api.get("/v1/jobs/down").mock(side_effect=httpx.ConnectError("refused"))
    down = run("status", "down")
    assert down.exit_code == 1 and "cannot reach the tierroute API" in down.stderr
    assert "Traceback" not in down.output
