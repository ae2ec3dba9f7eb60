"""Anthropic Message Batches adapter.

Wire facts (providers.md §4, sdk-requests/anthropic.json): requests go inline
(``POST /v1/messages/batches {"requests": [{"custom_id", "params"}]}``, no file upload),
``processing_status`` is ``in_progress | canceling | ended``, the request counts other than
``processing`` stay 0 until the batch ends, and results are one JSONL stream at
``results_url`` where every line carries its own ``result.type``
(``succeeded | errored | canceled | expired``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from omnibatch.plugin import (
    Batch,
    BatchRequest,
    BatchResult,
    BatchStateError,
    BatchStatus,
    Capabilities,
    ConfigurationError,
    CreateSpec,
    ErrorInfo,
    Flow,
    HttpRequest,
    HttpResponse,
    InputPart,
    InputRef,
    Page,
    ProviderAdapter,
    ProviderLimits,
    ProviderResponseError,
    RequestCounts,
    RequestIssue,
    ResultError,
    ResultSource,
    ResultStatus,
    Usage,
    invalid_request,
    json_object,
    messages_answer,
    no_io,
    query,
    request_issues,
    to_datetime,
)
from omnibatch_anthropic.translate import chat_to_params

__all__ = [
    "ANTHROPIC_STATUSES",
    "API_VERSION",
    "DOCUMENTED_API_VERSION",
    "AnthropicAdapter",
    "resolve_status",
]

# The base case of every status; ``ended`` is refined by ``resolve_status``.
ANTHROPIC_STATUSES: dict[str, BatchStatus] = {
    "in_progress": BatchStatus.RUNNING,
    "canceling": BatchStatus.CANCELLING,
    "ended": BatchStatus.SUCCEEDED,
}

API_VERSION = "2026-10-21"
"""The ``anthropic-version`` the official SDK (anthropic 2.12.0) sends."""
DOCUMENTED_API_VERSION = "2023-06-01"
"""The version in Anthropic's curl examples (used with ``auth_header = "x-api-key"``)."""

CHAT = "/v1/chat/completions"
NATIVE = "/v1/messages"
BATCHES = "/v1/messages/batches"
MAX_LIST_LIMIT = 1000

# HTTP status Anthropic uses for each error type (for ``BatchResult.status_code``).
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def resolve_status(raw: Mapping[str, Any], base: BatchStatus) -> BatchStatus:
    """Turn ``ended`` into succeeded, expired or cancelled (providers.md §12): a cancel that
    was initiated wins; otherwise expired requests mean the 24 h window ran out. A batch whose
    every request errored stays ``succeeded``: its counts (and ``is_partial``) tell the rest."""
    if raw.get("processing_status") != "ended":
        return base
    if raw.get("cancel_initiated_at"):
        return BatchStatus.CANCELLED
    counts = raw.get("request_counts") or {}
    if int(counts.get("expired") or 0) > 0:
        return BatchStatus.EXPIRED
    return BatchStatus.SUCCEEDED


