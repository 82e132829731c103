"""The CLI's client sends the API key and explains a 401 in one line."""

from __future__ import annotations

import pytest
import respx

from tierroute.cli.client import ApiClient, ApiError, api_key


def test_key_comes_from_the_flag_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERROUTE_API_KEY", "trk_env")
    assert api_key("trk_flag") == "trk_flag"
    assert api_key(None) == "trk_env"
    monkeypatch.setenv("TIERROUTE_API_KEY", "")
    assert api_key(None) is None


@respx.mock
def test_bearer_header_is_sent_and_a_401_says_how_to_get_a_key() -> None:
    route = respx.get("http://api/v1/report").respond(
        401, json={"error": "unauthorized", "detail": "unknown or revoked API key"}
    )
    with ApiClient("http://api", "trk_secret") as client, pytest.raises(ApiError) as caught:
        client.request("GET", "/v1/report")
    assert route.calls.last.request.headers["authorization"] == "Bearer trk_secret"
    message = str(caught.value)
    assert caught.value.status_code == 401 and "\n" not in message
    assert "TIERROUTE_API_KEY" in message and "tierroute keys create" in message
    assert "trk_secret" not in message
