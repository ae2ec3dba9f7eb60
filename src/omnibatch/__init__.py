"""omnibatch: one lifecycle for every LLM batch API.

Public names are imported lazily so ``import omnibatch`` stays fast; the plugin registry, the
emulator and the CLI load only when used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from omnibatch._exceptions import (
        AuthenticationError,
        BatchError,
        BatchFailedError,
        BatchStateError,
        ConfigurationError,
        ConflictError,
        InputValidationError,
        JobBusyError,
        JobNotFoundError,
        LedgerError,
        NotFoundError,
        PluginError,
        ProviderConnectionError,
        ProviderError,
        ProviderResponseError,
        ProviderServerError,
        ProviderStatusError,
        ProviderTimeoutError,
        RateLimitError,
        StorageError,
        SubmissionUnknownError,
        UnknownProviderError,
        UnsupportedOperation,
        UnsupportedOperationError,
        WaitTimeoutError,
    )
    from omnibatch._http import RetryPolicy
    from omnibatch._lifecycle import PollPolicy
    from omnibatch._status import BatchStatus
    from omnibatch.client import AsyncBatchClient, BatchClient, ResultSet
    from omnibatch.models import (
        Batch,
        BatchRequest,
        BatchResult,
        RequestCounts,
        ResultError,
        ResultStatus,
        Usage,
        ValidationProblem,
    )

_EXPORTS = {
    "AsyncBatchClient": "omnibatch.client",
    "BatchClient": "omnibatch.client",
    "ResultSet": "omnibatch.client",
    "Batch": "omnibatch.models",
    "BatchRequest": "omnibatch.models",
    "BatchResult": "omnibatch.models",
    "RequestCounts": "omnibatch.models",
    "ResultError": "omnibatch.models",
    "ResultStatus": "omnibatch.models",
    "Usage": "omnibatch.models",
    "ValidationProblem": "omnibatch.models",
    "BatchStatus": "omnibatch._status",
    "RetryPolicy": "omnibatch._http",
    "PollPolicy": "omnibatch._lifecycle",
    **{
        name: "omnibatch._exceptions"
        for name in (
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
        )
    },
}

__all__ = [
    "AsyncBatchClient",
    "AuthenticationError",
    "Batch",
    "BatchClient",
    "BatchError",
    "BatchFailedError",
    "BatchRequest",
    "BatchResult",
    "BatchStateError",
    "BatchStatus",
    "ConfigurationError",
    "ConflictError",
    "InputValidationError",
    "JobBusyError",
    "JobNotFoundError",
    "LedgerError",
    "NotFoundError",
    "PluginError",
    "PollPolicy",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderResponseError",
    "ProviderServerError",
    "ProviderStatusError",
    "ProviderTimeoutError",
    "RateLimitError",
    "RequestCounts",
    "ResultError",
    "ResultSet",
    "ResultStatus",
    "RetryPolicy",
    "StorageError",
    "SubmissionUnknownError",
    "UnknownProviderError",
    "UnsupportedOperation",
    "UnsupportedOperationError",
    "Usage",
    "ValidationProblem",
    "WaitTimeoutError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'omnibatch' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
