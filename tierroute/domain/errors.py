"""One error tree for the whole project.

Retryable and permanent failures are different classes so that task code can
decide with one `except`; the API maps `TierrouteError` subclasses to 4xx.
"""

from __future__ import annotations


class TierrouteError(Exception):
    """Root of every error tierroute raises on purpose."""

    code = "error"
    http_status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConfigurationError(TierrouteError):
    """Settings or the tier table are invalid; raised at startup."""

    code = "configuration_error"
    http_status = 500


class InvalidInput(TierrouteError):
    """A client sent something we cannot accept; names the field."""

    code = "invalid_input"
    http_status = 422

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field


class NotFound(TierrouteError):
    """The id does not exist (or is not visible to the caller)."""

    code = "not_found"
    http_status = 404


class Unauthorized(TierrouteError):
    """No API key, a malformed one, or one that is unknown or revoked."""

    code = "unauthorized"
    http_status = 401


class Conflict(TierrouteError):
    """The request conflicts with the current state of a resource."""

    code = "conflict"
    http_status = 409


class ProviderError(TierrouteError):
    """A model call failed."""

    code = "provider_error"
    http_status = 502


class RetryableProviderError(ProviderError):
    """A model call failed in a way that may succeed later (429, 529, 5xx, timeout)."""

    code = "provider_retryable"

    def __init__(
        self, detail: str, retry_after_s: float | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
        self.status_code = status_code


class RateLimited(TierrouteError):
    """Our own shared rate limiter says wait: no call was made, so nothing failed."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, detail: str, wait_s: float) -> None:
        super().__init__(detail)
        self.wait_s = wait_s


class PermanentProviderError(ProviderError):
    """A model call was rejected for good (400, 401, 403, 404, 413): do not retry."""

    code = "provider_permanent"