def _usage(message: Mapping[str, Any]) -> Usage | None:
    usage = message.get("usage")
    if not isinstance(usage, Mapping):
        return None
    # Anthropic's input_tokens excludes cache reads/writes; ours counts every prompt token,
    # as OpenAI's prompt_tokens does.
    prompt = sum(
        int(usage.get(k) or 0)
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    output = int(usage.get("output_tokens") or 0)
    return Usage(input_tokens=prompt, output_tokens=output, total_tokens=prompt + output)


class AnthropicAdapter(ProviderAdapter):
    """Anthropic's ``/v1/messages/batches`` (inline requests, one results stream).

    Options: ``max_tokens`` (default for requests without one), ``auth_header``
    (``"bearer"``, the SDK's choice and the default, or ``"x-api-key"``, the documented one),
    ``anthropic_version``.
    """

    name: ClassVar[str] = "anthropic"
    display_name: ClassVar[str] = "Anthropic"
    default_base_url: ClassVar[str] = "https://api.anthropic.com"
    api_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"
    base_url_env: ClassVar[str | None] = "ANTHROPIC_BASE_URL"
    emulator_prefix: ClassVar[str] = "/anthropic"
    status_map: ClassVar[Mapping[str, BatchStatus]] = ANTHROPIC_STATUSES
    documented_statuses: ClassVar[frozenset[str]] = frozenset(ANTHROPIC_STATUSES)
    endpoints: ClassVar[frozenset[str]] = frozenset({CHAT, NATIVE})
    limits: ClassVar[ProviderLimits] = ProviderLimits(
        max_requests=100_000,
        max_bytes=256 * 1024 * 1024,
        custom_id_pattern=r"^[a-zA-Z0-9_-]{1,64}$",
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        file_upload=False,
        metadata=False,
        delete_files=False,
        delete_batch=True,
        single_model=False,
    )

    # --- credentials ------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        if not self._api_key:
            return {}
        if str(self.options.get("auth_header", "bearer")).lower() == "x-api-key":
            return {"x-api-key": self._api_key}
        return {"Authorization": f"Bearer {self._api_key}"}

    def default_headers(self) -> dict[str, str]:
        return {"anthropic-version": str(self.options.get("anthropic_version", API_VERSION))}

    # --- translation ------------------------------------------------------------------------

    def _default_max_tokens(self) -> int | None:
        value = self.options.get("max_tokens")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(
                f"anthropic option max_tokens must be a positive integer (got {value!r})",
                provider=self.name,
            )
        return value

    def check_request(self, request: BatchRequest) -> list[RequestIssue]:
        default = self._default_max_tokens()
        if request.url == NATIVE:
            issues = []
            if request.body.get("stream"):
                issues.append(
                    RequestIssue(
                        "body.stream", "streaming is not available in batches", 'remove "stream"'
                    )
                )
            if "max_tokens" not in request.body and default is None:
                issues.append(
                    RequestIssue(
                        "body.max_tokens",
                        "Anthropic requires max_tokens",
                        'add "max_tokens": N to the body',
                    )
                )
            return issues
        params, problems = chat_to_params(request.body, default)
        if not problems:
            # The pipeline encodes the same body next: translate it once, not twice.
            self._last = (request.body, params)
        return request_issues(problems)

    def encode_request(self, request: BatchRequest) -> dict[str, Any]:
        return self.encode_line(request.custom_id, request.url, request.body)

    def encode_line(self, custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        default = self._default_max_tokens()
        if url == NATIVE:
            params = dict(body)
            if "max_tokens" not in params and default is not None:
                params["max_tokens"] = default
            return {"custom_id": custom_id, "params": params}
        last = getattr(self, "_last", None)
        if last is not None and last[0] is body:
            return {"custom_id": custom_id, "params": last[1]}
        params, problems = chat_to_params(body, default)
        if problems:  # check_request reports these first; reached only when it is skipped
            raise invalid_request(problems, custom_id, self.name)
        return {"custom_id": custom_id, "params": params}

    # --- flows ------------------------------------------------------------------------------

    def upload(self, part: InputPart) -> Flow[InputRef]:
        # Anthropic has no file upload: create sends the part's lines inline.
        return no_io(InputRef(part=part))

    def create(self, ref: InputRef, spec: CreateSpec) -> Flow[Batch]:
        if ref.part is None:
            raise ConfigurationError(
                "anthropic takes its requests inline and has no files: create the batch from a "
                "prepared input (submit(), or create(upload(prepare(...)))), not a file id",
                provider=self.name,
            )
        # The part's lines are already {"custom_id", "params"} objects: splice them into the
        # body without parsing them again (a part may hold up to 256 MB).
        with open(ref.part.path, "rb") as fh:
            items = [line.rstrip(b"\r\n") for line in fh if line.strip()]
        body = b'{"requests":[' + b",".join(items) + b"]}"
        response = yield HttpRequest(
            "POST",
            BATCHES,
            content=body,
            headers={"Content-Type": "application/json"},
            operation="create batch",
        )
        return self.parse_batch(json_object(response, self.name))

    def retrieve(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest("GET", f"{BATCHES}/{batch_id}", operation="retrieve batch")
        return self.parse_batch(json_object(response, self.name))

    def list_batches(
        self, *, cursor: str | None, limit: int | None, filters: Mapping[str, Any]
    ) -> Flow[Page[Batch]]:
        size = min(limit, MAX_LIST_LIMIT) if limit else None
        response = yield HttpRequest(
            "GET", BATCHES, params=query(limit=size, after_id=cursor), operation="list batches"
        )
        payload = json_object(response, self.name)
        items = [self.parse_batch(item) for item in payload.get("data") or []]
        more = bool(payload.get("has_more")) and bool(items)
        # Like the SDK: the next page starts after the response's last_id.
        last = payload.get("last_id") or (items[-1].id if items else None)
        return Page[Batch](items=items, next_cursor=str(last) if more and last else None)

    def cancel(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest(
            "POST", f"{BATCHES}/{batch_id}/cancel", idempotent=True, operation="cancel batch"
        )
        return self.parse_batch(json_object(response, self.name))

    def delete_batch(self, batch_id: str) -> Flow[None]:
        yield HttpRequest("DELETE", f"{BATCHES}/{batch_id}", operation="delete batch")

    def result_sources(self, batch: Batch) -> Flow[list[ResultSource]]:
        yield from ()  # no I/O: the batch object names the results URL
        url = batch.raw.get("results_url")
        if not url:
            archived = batch.raw.get("archived_at")
            if archived:
                raise BatchStateError(
                    f"batch {batch.id} was archived at {archived}; its results are no longer "
                    "available (Anthropic keeps them 29 days)",
                    provider=self.name,
                )
            raise ProviderResponseError(
                f"batch {batch.id} is {batch.provider_status} but has no results_url",
                provider=self.name,
            )
        # The docs say to use results_url as given (it is absolute), never to build it.
        download = HttpRequest(
            "GET",
            str(url),
            headers={"Accept": "application/binary"},
            operation=f"download results of {batch.id}",
        )
        return [ResultSource("results", download=download, name=f"results of {batch.id}")]

    # --- parsing ----------------------------------------------------------------------------

    def parse_batch(self, raw: Mapping[str, Any]) -> Batch:
        counts = raw.get("request_counts") or {}
        numbers = {
            k: int(counts.get(k) or 0)
            for k in ("processing", "succeeded", "errored", "canceled", "expired")
        }
        raw_status = raw.get("processing_status")
        if not isinstance(raw.get("id"), str):
            raise ProviderResponseError(
                f"a message batch without an id: {dict(raw)!r:.200}", provider=self.name
            )
        return Batch(
            id=raw["id"],
            provider=self.name,
            status=resolve_status(raw, self.normalize(raw_status)),
            provider_status=str(raw_status),
            request_counts=RequestCounts(
                total=sum(numbers.values()),
                succeeded=numbers["succeeded"],
                failed=numbers["errored"],
                cancelled=numbers["canceled"],
                expired=numbers["expired"],
            ),
            created_at=to_datetime(raw.get("created_at")),
            ended_at=to_datetime(raw.get("ended_at")),
            expires_at=to_datetime(raw.get("expires_at")),
            cancel_requested_at=to_datetime(raw.get("cancel_initiated_at")),
            raw=dict(raw),
        )

    def read_answer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        # A succeeded result's body is an Anthropic ``message``.
        return messages_answer(body)

    def parse_result_line(self, record: Mapping[str, Any], source: ResultSource) -> BatchResult:
        custom_id = record["custom_id"]
        if not isinstance(custom_id, str):
            raise TypeError(f"custom_id must be a string, got {custom_id!r}")
        result = record["result"]
        if not isinstance(result, Mapping):
            raise TypeError("result must be an object")
        kind = result.get("type")
        if kind == "succeeded":
            message = result.get("message")
            if not isinstance(message, dict):
                raise TypeError("a succeeded result needs its message")
            return BatchResult(
                custom_id=custom_id,
                status=ResultStatus.SUCCEEDED,
                status_code=200,
                response=message,
                usage=_usage(message),
                raw=dict(record),
            )
        if kind == "errored":
            outer = result.get("error")
            inner = outer.get("error") if isinstance(outer, Mapping) else None
            detail = inner if isinstance(inner, Mapping) else outer
            detail = detail if isinstance(detail, Mapping) else {}
            error_type = detail.get("type")
            return BatchResult(
                custom_id=custom_id,
                status=ResultStatus.ERRORED,
                status_code=_ERROR_STATUS.get(str(error_type)),
                error=ResultError(
                    code=str(error_type) if error_type else None,
                    message=str(detail.get("message") or error_type or "error"),
                    type=str(error_type) if error_type else None,
                ),
                raw=dict(record),
            )
        if kind == "canceled":
            return BatchResult(
                custom_id=custom_id,
                status=ResultStatus.CANCELLED,
                error=ResultError(
                    code="canceled", message="the batch was cancelled before this request ran"
                ),
                raw=dict(record),
            )
        if kind == "expired":
            return BatchResult(
                custom_id=custom_id,
                status=ResultStatus.EXPIRED,
                error=ResultError(
                    code="expired",
                    message="the batch's 24 hour window ended before this request ran",
                ),
                raw=dict(record),
            )
        raise ValueError(
            f"unknown result type {kind!r} (expected succeeded, errored, canceled or expired)"
        )

    def error_info(self, response: HttpResponse) -> ErrorInfo:
        info = super().error_info(response)
        if info.request_id is None:
            try:
                body = response.json()
            except ValueError:
                return info
            if isinstance(body, Mapping) and isinstance(body.get("request_id"), str):
                return ErrorInfo(info.message, info.code, body["request_id"])
        return info
