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
    ├── LedgerError                   the job ledger cannot be opened, read or written
    │   └── JobNotFoundError          no job with that id in the ledger
    ├── StorageError                  a local file cannot be written (disk full); state is kept
    └── BatchStateError               the lifecycle was misused (results of a running batch)
        ├── WaitTimeoutError          wait() gave up before the batch ended
        ├── BatchFailedError          the batch ended failed, expired or cancelled
        ├── JobBusyError              another process is running this job
        └── SubmissionUnknownError    a create may have reached a provider that cannot be searched

No exception message, ``repr``, attribute or pickle ever carries an API key: every value an
exception holds passes through :func:`redact` when it is set, which replaces each key this
process configured (:func:`register_secret`; the resolver and every adapter register theirs),
any ``Bearer`` / ``x-api-key`` / ``x-goog-api-key`` value and the password of a URL with
``***``. Providers that echo the caller's key in an error body are covered too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
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
    "JobBusyError",
    "JobNotFoundError",
    "LedgerError",
    "NotFoundError",
    "PluginError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderResponseError",
    "ProviderServerError",
    "ProviderStatusError",
    "ProviderTimeoutError",
    "RateLimitError",
    "StorageError",
    "SubmissionUnknownError",
    "UnknownProviderError",
    "UnsupportedOperation",
    "UnsupportedOperationError",
    "WaitTimeoutError",
    "redact",
    "register_secret",
]

REDACTED = "***"
_SECRETS: set[str] = set()
_MIN_SECRET = 6  # shorter values would redact ordinary words
_PATTERNS = (
    # Authorization: Bearer <token>
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"), r"\1" + REDACTED),
    # x-api-key / x-goog-api-key / api_key: <value> (headers, JSON), ?key=<value> (Gemini URLs)
    (
        re.compile(
            r"""(?i)((?:x-goog-api-key|x-api-key|api[_-]key)["']?\s*[:=]\s*["']?|[?&]key=)"""
            r"""([^\s"'&,;}]{6,})"""
        ),
        r"\1" + REDACTED,
    ),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
)


def register_secret(value: str | None) -> None:
    """Add a key to those :func:`redact` removes (the resolver and every adapter call this)."""
    if value and len(value) >= _MIN_SECRET:
        _SECRETS.add(value)


def redact(value: Any) -> Any:
    """``value`` (text, or a JSON-like structure) with every secret replaced by ``***``."""
    if isinstance(value, str):
        for secret in sorted(_SECRETS, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, Mapping):
        return {redact(k): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def _rebuild(cls: type[BatchError], args: tuple[Any, ...], state: dict[str, Any]) -> BatchError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class BatchError(Exception):
    """Root of every error omnibatch raises."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.provider = provider

    def __setattr__(self, name: str, value: Any) -> None:
        # Every attribute an error carries (message, body, url, request id...) is redacted.
        super().__setattr__(name, redact(value))

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors cannot be re-called from args: rebuild from the state.
        return (_rebuild, (type(self), tuple(redact(a) for a in self.args), dict(vars(self))))

    def __str__(self) -> str:
        text: str = redact(f"[{self.provider}] {self.message}" if self.provider else self.message)
        return text


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
    """``wait()`` reached its timeout; ``batch`` is the last state seen, ``waited_seconds``
    how long the wait lasted (when the caller measured it)."""

    waited_seconds: float | None = None

    def __init__(self, message: str, *, batch: Batch, provider: str | None = None) -> None:
        super().__init__(message, provider=provider)
        self.batch = batch


class BatchFailedError(BatchStateError):
    """The batch ended without succeeding; ``batch`` carries the details."""

    def __init__(self, message: str, *, batch: Batch, provider: str | None = None) -> None:
        super().__init__(message, provider=provider)
        self.batch = batch


class LedgerError(BatchError):
    """The ledger cannot be opened, read or written (damaged, full disk, newer schema); the
    message names the file and what to do."""


class JobNotFoundError(LedgerError):
    """No job with that id (or id prefix) is in the ledger."""


class StorageError(BatchError):
    """A local file (a prepared part, a download, OUTPUT) cannot be written: the disk is full or
    read-only. What was recorded is kept; the same command resumes once there is room."""


class JobBusyError(BatchStateError):
    """Another process is running this job right now; the message names it."""


class SubmissionUnknownError(BatchStateError):
    """A create was sent before a crash and the provider cannot be searched for it, so whether
    the batch exists is unknown; omnibatch refuses to risk paying twice."""
