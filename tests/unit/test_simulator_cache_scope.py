"""The simulator's prompt cache is org-wide and prefix-exact, like Anthropic's.

That is what makes tests/integration/test_cache_scope.py meaningful: the simulator
does not separate callers, so only the scope tierroute puts in the prefix does.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx

from tierroute.devstack.simulator import RunningSimulator

LONG = "Policy text that every caller of this organisation may send. " * 300
MODEL = "claude-haiku-4-5"


def ask(sim: RunningSimulator, api_key: str, system: list[dict[str, Any]]) -> anthropic.types.Usage:
    client = anthropic.Anthropic(api_key=api_key, base_url=sim.base_url, max_retries=0)
    message = client.messages.create(
        model=MODEL,
        max_tokens=20,
        system=system,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "hello"}],
    )
    return message.usage


def cached(*texts: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text} for text in texts]
    blocks[-1]["cache_control"] = {"type": "ephemeral"}
    return blocks


def test_one_cache_for_every_api_key_matched_on_the_exact_prefix(sim: RunningSimulator) -> None:
    httpx.post(f"{sim.base_url}/_sim/cache/clear").raise_for_status()
    written = ask(sim, "sk-ant-alice", cached(LONG)).cache_creation_input_tokens
    assert written and written > 0
    # Another API key of the same organisation reads what the first one wrote...
    assert ask(sim, "sk-ant-bob", cached(LONG)).cache_read_input_tokens == written
    # ...but only for the very same prefix: a block in front of it makes another one.
    scoped = ask(sim, "sk-ant-bob", cached("[scope b]", LONG))
    assert scoped.cache_read_input_tokens == 0 and scoped.cache_creation_input_tokens
    assert ask(sim, "sk-ant-bob", cached(LONG + ".")).cache_read_input_tokens == 0
