"""The configurable OpenAI-style batch provider: one facts object, one adapter.

Many services copy OpenAI's Files + Batch API (OpenAI itself, Azure OpenAI, Groq, DeepInfra,
DashScope, self-hosted gateways). What differs between them is data: the base URL and path
prefix, the auth header, the endpoints, completion windows, file purposes and limits, the list
pagination and the status names, plus a few line rules. A provider describes those once in an
:class:`OpenAICompatFacts`; :class:`OpenAICompatAdapter` and the emulator's
:class:`~omnibatch.plugin.openai_dialect.OpenAICompatDialect` both read it, so the client and
the emulator cannot drift apart::

    from omnibatch.plugin.openai_compat import OpenAICompatAdapter, OpenAICompatFacts

    FACTS = OpenAICompatFacts(name="mylab", display_name="My Lab",
                              base_url="https://llm.mylab.example/v1", api_key_env="MYLAB_API_KEY")

    class MyLabAdapter(OpenAICompatAdapter):
        facts = FACTS

Part of the plugin API (versioned by ``omnibatch.plugin.PLUGIN_API_VERSION``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from omnibatch._exceptions import ConfigurationError
from omnibatch._openai_lines import (
    Line,
    batch_result,
    error_dict,
    file_sources,
    http_failure,
    line_error,
    parse_usage,
    record_output_line,
    split,
)
from omnibatch._status import BatchStatus
from omnibatch.adapter import (
    Capabilities,
    CreateSpec,
    InputPart,
    InputRef,
    ProviderAdapter,
    ProviderLimits,
    ResultSource,
)
from omnibatch.flows import FilePart, Flow, HttpRequest, QueryParams, query
from omnibatch.models import (
    Batch,
    BatchErrorDetail,
    BatchRequest,
    BatchResult,
    FileObject,
    Page,
    RequestCounts,
    ResultStatus,
    Usage,
    to_datetime,
)

__all__ = [
    "OPENAI_ENDPOINTS",
    "OPENAI_STATUSES",
    "OpenAICompatAdapter",
    "OpenAICompatFacts",
    "duration_seconds",
]

OPENAI_STATUSES: Mapping[str, BatchStatus] = {
    "validating": BatchStatus.VALIDATING,
    "failed": BatchStatus.FAILED,
    "in_progress": BatchStatus.RUNNING,
    "finalizing": BatchStatus.FINALIZING,
    "completed": BatchStatus.SUCCEEDED,
    "expired": BatchStatus.EXPIRED,
    "cancelling": BatchStatus.CANCELLING,
    "cancelled": BatchStatus.CANCELLED,
}
"""OpenAI's batch statuses, which most compatible services copy."""

OPENAI_ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
"""The request URLs OpenAI's batch API accepts."""

_DURATION = re.compile(r"^([1-9][0-9]*)([hd])$")


def duration_seconds(window: str) -> int | None:
    """``"24h"`` -> 86400, ``"7d"`` -> 604800; ``None`` for anything else."""
    m = _DURATION.match(window)
    if m is None:
        return None
    return int(m.group(1)) * (3600 if m.group(2) == "h" else 86400)


