"""A small HTTP client for the CLI: every client command goes through the API."""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    """The API answered with an error, or could not be reached."""


def api_url(explicit: str | None = None) -> str:
    return (explicit or os.environ.get("TIERROUTE_API_URL") or DEFAULT_API_URL).rstrip("/")


class ApiClient:
    """Thin wrapper that turns HTTP errors into one readable message."""

    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                f"cannot reach the tierroute API at {self.base_url} ({exc}); "
                "is `tierroute up` running? (--api URL or TIERROUTE_API_URL)"
            ) from None
        if response.is_error:
            try:
                body = response.json()
                message = f"{body.get('error')}: {body.get('detail')}"
            except ValueError:
                message = response.text[:300]
            raise ApiError(f"HTTP {response.status_code} {message}")
        return response.json()

    def close(self) -> None:
        self._http.close()
