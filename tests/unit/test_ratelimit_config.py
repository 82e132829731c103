"""Rate-limit settings, per-model limits and the input estimate, without Redis."""

from __future__ import annotations

import pytest

from tierroute.config import Settings
from tierroute.domain.errors import ConfigurationError
from tierroute.domain.tiers import load_tier_table
from tierroute.llm.ratelimit import ModelLimits, estimate_input_tokens, limits_by_model


def test_rate_limits_default_on_with_a_redis_broker() -> None:
    assert Settings(broker_url="redis://127.0.0.1:6379/0").rate_limits_enabled
    assert not Settings(broker_url="amqp://guest@127.0.0.1//").rate_limits_enabled
    assert not Settings(broker_url=None).rate_limits_enabled
    assert not Settings(broker_url="redis://x/0", rate_limits=False).rate_limits_enabled


def test_rate_limit_overrides_come_from_json_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERROUTE_RATE_LIMIT_OVERRIDES", '{"haiku": {"rpm": 50}}')
    assert Settings().rate_limit_overrides == {"haiku": {"rpm": 50}}


def test_limits_come_from_the_table_with_overrides_by_name_or_model() -> None:
    tiers = load_tier_table()
    overrides = {"haiku": {"rpm": 50}, "claude-opus-4-6": {"otpm": 9}}
    limits = limits_by_model(tiers, overrides, use_table=True)
    haiku, opus = tiers.get("haiku"), tiers.get("opus")
    assert limits[haiku.model] == ModelLimits(50, haiku.itpm, haiku.otpm)
    assert limits[opus.model] == ModelLimits(opus.rpm, opus.itpm, 9)
    assert haiku.rpm > 0 and haiku.itpm > 0 and haiku.otpm > 0


def test_the_simulator_gets_only_the_overrides() -> None:
    tiers = load_tier_table()
    limits = limits_by_model(tiers, {"sonnet": {"rpm": 2}}, use_table=False)
    assert limits[tiers.get("sonnet").model] == ModelLimits(rpm=2)
    assert limits[tiers.get("haiku").model] == ModelLimits()


@pytest.mark.parametrize("overrides", [{"gpt": {"rpm": 1}}, {"haiku": {"tpm": 1}}])
def test_bad_overrides_fail_fast(overrides: dict[str, dict[str, int]]) -> None:
    with pytest.raises(ConfigurationError):
        limits_by_model(load_tier_table(), overrides, use_table=True)


def test_input_tokens_are_estimated_from_characters() -> None:
    params = {"system": "s" * 40, "messages": [{"role": "user", "content": "x" * 400}]}
    # ASCII at two characters a token (cost.estimate_tokens, an upper bound).
    assert estimate_input_tokens(params) == 220 + 8
