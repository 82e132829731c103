"""A small HTTP client for the CLI: every client command goes through the API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    """The API answered with an error, or could not be reached."""

    def __init__(
        self, message: str, status_code: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code  # None: no HTTP answer at all
        self.code = code


def api_url(explicit: str | None = None) -> str:
    """The API base URL: --api, then $TIERROUTE_API_URL, then the local default."""
    return (explicit or os.environ.get("TIERROUTE_API_URL") or DEFAULT_API_URL).rstrip("/")


def api_key(explicit: str | None = None) -> str | None:
    """The API key: --api-key, then $TIERROUTE_API_KEY; None sends no header."""
    return explicit or os.environ.get("TIERROUTE_API_KEY") or None


UNAUTHORIZED_HINT = (
    "set TIERROUTE_API_KEY (or pass --api-key) to a key from `tierroute keys create NAME`"
)


def _error_message(response: httpx.Response) -> tuple[str, str | None]:
    """One line for an error response: our `{error, detail}` shape, or what there is."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code: str | None = None
    if isinstance(body, dict) and "error" in body:
        code = str(body["error"])
        message = f"{code}: {body.get('detail')}"
    elif isinstance(body, dict) and "detail" in body:
        message = str(body["detail"])  # FastAPI's own errors (unknown route, 405)
    else:
        message = response.text[:300] or response.reason_phrase
    # A detail may quote a prompt with newlines; the CLI promises one line.
    return " ".join(message.split()), code


class ApiClient:
    """Thin wrapper that turns HTTP errors into one readable message."""

    def __init__(self, base_url: str, key: str | None = None, timeout_s: float = 60.0) -> None:
        self.base_url = base_url
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, headers=headers)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return the JSON answer; any failure raises ApiError."""
        response = self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                f"HTTP {response.status_code} from {self.base_url}{path} is not JSON",
                response.status_code,
            ) from None

    def stream_lines(self, path: str) -> Iterator[bytes]:
        """GET a JSONL stream, a line at a time as it arrives; failures raise ApiError."""
        try:
            with self._http.stream("GET", path, timeout=httpx.Timeout(60.0, read=300.0)) as got:
                if got.is_error:
                    got.read()
                    message, code = _error_message(got)
                    raise ApiError(f"HTTP {got.status_code} {message}", got.status_code, code)
                for line in got.iter_lines():
                    if line:
                        yield line.encode()
        except httpx.HTTPError as exc:
            raise ApiError(f"the results stream from {self.base_url} broke off ({exc})") from None

    def get_text(self, path: str, **kwargs: Any) -> str:
        """GET a page that is not JSON (the HTML dashboard); failures raise ApiError."""
        return self._send("GET", path, **kwargs).text

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiError(
                f"the tierroute API at {self.base_url} did not answer in time ({exc!r})"
            ) from None
        except httpx.HTTPError as exc:
            raise ApiError(
                f"cannot reach the tierroute API at {self.base_url} ({exc}); "
                "is `tierroute up` running? (--api URL or TIERROUTE_API_URL)"
            ) from None
        if response.is_error:
            message, code = _error_message(response)
            if response.status_code == 401:
                message = f"{message}; {UNAUTHORIZED_HINT}"
            raise ApiError(f"HTTP {response.status_code} {message}", response.status_code, code)
        return response

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
