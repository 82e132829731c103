"""Issue 17's round trip on a running stack: an Anthropic batch file in, its results out.

    tierroute up                                   # in another terminal; prints the key
    export TIERROUTE_API_KEY=trk_... TIERROUTE_API_URL=http://127.0.0.1:8000
    .venv/bin/python scripts/anthropic_roundtrip.py 10000

Writes N Message Batches request lines (`{"custom_id", "params"}`: the bundled sample
prompts made unique, some multi-turn, some with a system prompt, structured output,
a sampling parameter or a forced tier), then runs, as a user would,

    id=$(tierroute submit FILE --wait | tail -1) &&
        tierroute results "$id" --format anthropic -o OUT

and checks OUT: one line per request, every custom_id exactly once, each result
`succeeded`. Prints a JSON summary (wall time included); exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parent.parent / "tierroute" / "data" / "sample_prompts.jsonl"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def request(i: int, prompts: list[str]) -> dict[str, Any]:
    """The i-th request line: a sample prompt made unique, in one of several shapes."""
    text = f"{prompts[i % len(prompts)]} (request {i})"
    params: dict[str, Any] = {"model": "tierroute-auto", "max_tokens": 256}
    if i % 4 == 1:
        params["messages"] = [
            {"role": "user", "content": prompts[(i + 7) % len(prompts)]},
            {"role": "assistant", "content": "Done. Anything else?"},
            {"role": "user", "content": [{"type": "text", "text": text}]},
        ]
    else:
        params["messages"] = [{"role": "user", "content": text}]
    if i % 5 == 2:
        params["system"] = "Answer briefly and precisely."
    if i % 7 == 3:
        params["output_config"] = {"format": {"type": "json_schema", "schema": SCHEMA}}
    if i % 9 == 4:
        params["temperature"] = 0.3
    if i % 11 == 5:
        params["model"] = "haiku"
    return {"custom_id": f"req-{i:06d}", "params": params}


def write_batch(path: Path, count: int) -> None:
    """`count` request lines, each custom_id once."""
    lines = [json.loads(line)["prompt"] for line in SAMPLES.read_text().splitlines() if line]
    with path.open("w") as out:
        for i in range(count):
            out.write(json.dumps(request(i, lines)) + "\n")


def check(path: Path, count: int) -> dict[str, Any]:
    """What the results file holds: lines, distinct and repeated custom_ids, result types."""
    ids: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        item = json.loads(line)
        ids[item["custom_id"]] += 1
        types[item["result"]["type"]] += 1
    expected = {f"req-{i:06d}" for i in range(count)}
    return {
        "lines": sum(ids.values()),
        "distinct_custom_ids": len(ids),
        "repeated": sorted(k for k, n in ids.items() if n > 1)[:10],
        "missing": sorted(expected - set(ids))[:10],
        "unexpected": sorted(set(ids) - expected)[:10],
        "result_types": dict(types),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("requests", type=int, nargs="?", default=10_000)
    parser.add_argument("--dir", type=Path, default=None, help="keep the files here")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="anthropic-roundtrip-"))
    work.mkdir(parents=True, exist_ok=True)
    batch, results = work / "anthropic_batch.jsonl", work / "results.jsonl"
    write_batch(batch, args.requests)
    command = (
        f'id=$(tierroute submit "{batch}" --wait | tail -1)'
        f' && tierroute results "$id" --format anthropic -o "{results}"'
    )
    started = time.perf_counter()
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], check=False)
    wall_s = time.perf_counter() - started
    summary: dict[str, Any] = {"requests": args.requests, "exit_status": done.returncode}
    summary["wall_s"] = round(wall_s, 1)
    if results.exists():
        summary |= check(results, args.requests)
    ok = (
        done.returncode == 0
        and summary.get("lines") == args.requests
        and summary.get("distinct_custom_ids") == args.requests
        and summary.get("result_types") == {"succeeded": args.requests}
    )
    summary["ok"] = ok
    summary["files"] = str(work)
    print(json.dumps(summary, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