@dataclass(frozen=True, kw_only=True)
class OpenAICompatFacts:
    """Everything that makes one OpenAI-style batch service itself, in one place.

    The adapter, the emulator dialect, ``omnibatch providers --json`` and the docs'
    comparison table all read it. Subclass it to change a line rule or the window check
    (the methods), and build one instance per provider.
    """

    name: str
    """The provider name users type; the emulator mounts the service at ``/<name>``."""
    display_name: str
    base_url: str
    """The production API root, path prefix included (``https://api.groq.com/openai/v1``)."""
    api_prefix: str = "/v1"
    """The path of the API under its host: the emulator serves it at ``/<name><api_prefix>``."""
    api_key_env: str | None = None
    base_url_env: str | None = None
    base_url_hint: str | None = None
    """Set when :attr:`base_url` is only a template (per-resource hosts): what to set
    instead. Requests then refuse to go to the template."""
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    """Put before the key in :attr:`auth_header`; empty for a bare key (``api-key: KEY``)."""
    endpoints: tuple[str, ...] = ("/v1/chat/completions",)
    completion_windows: tuple[str, ...] = ("24h",)
    file_purposes: tuple[str, ...] = ("batch",)
    """Purposes an upload may name (``batch`` is the one batches read)."""
    max_requests: int | None = 50_000
    max_bytes: int | None = 200 * 1024 * 1024
    max_metadata_pairs: int | None = 16
    max_metadata_key_length: int | None = 64
    max_metadata_value_length: int | None = 512
    metadata: bool = True
    """Batches carry user metadata (omnibatch's idempotency key rides in it)."""
    cancel: bool = True
    list_files: bool = True
    delete_files: bool = True
    pagination: Literal["cursor", "none"] = "cursor"
    """``cursor``: ``limit``/``after`` with ``has_more``; ``none``: one list of everything."""
    statuses: Mapping[str, BatchStatus] = field(default_factory=lambda: dict(OPENAI_STATUSES))
    """Every raw status -> the normalized one (the emulator answers with the first raw name
    of each normalized status)."""
    file_ttl_seconds: int = 30 * 24 * 3600
    batch_id_prefix: str = "batch_"
    file_id_prefix: str = "file-"
    request_id_header: str = "x-request-id"
    docs_note: str = ""
    """One line on what is unverified or unusual, shown in the providers table."""

    # -- derived ---------------------------------------------------------------------------

    @property
    def emulator_mount(self) -> str:
        return f"/{self.name}"

    @property
    def emulator_prefix(self) -> str:
        """Where the API lives under an emulator root (``/groq/openai/v1``)."""
        return self.emulator_mount + self.api_prefix

    @property
    def limits(self) -> ProviderLimits:
        return ProviderLimits(
            max_requests=self.max_requests,
            max_bytes=self.max_bytes,
            max_metadata_pairs=self.max_metadata_pairs if self.metadata else None,
            max_metadata_key_length=self.max_metadata_key_length if self.metadata else None,
            max_metadata_value_length=self.max_metadata_value_length if self.metadata else None,
        )

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            metadata=self.metadata,
            cancel=self.cancel,
            delete_files=self.delete_files,
            list_batches=True,
        )

    def wire_status(self, status: BatchStatus) -> str:
        """The raw name the service gives ``status`` (falling back on a neighbour the
        service has, e.g. ``in_progress`` for a service without ``finalizing``)."""
        chain = {
            BatchStatus.FINALIZING: (BatchStatus.FINALIZING, BatchStatus.RUNNING),
            BatchStatus.CANCELLING: (BatchStatus.CANCELLING, BatchStatus.RUNNING),
            BatchStatus.VALIDATING: (BatchStatus.VALIDATING, BatchStatus.QUEUED),
        }.get(status, (status,))
        for wanted in chain:
            for raw, value in self.statuses.items():
                if value is wanted:
                    return raw
        return status.value

    # -- rules (override in a subclass) ----------------------------------------------------

    def window_seconds(self, window: str) -> int | None:
        """How long a batch with ``completion_window=window`` may run; ``None`` when the
        service refuses the window."""
        return duration_seconds(window) if window in self.completion_windows else None

    def line_outcome(self, code: Any) -> ResultStatus:
        """What a result line's ``error.code`` means: ``batch_expired`` and
        ``batch_cancelled`` say the request never ran."""
        if code == "batch_expired":
            return ResultStatus.EXPIRED
        if code == "batch_cancelled":
            return ResultStatus.CANCELLED
        return ResultStatus.ERRORED

    def read_line(self, record: Mapping[str, Any]) -> Line:
        """A result line by OpenAI's rules: its ``error`` comes first, a line without a
        response is malformed, and a response with a 4xx/5xx status is an errored request."""
        custom_id = record["custom_id"]
        if not isinstance(custom_id, str):
            raise TypeError(f"custom_id must be a string, got {custom_id!r}")
        response, body, status_code, error = split(record)
        if error:
            code, message = line_error(error)
            return custom_id, self.line_outcome(code), status_code, body, error_dict(code, message)
        if not isinstance(response, Mapping):
            raise ValueError("line has neither response nor error")
        if status_code is not None and int(status_code) >= 400:
            failure = error_dict(*http_failure(body, status_code))
            return custom_id, ResultStatus.ERRORED, int(status_code), body, failure
        return custom_id, ResultStatus.SUCCEEDED, status_code, body, None

    def describe(self) -> dict[str, Any]:
        """The facts as plain data (``omnibatch providers --json``)."""
        return {
            "base_url": self.base_url,
            "api_key_env": self.api_key_env,
            "auth": f"{self.auth_header}: {self.auth_scheme} <key>".replace(":  ", ": "),
            "endpoints": list(self.endpoints),
            "completion_windows": list(self.completion_windows),
            "file_purposes": list(self.file_purposes),
            "pagination": self.pagination,
            "statuses": {raw: status.value for raw, status in self.statuses.items()},
        }


