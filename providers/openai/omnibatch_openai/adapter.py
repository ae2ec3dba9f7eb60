"""OpenAI Batch API adapter (also the base of OpenAI-compatible providers).

Wire facts (providers.md §1): upload ``POST /files`` (multipart ``purpose=batch``), create
``POST /batches``, retrieve, list with ``limit``/``after``, cancel; results in an output file
(successes) and an error file (failures, incl. ``batch_expired`` / ``batch_cancelled`` lines).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from omnibatch.plugin import (
    Batch,
    BatchErrorDetail,
    BatchRequest,
    BatchResult,
    BatchStatus,
    Capabilities,
    CreateSpec,
    FileObject,
    FilePart,
    Flow,
    HttpRequest,
    InputPart,
    InputRef,
    Page,
    ProviderAdapter,
    ProviderLimits,
    RequestCounts,
    ResultSource,
    ResultStatus,
    Usage,
    lines,
    query,
    to_datetime,
)
from omnibatch.plugin.lines import parse_usage

__all__ = ["OpenAIAdapter", "parse_usage"]

OPENAI_STATUSES: dict[str, BatchStatus] = {
    "validating": BatchStatus.VALIDATING,
    "failed": BatchStatus.FAILED,
    "in_progress": BatchStatus.RUNNING,
    "finalizing": BatchStatus.FINALIZING,
    "completed": BatchStatus.SUCCEEDED,
    "expired": BatchStatus.EXPIRED,
    "cancelling": BatchStatus.CANCELLING,
    "cancelled": BatchStatus.CANCELLED,
}

# Per-request error codes that mean "never ran" rather than "failed".
_OUTCOME_BY_CODE = {
    "batch_expired": ResultStatus.EXPIRED,
    "batch_cancelled": ResultStatus.CANCELLED,
}


_SUCCEEDED = ResultStatus.SUCCEEDED  # a constant: quicker than the enum lookup, once per line


def _read(record: Mapping[str, Any]) -> lines.Line:
    """A result line by OpenAI's rules: its ``error`` comes first (``batch_expired`` and
    ``batch_cancelled`` mean the request never ran), a line without a response is malformed,
    and a response with a 4xx/5xx status is an errored request."""
    custom_id = record["custom_id"]
    if not isinstance(custom_id, str):
        raise TypeError(f"custom_id must be a string, got {custom_id!r}")
    response, body, status_code, error = lines.split(record)
    if error:
        code, message = lines.line_error(error)
        status = _OUTCOME_BY_CODE.get(str(code), ResultStatus.ERRORED)
        return custom_id, status, status_code, body, lines.error_dict(code, message)
    if not isinstance(response, Mapping):
        raise ValueError("line has neither response nor error")
    if status_code is not None and int(status_code) >= 400:
        failure = lines.error_dict(*lines.http_failure(body, status_code))
        return custom_id, ResultStatus.ERRORED, int(status_code), body, failure
    return custom_id, _SUCCEEDED, status_code, body, None


def _file_id(value: Any) -> tuple[str, ...]:
    # Azure answers "" where OpenAI answers null.
    return (value,) if isinstance(value, str) and value else ()


class OpenAIAdapter(ProviderAdapter):
    """OpenAI's ``/v1/batches`` over ``/v1/files``."""

    name: ClassVar[str] = "openai"
    display_name: ClassVar[str] = "OpenAI"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    base_url_env: ClassVar[str | None] = "OPENAI_BASE_URL"
    emulator_prefix: ClassVar[str] = "/openai/v1"
    status_map: ClassVar[Mapping[str, BatchStatus]] = OPENAI_STATUSES
    documented_statuses: ClassVar[frozenset[str]] = frozenset(OPENAI_STATUSES)
    endpoints: ClassVar[frozenset[str]] = frozenset(
        {
            "/v1/responses",
            "/v1/chat/completions",
            "/v1/embeddings",
            "/v1/completions",
            "/v1/moderations",
            "/v1/images/generations",
            "/v1/images/edits",
            "/v1/videos",
        }
    )
    limits: ClassVar[ProviderLimits] = ProviderLimits(
        max_requests=50_000,
        max_bytes=200 * 1024 * 1024,
        max_metadata_pairs=16,
        max_metadata_key_length=64,
        max_metadata_value_length=512,
    )
    capabilities: ClassVar[Capabilities] = Capabilities()

    # --- translation ------------------------------------------------------------------------

    def encode_request(self, request: BatchRequest) -> dict[str, Any]:
        return {
            "custom_id": request.custom_id,
            "method": "POST",
            "url": request.url,
            "body": request.body,
        }

    def encode_line(self, custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}

    # --- flows ------------------------------------------------------------------------------

    def upload(self, part: InputPart) -> Flow[InputRef]:
        response = yield HttpRequest(
            "POST",
            "/files",
            data={"purpose": "batch"},
            files=[FilePart("file", part.path.name, path=part.path)],
            idempotent=True,
            operation="upload batch input",
        )
        return InputRef(part=part, file_id=str(response.json()["id"]))

    def create(self, ref: InputRef, spec: CreateSpec) -> Flow[Batch]:
        body: dict[str, Any] = {
            "completion_window": spec.completion_window,
            "endpoint": spec.endpoint,
            "input_file_id": ref.file_id,
        }
        if spec.metadata:
            body["metadata"] = dict(spec.metadata)
        if "output_expires_after" in spec.options:
            body["output_expires_after"] = spec.options["output_expires_after"]
        response = yield HttpRequest("POST", "/batches", json=body, operation="create batch")
        return self.parse_batch(response.json())

    def retrieve(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest("GET", f"/batches/{batch_id}", operation="retrieve batch")
        return self.parse_batch(response.json())

    def list_batches(
        self, *, cursor: str | None, limit: int | None, filters: Mapping[str, Any]
    ) -> Flow[Page[Batch]]:
        response = yield HttpRequest(
            "GET", "/batches", params=query(limit=limit, after=cursor), operation="list batches"
        )
        payload = response.json()
        items = [self.parse_batch(item) for item in payload.get("data", [])]
        more = bool(payload.get("has_more")) and bool(items)
        # The SDK pages with the id of the last item (not last_id): do the same.
        return Page[Batch](items=items, next_cursor=items[-1].id if more else None)

    def cancel(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest(
            "POST", f"/batches/{batch_id}/cancel", idempotent=True, operation="cancel batch"
        )
        return self.parse_batch(response.json())

    def result_sources(self, batch: Batch) -> Flow[list[ResultSource]]:
        yield from ()  # no I/O: the batch object names the files
        return lines.file_sources(batch, self.download_file)

    def list_files(self, *, cursor: str | None, limit: int | None) -> Flow[Page[FileObject]]:
        response = yield HttpRequest(
            "GET",
            "/files",
            params=query(purpose="batch", limit=limit, after=cursor, order="desc"),
            operation="list files",
        )
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
        more = bool(payload.get("has_more")) and bool(items)
        return Page[FileObject](items=items, next_cursor=items[-1].id if more else None)

    def download_file(self, file_id: str) -> HttpRequest:
        return HttpRequest(
            "GET",
            f"/files/{file_id}/content",
            headers={"Accept": "application/binary"},
            operation=f"download file {file_id}",
        )

    def delete_file(self, file_id: str) -> Flow[None]:
        yield HttpRequest("DELETE", f"/files/{file_id}", operation=f"delete file {file_id}")

    # --- parsing ----------------------------------------------------------------------------

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
        return lines.record_output_line(record, _read)

    def parse_result_line(self, record: Mapping[str, Any], source: ResultSource) -> BatchResult:
        return lines.batch_result(_read(record), record, parse_usage)
