"""Settings fail fast on values that would break delivery guarantees."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from tierroute.config import Settings


def test_defaults_are_consistent() -> None:
    settings = Settings()
    assert settings.visibility_timeout_s > settings.request_timeout_s + 30
    assert settings.retry_backoff_max_s < settings.visibility_timeout_s


def test_a_lease_longer_than_the_visibility_timeout_is_refused() -> None:
    with pytest.raises(ValidationError, match="must exceed the longest lease"):
        Settings(request_timeout_s=600, visibility_timeout_s=300)


def test_a_retry_countdown_longer_than_the_visibility_timeout_is_refused() -> None:
    with pytest.raises(ValidationError, match="retry_backoff_max_s"):
        Settings(retry_backoff_max_s=900, visibility_timeout_s=600)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("confidence_threshold", 1.5, "within [0, 1]"),
        ("default_tier", "gpt", "default_tier"),
        ("classifier", "magic", "classifier"),
        ("database_url", "mysql://x", "postgresql"),
    ],
)
def test_unsafe_values_stop_the_process(field: str, value: object, fragment: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        Settings(**{field: value})


def test_pasted_postgres_urls_get_the_psycopg_driver() -> None:
    assert Settings(database_url="postgres://u@h/db").database_url == "postgresql+psycopg://u@h/db"


def test_the_classifier_defaults_to_hybrid_with_an_api_key_and_local_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TIERROUTE_CLASSIFIER", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert Settings().classifier == "local"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    assert Settings().classifier == "hybrid"
    # An explicit choice always wins.
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    assert Settings().classifier == "local"
    assert Settings(classifier="llm").classifier == "llm"