_Item = TypeVar("_Item", Batch, FileObject)


def _slice(items: list[_Item], cursor: str | None, limit: int | None) -> Page[_Item]:
    """A page of a list the service returns whole: the items after the one named by
    ``cursor``, at most ``limit`` of them, the last one's id as the next cursor."""
    start = 0
    if cursor is not None:
        ids = [item.id for item in items]
        start = ids.index(cursor) + 1 if cursor in ids else len(items)
    end = len(items) if limit is None else start + limit
    page = items[start:end]
    more = end < len(items) and bool(page)
    return Page[_Item](items=page, next_cursor=page[-1].id if more else None)


def _file_id(value: Any) -> tuple[str, ...]:
    # Azure answers "" where OpenAI answers null.
    return (value,) if isinstance(value, str) and value else ()


class OpenAICompatAdapter(ProviderAdapter):
    """An OpenAI-style ``/batches`` over ``/files`` API, configured by :attr:`facts`.

    Setting ``facts`` on a subclass fills in the adapter's class attributes (name, URLs,
    env vars, endpoints, limits, capabilities, status map). Override :meth:`default_query`
    for query parameters every request carries (Azure's ``api-version``).
    """

    facts: ClassVar[OpenAICompatFacts]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        facts = cls.__dict__.get("facts")
        if facts is None:
            return
        cls.name = facts.name
        cls.display_name = facts.display_name
        cls.default_base_url = facts.base_url
        cls.api_key_env = facts.api_key_env
        cls.base_url_env = facts.base_url_env
        cls.emulator_prefix = facts.emulator_prefix
        cls.status_map = dict(facts.statuses)
        cls.documented_statuses = frozenset(facts.statuses)
        cls.endpoints = frozenset(facts.endpoints)
        cls.completion_windows = facts.completion_windows
        cls.limits = facts.limits
        cls.capabilities = facts.capabilities

    # --- credentials --------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        if not self.api_key:
            return {}
        scheme = self.facts.auth_scheme
        return {self.facts.auth_header: f"{scheme} {self.api_key}" if scheme else self.api_key}

    def default_query(self) -> QueryParams:
        """Query parameters added to every request (none by default)."""
        return ()

    def _request(self, method: str, path: str, **kwargs: Any) -> HttpRequest:
        hint = self.facts.base_url_hint
        if hint and self.base_url.startswith(
            self.facts.base_url.removesuffix(self.facts.api_prefix)
        ):
            raise ConfigurationError(f"{self.name}: no base URL; set {hint} or base_url")
        params = [*self.default_query(), *kwargs.pop("params", ())]
        return HttpRequest(method, path, params=params, **kwargs)

    # --- translation --------------------------------------------------------------------

    def encode_request(self, request: BatchRequest) -> dict[str, Any]:
        return self.encode_line(request.custom_id, request.url, request.body)

    def encode_line(self, custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}

    # --- flows --------------------------------------------------------------------------

    def upload(self, part: InputPart) -> Flow[InputRef]:
        response = yield self._request(
            "POST",
            "/files",
            data={"purpose": "batch"},
            files=[FilePart("file", part.path.name, path=part.path)],
            idempotent=True,
            operation="upload batch input",
        )
        return InputRef(part=part, file_id=str(response.json()["id"]))

    def create_body(self, ref: InputRef, spec: CreateSpec) -> dict[str, Any]:
        """The JSON body of ``POST /batches``."""
        body: dict[str, Any] = {
            "completion_window": spec.completion_window,
            "endpoint": spec.endpoint,
            "input_file_id": ref.file_id,
        }
        if spec.metadata and self.facts.metadata:
            body["metadata"] = dict(spec.metadata)
        if "output_expires_after" in spec.options:
            body["output_expires_after"] = spec.options["output_expires_after"]
        return body

    def create(self, ref: InputRef, spec: CreateSpec) -> Flow[Batch]:
        body = self.create_body(ref, spec)
        response = yield self._request("POST", "/batches", json=body, operation="create batch")
        return self.parse_batch(response.json())

    def retrieve(self, batch_id: str) -> Flow[Batch]:
        response = yield self._request("GET", f"/batches/{batch_id}", operation="retrieve batch")
        return self.parse_batch(response.json())

    def list_batches(
        self, *, cursor: str | None, limit: int | None, filters: Mapping[str, Any]
    ) -> Flow[Page[Batch]]:
        paged = self.facts.pagination == "cursor"
        params = query(limit=limit, after=cursor) if paged else []
        response = yield self._request("GET", "/batches", params=params, operation="list batches")
        payload = response.json()
        items = [self.parse_batch(item) for item in payload.get("data", [])]
        if not paged:
            return _slice(items, cursor, limit)
        more = bool(payload.get("has_more")) and bool(items)
        # The SDK pages with the id of the last item (not last_id): do the same.
        return Page[Batch](items=items, next_cursor=items[-1].id if more else None)

    def cancel(self, batch_id: str) -> Flow[Batch]:
        response = yield self._request(
            "POST", f"/batches/{batch_id}/cancel", idempotent=True, operation="cancel batch"
        )
        return self.parse_batch(response.json())

    def result_sources(self, batch: Batch) -> Flow[list[ResultSource]]:
        yield from ()  # no I/O: the batch object names the files
        return file_sources(batch, self.download_file)

    def list_files(self, *, cursor: str | None, limit: int | None) -> Flow[Page[FileObject]]:
        paged = self.facts.pagination == "cursor"
        params = query(purpose="batch", limit=limit, after=cursor, order="desc") if paged else []
        response = yield self._request("GET", "/files", params=params, operation="list files")
        payload = response.json()
        items = [
            FileObject(
                id=str(item["id"]),
                provider=self.name,
                filename=item.get("filename"),
                bytes=item.get("bytes"),
                purpose=item.get("purpose"),
                created_at=to_datetime(item.get("created_at")),
                raw=dict(item),
            )
            for item in payload.get("data", [])
        ]
        if not paged:  # everything at once, in no promised order: newest first here
            items.sort(key=lambda f: f.created_at.timestamp() if f.created_at else 0, reverse=True)
            return _slice(items, cursor, limit)
        more = bool(payload.get("has_more")) and bool(items)
        return Page[FileObject](items=items, next_cursor=items[-1].id if more else None)

    def download_file(self, file_id: str) -> HttpRequest:
        return self._request(
            "GET",
            f"/files/{file_id}/content",
            headers={"Accept": "application/binary"},
            operation=f"download file {file_id}",
        )

    def delete_file(self, file_id: str) -> Flow[None]:
        yield self._request("DELETE", f"/files/{file_id}", operation=f"delete file {file_id}")

    # --- parsing ------------------------------------------------------------------------

    def parse_batch(self, raw: Mapping[str, Any]) -> Batch:
        counts = raw.get("request_counts") or {}
        errors = raw.get("errors") or {}
        error_items = errors.get("data") if isinstance(errors, Mapping) else errors
        usage = raw.get("usage")
        ended = (
            raw.get("completed_at")
            or raw.get("failed_at")
            or raw.get("expired_at")
            or raw.get("cancelled_at")
        )
        return Batch(
            id=str(raw["id"]),
            provider=self.name,
            status=self.normalize(raw.get("status")),
            provider_status=str(raw.get("status")),
            request_counts=RequestCounts(
                total=counts.get("total") or 0,
                succeeded=counts.get("completed") or 0,
                failed=counts.get("failed") or 0,
            ),
            created_at=to_datetime(raw.get("created_at")),
            started_at=to_datetime(raw.get("in_progress_at")),
            ended_at=to_datetime(ended),
            expires_at=to_datetime(raw.get("expires_at")),
            cancel_requested_at=to_datetime(raw.get("cancelling_at")),
            endpoint=raw.get("endpoint"),
            model=raw.get("model"),
            metadata={str(k): str(v) for k, v in (raw.get("metadata") or {}).items()},
            input_file_ids=_file_id(raw.get("input_file_id")),
            output_file_ids=_file_id(raw.get("output_file_id")),
            error_file_ids=_file_id(raw.get("error_file_id")),
            errors=tuple(
                BatchErrorDetail(
                    code=e.get("code"),
                    message=str(e.get("message") or e.get("code") or "error"),
                    line=e.get("line"),
                    param=e.get("param"),
                )
                for e in (error_items or [])
                if isinstance(e, Mapping)
            ),
            usage=Usage(
                input_tokens=usage.get("input_tokens"),
                output_tokens=usage.get("output_tokens"),
                total_tokens=usage.get("total_tokens"),
            )
            if isinstance(usage, Mapping)
            else None,
            raw=dict(raw),
        )

    def output_line(self, record: Mapping[str, Any], source: ResultSource) -> dict[str, Any]:
        # parse_result_line(...).to_output_line() without the models: the merge's hot path.
        return record_output_line(record, self.facts.read_line)

    def parse_result_line(self, record: Mapping[str, Any], source: ResultSource) -> BatchResult:
        return batch_result(self.facts.read_line(record), record, parse_usage)
