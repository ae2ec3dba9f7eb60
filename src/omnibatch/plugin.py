"""The plugin-facing API: everything a provider plugin may import, in one place.

A third-party provider imports only from here (and ``omnibatch.testing`` in its tests)::

    from omnibatch.plugin import HttpRequest, ProviderAdapter, hookimpl

These names are versioned by :data:`PLUGIN_API_VERSION`. Within one major version they only
grow: nothing listed in ``__all__`` is removed or changes its signature. Any change to this
surface is recorded in CHANGELOG.md (a test compares it with a snapshot). Names load lazily,
so importing this module from a plugin's ``__init__`` costs nothing until they are used.

Groups:
    hooks             ``hookimpl`` and the entry-point group name.
    adapter           ``ProviderAdapter`` and the values its methods take and return.
    flows             the sans-I/O effects a flow yields and receives.
    models            the normalized values adapters build (``Batch``, ``BatchResult``, ...).
    errors            the exceptions adapters may raise.
    checks            ``check_adapter_class``, the registry's own validation.
    emulator dialect  the base class and helpers for serving the provider in the emulator.
    testing           ``ProviderContract``, the contract suite, and the harness and driver its
                      scenarios use (needs pytest).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

PLUGIN_API_VERSION = "1.0"
"""``MAJOR.MINOR``: MINOR grows when names are added, MAJOR when anything else changes."""

if TYPE_CHECKING:
    from omnibatch._exceptions import (
        BatchError,
        ConfigurationError,
        PluginError,
        ProviderResponseError,
        UnsupportedOperation,
        UnsupportedOperationError,
    )
    from omnibatch._lifecycle import IDEMPOTENCY_KEY
    from omnibatch._plugins import check_adapter_class
    from omnibatch._status import BatchStatus, UnknownStatusWarning
    from omnibatch.adapter import (
        Capabilities,
        CreateSpec,
        ErrorInfo,
        InputPart,
        InputRef,
        ProviderAdapter,
        ProviderLimits,
        RequestIssue,
        ResultSource,
    )
    from omnibatch.emulator import (
        ERROR_MARKER,
        BatchStateConflict,
        Dialect,
        Engine,
        HTTPErrorResponse,
        Phase,
        SimBatch,
        SimRequest,
        Snapshot,
        StoredFile,
        ValidationIssue,
        content_response,
        parse_multipart,
        read_json,
    )
    from omnibatch.emulator.fakes import (
        answer_for,
        chat_completion_body,
        embedding_body,
        response_body,
    )
    from omnibatch.flows import FilePart, Flow, HttpRequest, HttpResponse, Sleep, no_io, query
    from omnibatch.hookspecs import PROJECT_NAME, hookimpl
    from omnibatch.models import (
        Batch,
        BatchErrorDetail,
        BatchRequest,
        BatchResult,
        Page,
        RequestCounts,
        ResultError,
        ResultStatus,
        Usage,
        to_datetime,
    )
    from omnibatch.testing.contract import ContractDriver, ContractHarness, ProviderContract

_GROUPS: dict[str, tuple[str, ...]] = {
    "omnibatch.hookspecs": ("PROJECT_NAME", "hookimpl"),
    "omnibatch.adapter": (
        "Capabilities",
        "CreateSpec",
        "ErrorInfo",
        "InputPart",
        "InputRef",
        "ProviderAdapter",
        "ProviderLimits",
        "RequestIssue",
        "ResultSource",
    ),
    "omnibatch.flows": (
        "FilePart",
        "Flow",
        "HttpRequest",
        "HttpResponse",
        "Sleep",
        "no_io",
        "query",
    ),
    "omnibatch.models": (
        "Batch",
        "BatchErrorDetail",
        "BatchRequest",
        "BatchResult",
        "Page",
        "RequestCounts",
        "ResultError",
        "ResultStatus",
        "Usage",
        "to_datetime",
    ),
    "omnibatch._status": ("BatchStatus", "UnknownStatusWarning"),
    "omnibatch._exceptions": (
        "BatchError",
        "ConfigurationError",
        "PluginError",
        "ProviderResponseError",
        "UnsupportedOperation",
        "UnsupportedOperationError",
    ),
    "omnibatch._plugins": ("check_adapter_class",),
    "omnibatch._lifecycle": ("IDEMPOTENCY_KEY",),
    "omnibatch.emulator": (
        "ERROR_MARKER",
        "BatchStateConflict",
        "Dialect",
        "Engine",
        "HTTPErrorResponse",
        "Phase",
        "SimBatch",
        "SimRequest",
        "Snapshot",
        "StoredFile",
        "ValidationIssue",
        "content_response",
        "parse_multipart",
        "read_json",
    ),
    "omnibatch.emulator.fakes": (
        "answer_for",
        "chat_completion_body",
        "embedding_body",
        "response_body",
    ),
    "omnibatch.testing.contract": ("ContractDriver", "ContractHarness", "ProviderContract"),
}
_EXPORTS = {name: module for module, names in _GROUPS.items() for name in names}

__all__ = [
    "ERROR_MARKER",
    "IDEMPOTENCY_KEY",
    "PLUGIN_API_VERSION",
    "PROJECT_NAME",
    "Batch",
    "BatchError",
    "BatchErrorDetail",
    "BatchRequest",
    "BatchResult",
    "BatchStateConflict",
    "BatchStatus",
    "Capabilities",
    "ConfigurationError",
    "ContractDriver",
    "ContractHarness",
    "CreateSpec",
    "Dialect",
    "Engine",
    "ErrorInfo",
    "FilePart",
    "Flow",
    "HTTPErrorResponse",
    "HttpRequest",
    "HttpResponse",
    "InputPart",
    "InputRef",
    "Page",
    "Phase",
    "PluginError",
    "ProviderAdapter",
    "ProviderContract",
    "ProviderLimits",
    "ProviderResponseError",
    "RequestCounts",
    "RequestIssue",
    "ResultError",
    "ResultSource",
    "ResultStatus",
    "SimBatch",
    "SimRequest",
    "Sleep",
    "Snapshot",
    "StoredFile",
    "UnknownStatusWarning",
    "UnsupportedOperation",
    "UnsupportedOperationError",
    "Usage",
    "ValidationIssue",
    "answer_for",
    "chat_completion_body",
    "check_adapter_class",
    "content_response",
    "embedding_body",
    "hookimpl",
    "no_io",
    "parse_multipart",
    "query",
    "read_json",
    "response_body",
    "to_datetime",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'omnibatch.plugin' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
