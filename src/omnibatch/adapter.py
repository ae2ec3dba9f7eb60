"""The provider adapter interface: what a provider plugin implements.

An adapter translates; the core runs the lifecycle. Every operation is a sans-I/O flow (see
:mod:`omnibatch.flows`), so one adapter serves both ``BatchClient`` and ``AsyncBatchClient``.

The same interface covers file-based providers (upload a JSONL file, then create a batch that
references it: OpenAI, Mistral) and inline providers (the create call carries the requests:
Anthropic, Gemini below 20 MB): ``upload`` of an inline provider performs no I/O and returns an
:class:`InputRef` that points at the prepared part file; ``create`` then reads it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from omnibatch import _answers
from omnibatch._answers import chat_answer
from omnibatch._exceptions import UnsupportedOperationError, register_secret
from omnibatch._status import BatchStatus, normalize_status
from omnibatch.flows import Flow, HttpRequest, HttpResponse
from omnibatch.models import Batch, BatchRequest, BatchResult, FileObject, Page

__all__ = [
    "Capabilities",
    "CreateSpec",
    "ErrorInfo",
    "InputPart",
    "InputRef",
    "ProviderAdapter",
    "ProviderLimits",
    "RequestIssue",
    "ResultSource",
]


@dataclass(frozen=True)
class ProviderLimits:
    """Per-batch limits the core enforces (splitting, validation) before anything is sent."""

    max_requests: int | None = None
    max_bytes: int | None = None
    max_metadata_pairs: int | None = None
    max_metadata_key_length: int | None = None
    max_metadata_value_length: int | None = None
    custom_id_pattern: str | None = None


@dataclass(frozen=True)
class Capabilities:
    """What the provider's batch API can do. The core adapts its behaviour to these."""

    file_upload: bool = True
    """Input is uploaded as a file before create (False: requests go inline)."""
    metadata: bool = True
    """Batches carry user metadata (used for idempotency keys and reconciliation)."""
    idempotency_key: bool = False
    """Without user metadata, batches still carry omnibatch's idempotency key (the adapter
    reads it from ``CreateSpec.metadata`` and returns it in ``Batch.metadata``, e.g. through
    Gemini's display name), so an ambiguous create can be reconciled by listing."""
    list_batches: bool = True
    cancel: bool = True
    delete_files: bool = True
    delete_batch: bool = False
    single_model: bool = True
    """Every request of one batch must use the same model."""
    model_at_job_level: bool = False
    """The model is given on the batch, not per request (Mistral, Gemini)."""


@dataclass(frozen=True)
class InputPart:
    """One provider-ready part of a job: a JSONL file of lines already in the provider's
    format (``encode_request`` output), with what the core learnt while writing it."""

    path: Path
    index: int
    count: int
    size_bytes: int
    endpoint: str
    model: str | None
    custom_ids_path: Path | None = None


@dataclass(frozen=True)
class InputRef:
    """Where the provider finds a part's requests: an uploaded file id, or inline (the part).
    ``part`` is None when the caller created a batch from a file id it uploaded earlier."""

    part: InputPart | None
    file_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CreateSpec:
    """Everything ``create`` needs besides the input."""

    endpoint: str
    model: str | None = None
    completion_window: str = "24h"
    metadata: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    """Provider-specific options (e.g. Mistral ``timeout_hours``, Gemini ``display_name``)."""


@dataclass(frozen=True)
class ResultSource:
    """A place results come from: a download (the client streams it to disk) or records the
    provider returned inline. ``kind`` is ``output``, ``error`` or ``results``."""

    kind: str
    download: HttpRequest | None = None
    records: tuple[Mapping[str, Any], ...] | None = None
    name: str = ""


@dataclass(frozen=True)
class ErrorInfo:
    """The message and machine-readable code a provider put in an error response."""

    message: str
    code: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class RequestIssue:
    """A provider-specific problem with one request, reported with its line by the core."""

    field: str
    message: str
    fix: str | None = None


