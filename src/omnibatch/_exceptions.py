"""Every exception omnibatch raises, in one tree.

::

    BatchError                        root: catch this to catch anything omnibatch raises
    ├── ConfigurationError            bad or missing settings (key, base URL, provider options)
    │   └── UnknownProviderError      no installed provider has that name
    ├── PluginError                   a provider plugin is broken (duplicate name, missing parts)
    ├── InputValidationError          the batch input is invalid; nothing was uploaded
    ├── ProviderError                 talking to a provider failed
    │   ├── ProviderConnectionError   network-level failure (reset, refused, truncated body)
    │   │   └── ProviderTimeoutError
    │   ├── ProviderStatusError       non-2xx answer: status_code, body, request_id
    │   │   ├── AuthenticationError   401/403
    │   │   ├── NotFoundError         404
    │   │   ├── ConflictError         409
    │   │   ├── RateLimitError        429 (retry_after)
    │   │   └── ProviderServerError   5xx
    │   └── ProviderResponseError     2xx with a body we cannot understand
    ├── UnsupportedOperationError     the provider's API has no such operation
    └── BatchStateError               the lifecycle was misused (results of a running batch)
        ├── WaitTimeoutError          wait() gave up before the batch ended
        └── BatchFailedError          the batch ended failed, expired or cancelled

No exception message, ``repr`` or attribute ever carries an API key: the HTTP layer adds
credentials to requests after flows have built them, and error bodies are the provider's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omnibatch.models import Batch, ValidationProblem

__all__ = [
    "AuthenticationError",
    "BatchError",
    "BatchFailedError",
    "BatchStateError",
    "ConfigurationError",
    "ConflictError",
    "InputValidationError",
    "NotFoundError",
    "PluginError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderResponseError",
    "ProviderServerError",
    "ProviderStatusError",
    "ProviderTimeoutError",
    "RateLimitError",
    "UnknownProviderError",
    "UnsupportedOperation",
    "UnsupportedOperationError",
    "WaitTimeoutError",
]


class BatchError(Exception):
    """Root of every error omnibatch raises."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider

    def __str__(self) -> str:
        return f"[{self.provider}] {self.message}" if self.provider else self.message


class ConfigurationError(BatchError):
    """Settings are missing or wrong; the message names the setting and how to set it."""


class UnknownProviderError(ConfigurationError):
    """The requested provider is not installed; the message lists those that are."""


class PluginError(BatchError):
    """A provider plugin could not be loaded or registered; the message names its origin."""


class InputValidationError(BatchError):
    """The batch input has problems. ``problems`` lists each with line, field and fix."""

    def __init__(
        self,
        problems: Sequence[ValidationProblem],
        *,
        source: str | None = None,
        provider: str | None = None,
    ) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{len(self.problems)} problem(s) in {source or 'the input'}; nothing was uploaded"
        shown = "\n".join(f"  {p}" for p in self.problems[:20])
        more = len(self.problems) - 20
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{head}:\n{shown}{tail}", provider=provider)


class ProviderError(BatchError):
    """A call to the provider failed."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.method = method
        self.url = url


class ProviderConnectionError(ProviderError):
    """The request did not get a complete answer (refused, reset, truncated)."""


class ProviderTimeoutError(ProviderConnectionError):
    """The provider did not answer in time."""


class ProviderStatusError(ProviderError):
    """The provider answered with a non-2xx status."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int,
        body: Any = None,
        request_id: str | None = None,
        code: str | None = None,
        method: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, method=method, url=url)
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{super().__str__()} [HTTP {self.status_code}]{rid}"


class AuthenticationError(ProviderStatusError):
    """401/403: the key is missing, wrong, or lacks permission."""


class NotFoundError(ProviderStatusError):
    """404: no such batch or file."""


class ConflictError(ProviderStatusError):
    """409: the request conflicts with the resource's state."""


class RateLimitError(ProviderStatusError):
    """429: slow down; ``retry_after`` holds the provider's hint in seconds."""


class ProviderServerError(ProviderStatusError):
    """5xx: the provider failed."""


class ProviderResponseError(ProviderError):
    """The provider answered 2xx with a body that does not have the documented shape."""


class UnsupportedOperationError(BatchError):
    """The provider's batch API does not offer this operation (e.g. deleting files, or
    cancelling on a provider whose ``Capabilities.cancel`` is False)."""


UnsupportedOperation = UnsupportedOperationError
"""The same class under the shorter name the provider docs use."""


class BatchStateError(BatchError):
    """The operation does not fit the batch's state."""


class WaitTimeoutError(BatchStateError):
    """``wait()`` reached its timeout; ``batch`` is the last state seen."""

    def __init__(self, message: str, *, batch: Batch, provider: str | None = None) -> None:
        super().__init__(message, provider=provider)
        self.batch = batch


class BatchFailedError(BatchStateError):
    """The batch ended without succeeding; ``batch`` carries the details."""

    def __init__(self, message: str, *, batch: Batch, provider: str | None = None) -> None:
        super().__init__(message, provider=provider)
        self.batch = batch
