"""Cache scopes: one per API key (and one for keyless jobs), named without the key id."""

from __future__ import annotations

import uuid

from pydantic import SecretStr

from tierroute.config import Settings, default_tier_table
from tierroute.llm.caching import cache_scope, cached_system, prefix_key
from tierroute.llm.provider import build_completion_params

TABLE = default_tier_table()
LONG = "Answer from the handbook. " * 800


def settings(anthropic_key: str | None = None) -> Settings:
    secret = SecretStr(anthropic_key) if anthropic_key else None
    return Settings(anthropic_api_key=secret, anthropic_base_url="http://sim")


def test_each_key_has_its_own_stable_scope_that_names_no_id() -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    scopes = {cache_scope(settings(), key) for key in (alice, bob, None)}
    assert len(scopes) == 3  # keyless jobs are a scope of their own
    assert cache_scope(settings(), alice) == cache_scope(settings(), alice)
    for scope in scopes:
        assert len(scope) == 32 and alice.hex not in scope and bob.hex not in scope
    # Keyed by the deployment's secret: another deployment cannot map markers to ids.
    assert cache_scope(settings("sk-ant-a"), alice) != cache_scope(settings("sk-ant-b"), alice)


def test_the_scope_marker_opens_the_cached_prefix() -> None:
    system = cached_system(LONG, 1024, "s" * 32)
    assert isinstance(system, list) and len(system) == 2
    assert "cache_control" not in system[0] and "s" * 32 in system[0]["text"]
    assert system[1] == {"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}
    # A prompt too short to cache has no breakpoint, so nothing to scope.
    assert cached_system("be brief", 1024, "s" * 32) == "be brief"


def test_two_keys_never_share_a_prefix_or_its_primer_lock() -> None:
    haiku = TABLE.get("haiku")

    def params(key: uuid.UUID | None, prompt: str) -> dict[str, object]:
        scope = cache_scope(settings(), key)
        return build_completion_params(haiku, prompt, LONG, 100, cache_scope=scope)

    alice, bob = uuid.uuid4(), uuid.uuid4()
    assert prefix_key(params(alice, "q1")) == prefix_key(params(alice, "q2"))
    assert prefix_key(params(alice, "q1")) != prefix_key(params(bob, "q1"))
    assert prefix_key(params(None, "q1")) != prefix_key(params(alice, "q1"))