class ProviderAdapter(ABC):
    """Base class of every provider. Subclasses set the class attributes and implement the flows.

    Class attributes:
        name: the provider name users type (``--provider NAME``); lower-case, unique.
        display_name: a human name for listings.
        default_base_url: the production API root the paths are joined to.
        api_key_env / base_url_env: environment variables read by the core's configuration.
        emulator_prefix: the path under an emulator root where this provider's dialect lives
            (``/openai/v1``), so ``--base-url`` can be derived from an emulator URL.
        status_map: every documented raw status -> normalized status.
        documented_statuses: the provider's documented raw statuses; the contract suite checks
            that ``status_map`` covers them all.
        endpoints: the request URLs the provider's batch API accepts.
        completion_windows: the completion windows (``CreateSpec.completion_window``) it takes.
        limits, capabilities: see :class:`ProviderLimits` and :class:`Capabilities`.
        price_provider: the provider's id in genai-prices' data, when it is not ``name``.
    """

    name: ClassVar[str]
    display_name: ClassVar[str] = ""
    default_base_url: ClassVar[str]
    api_key_env: ClassVar[str | None] = None
    base_url_env: ClassVar[str | None] = None
    emulator_prefix: ClassVar[str] = ""
    status_map: ClassVar[Mapping[str, BatchStatus]]
    documented_statuses: ClassVar[frozenset[str]] = frozenset()
    endpoints: ClassVar[frozenset[str]] = frozenset({"/v1/chat/completions"})
    completion_windows: ClassVar[tuple[str, ...]] = ("24h",)
    limits: ClassVar[ProviderLimits] = ProviderLimits()
    capabilities: ClassVar[Capabilities] = Capabilities()
    requires_api_key: ClassVar[bool] = True
    price_provider: ClassVar[str | None] = None
    """The provider's id in genai-prices' data (None: ``name``), for model checks and cost."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        register_secret(api_key)  # never in an exception, whatever the provider echoes
        self._api_key = api_key
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.options: dict[str, Any] = dict(options or {})

    def __repr__(self) -> str:
        key = "set" if self._api_key else "unset"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=<{key}>)"

    # --- credentials (applied by the client; flows never see them) ---------------------------

    @property
    def api_key(self) -> str | None:
        """The key, for an ``auth_headers`` override; it belongs in no other place."""
        return self._api_key

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request. Default: ``Authorization: Bearer <key>``."""
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def default_headers(self) -> dict[str, str]:
        """Non-secret headers sent on every request (versions, user agent)."""
        return {}

    # --- translation ----------------------------------------------------------------------------

    @abstractmethod
    def encode_request(self, request: BatchRequest) -> dict[str, Any]:
        """Translate one request into a line (or inline item) of the provider's input format."""

    def encode_line(self, custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """``encode_request`` as the streaming pipeline calls it, once per input line, with
        values it has already checked. The default builds a ``BatchRequest``; adapters override
        it to skip that model per line. It must return what ``encode_request`` returns and must
        not modify ``body``."""
        return self.encode_request(BatchRequest(custom_id=custom_id, url=url, body=body))

    def check_request(self, request: BatchRequest) -> list[RequestIssue]:
        """Provider-specific validation of one request; the core adds line numbers."""
        return []

    def model_of(self, request: BatchRequest) -> str | None:
        """The model a request uses (for one-model-per-batch checks and job-level models)."""
        model = request.body.get("model")
        return model if isinstance(model, str) else None

    # --- the lifecycle, as flows -------------------------------------------------------------

    @abstractmethod
    def upload(self, part: InputPart) -> Flow[InputRef]:
        """Make a prepared part available to ``create`` (upload a file, or nothing for inline)."""

    def uploads(self, part: InputPart) -> bool:
        """Whether ``upload`` stores ``part`` as a file (False: it returns an ``InputRef``
        without ``file_id`` and ``create`` sends the part inline). Providers that choose per
        part (Gemini: inline below 20 MB) override it."""
        return self.capabilities.file_upload

    @abstractmethod
    def create(self, ref: InputRef, spec: CreateSpec) -> Flow[Batch]:
        """Create the provider batch."""

    @abstractmethod
    def retrieve(self, batch_id: str) -> Flow[Batch]:
        """Fetch the batch's current state."""

    @abstractmethod
    def list_batches(
        self, *, cursor: str | None, limit: int | None, filters: Mapping[str, Any]
    ) -> Flow[Page[Batch]]:
        """One page of the provider's batches, newest first; ``next_cursor`` for the next one."""

    @abstractmethod
    def cancel(self, batch_id: str) -> Flow[Batch]:
        """Ask the provider to cancel; returns the batch as the provider reports it."""

    @abstractmethod
    def result_sources(self, batch: Batch) -> Flow[list[ResultSource]]:
        """Where the results of a terminal batch are (output and error files, inline records)."""

    @abstractmethod
    def parse_result_line(self, record: Mapping[str, Any], source: ResultSource) -> BatchResult:
        """Normalize one result line or record."""

    def output_line(self, record: Mapping[str, Any], source: ResultSource) -> dict[str, Any]:
        """One result record as the line :func:`omnibatch.results.write_output` writes: the
        default is ``parse_result_line(record, source).to_output_line()``. Merging a million
        results spends most of its time here, so adapters override it with plain dict work
        (same output; raise ``KeyError``/``TypeError``/``ValueError`` on a malformed record)."""
        return self.parse_result_line(record, source).to_output_line()

    def read_answer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The answer in a succeeded request's response body, read into the fields every
        result carries: ``text`` (or ``embedding``), ``finish_reason`` (normalized),
        ``provider_finish_reason``, ``tool_calls`` (OpenAI's shape), ``usage`` (``input_tokens``,
        ``output_tokens``, ``cached_input_tokens``, ``reasoning_tokens``) and ``model``.

        The default reads OpenAI's shapes (chat completions, completions, embeddings lists,
        Responses), which OpenAI-compatible providers answer with; a provider whose bodies
        differ overrides it (see :mod:`omnibatch.plugin`'s ``messages_answer`` and
        ``candidates_answer``). Called once per result line: plain dict work, no models."""
        return chat_answer(body)

    @abstractmethod
    def parse_batch(self, raw: Mapping[str, Any]) -> Batch:
        """Normalize the provider's batch object."""

    def delete_file(self, file_id: str) -> Flow[None]:
        """Delete a stored file. Providers without files keep this default."""
        yield from ()
        raise UnsupportedOperationError(f"{self.name} has no file storage", provider=self.name)

    def delete_batch(self, batch_id: str) -> Flow[None]:
        """Delete a batch record, where the provider has that."""
        yield from ()
        raise UnsupportedOperationError(f"{self.name} cannot delete batches", provider=self.name)

    def list_files(self, *, cursor: str | None, limit: int | None) -> Flow[Page[FileObject]]:
        """One page of the stored batch files, newest first where the provider allows. The job
        runner uses it to find an upload whose answer a crash lost. Default: not supported."""
        yield from ()
        raise UnsupportedOperationError(f"{self.name} cannot list files", provider=self.name)

    def download_file(self, file_id: str) -> HttpRequest:
        """The request that downloads a stored file's content."""
        raise UnsupportedOperationError(f"{self.name} has no file storage", provider=self.name)

    def files_of(self, batch: Batch) -> list[str]:
        """Every stored file a batch owns (input, output, error), for clean-up."""
        return [*batch.input_file_ids, *batch.output_file_ids, *batch.error_file_ids]

    # --- helpers for subclasses ----------------------------------------------------------------

    def normalize(self, raw_status: str | None) -> BatchStatus:
        return normalize_status(raw_status, self.status_map, provider=self.name)

    def error_info(self, response: HttpResponse) -> ErrorInfo:
        """Read the provider's error message and code from a non-2xx response."""
        request_id = response.headers.get("x-request-id") or response.headers.get("request-id")
        try:
            body = response.json()
        except ValueError:
            return ErrorInfo(
                response.text[:500] or f"HTTP {response.status_code}", None, request_id
            )
        return ErrorInfo(*_dig_error(body), request_id=request_id)


_answers._default_reader = ProviderAdapter.read_answer  # its lines take the quick path


def _dig_error(body: Any) -> tuple[str, str | None]:
    """Find message and code in the common error shapes ({"error": {...}}, {"message": ...})."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            inner = err.get("error")
            if isinstance(inner, dict):
                err = inner
            message = err.get("message") or err.get("detail") or body.get("detail") or str(body)
            code = err.get("code") or err.get("type") or err.get("status")
            return str(message), (str(code) if code is not None else None)
        if isinstance(err, str):
            return err, None
    return str(body)[:500], None
