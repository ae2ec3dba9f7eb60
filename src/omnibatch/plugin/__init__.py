"""The plugin-facing API: everything a provider plugin may import, in one place.

A third-party provider imports only from here (and ``omnibatch.testing`` in its tests)::

    from omnibatch.plugin import HttpRequest, ProviderAdapter, hookimpl

These names are versioned by :data:`PLUGIN_API_VERSION`. Within one major version they only
grow: nothing listed in ``__all__`` is removed or changes its signature. Any change to this
surface is recorded in CHANGELOG.md (a test compares it with a snapshot). Names load lazily,
so importing this module from a plugin's ``__init__`` costs nothing until they are used.

Groups:
    hooks             ``hookimpl`` and the entry-point group name.
    adapter           ``ProviderAdapter`` and the values its methods take and return, the
                      idempotency metadata key, and helpers for reading answers and reporting
                      untranslatable requests.
    flows             the sans-I/O effects a flow yields and receives.
    models            the normalized values adapters build (``Batch``, ``BatchResult``, ...),
                      and the status normalizer.
    answers           the readers of response bodies (``chat_answer``, ``messages_answer``,
                      ``candidates_answer``) behind ``ProviderAdapter.read_answer``.
    errors            the exceptions adapters may raise.
    checks            ``check_adapter_class``, the registry's own validation.
    emulator dialect  the base class and helpers for serving the provider in the emulator:
                      time stamps, JSONL input lines, OpenAI-style file routes, fake answers.
    testing           ``ProviderContract``, the contract suite, and the harness and driver its
                      scenarios use (needs pytest).

Submodules, versioned with the same number:
    ``omnibatch.plugin.chat``   reading OpenAI-style chat bodies to translate them.
    ``omnibatch.plugin.lines``  reading OpenAI-style result lines (custom_id/response/error).
    ``omnibatch.plugin.openai_compat``   ``OpenAICompatFacts`` and ``OpenAICompatAdapter``: an
                                         OpenAI-style batch provider from one facts object.
    ``omnibatch.plugin.openai_dialect``  ``OpenAICompatDialect``: its emulator dialect.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

PLUGIN_API_VERSION = "1.8"
"""``MAJOR.MINOR``: MINOR grows when names are added, MAJOR when anything else changes."""

if TYPE_CHECKING:
    from omnibatch._adapters import invalid_request, json_object, request_issues
    from omnibatch._answers import candidates_answer, chat_answer, messages_answer
    from omnibatch._exceptions import (
        BatchError,
        BatchStateError,
        ConfigurationError,
        InputValidationError,
        PluginError,
        ProviderResponseError,
        UnsupportedOperation,
        UnsupportedOperationError,
    )
    from omnibatch._lifecycle import IDEMPOTENCY_KEY
    from omnibatch._plugins import check_adapter_class
    from omnibatch._status import BatchStatus, UnknownStatusWarning, normalize_status
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
        bearer_token,
        content_response,
        parse_multipart,
        read_json,
    )
    from omnibatch.emulator._shared import (
        NOT_JSON,
        file_route,
        iso_time,
        jsonl_lines,
        request_lines,
        unix_time,
    )
    from omnibatch.emulator.dialect import FormPart, check_key
    from omnibatch.emulator.fakes import (
        answer_for,
        chat_completion_body,
        completion_body,
        embedding_body,
        response_body,
        short_hash,
    )
    from omnibatch.flows import FilePart, Flow, HttpRequest, HttpResponse, Sleep, no_io, query
    from omnibatch.hookspecs import PROJECT_NAME, hookimpl
    from omnibatch.models import (
        Batch,
        BatchErrorDetail,
        BatchRequest,
        BatchResult,
        FileObject,
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
        "FileObject",
        "Page",
        "RequestCounts",
        "ResultError",
        "ResultStatus",
        "Usage",
        "to_datetime",
    ),
    "omnibatch._lifecycle": ("IDEMPOTENCY_KEY",),
    "omnibatch._adapters": ("invalid_request", "json_object", "request_issues"),
    "omnibatch._status": ("BatchStatus", "UnknownStatusWarning", "normalize_status"),
    "omnibatch._answers": ("candidates_answer", "chat_answer", "messages_answer"),
    "omnibatch._exceptions": (
        "BatchError",
        "BatchStateError",
        "ConfigurationError",
        "InputValidationError",
        "PluginError",
        "ProviderResponseError",
        "UnsupportedOperation",
        "UnsupportedOperationError",
    ),
    "omnibatch._plugins": ("check_adapter_class",),
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
        "bearer_token",
        "content_response",
        "parse_multipart",
        "read_json",
    ),
    "omnibatch.emulator.dialect": ("FormPart", "check_key"),
    "omnibatch.emulator._shared": (
        "NOT_JSON",
        "file_route",
        "iso_time",
        "jsonl_lines",
        "request_lines",
        "unix_time",
    ),
    "omnibatch.emulator.fakes": (
        "answer_for",
        "chat_completion_body",
        "completion_body",
        "embedding_body",
        "response_body",
        "short_hash",
    ),
    "omnibatch.testing.contract": ("ContractDriver", "ContractHarness", "ProviderContract"),
}
_EXPORTS = {name: module for module, names in _GROUPS.items() for name in names}

__all__ = [
    "ERROR_MARKER",
    "IDEMPOTENCY_KEY",
    "NOT_JSON",
    "PLUGIN_API_VERSION",
    "PROJECT_NAME",
    "Batch",
    "BatchError",
    "BatchErrorDetail",
    "BatchRequest",
    "BatchResult",
    "BatchStateConflict",
    "BatchStateError",
    "BatchStatus",
    "Capabilities",
    "ConfigurationError",
    "ContractDriver",
    "ContractHarness",
    "CreateSpec",
    "Dialect",
    "Engine",
    "ErrorInfo",
    "FileObject",
    "FilePart",
    "Flow",
    "FormPart",
    "HTTPErrorResponse",
    "HttpRequest",
    "HttpResponse",
    "InputPart",
    "InputRef",
    "InputValidationError",
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
    "bearer_token",
    "candidates_answer",
    "chat_answer",
    "chat_completion_body",
    "check_adapter_class",
    "check_key",
    "completion_body",
    "content_response",
    "embedding_body",
    "file_route",
    "hookimpl",
    "invalid_request",
    "iso_time",
    "json_object",
    "jsonl_lines",
    "messages_answer",
    "no_io",
    "normalize_status",
    "parse_multipart",
    "query",
    "read_json",
    "request_issues",
    "request_lines",
    "response_body",
    "short_hash",
    "to_datetime",
    "unix_time",
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
