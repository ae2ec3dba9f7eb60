"""Mistral Batch API adapter.

Wire facts (providers.md §3): upload ``POST /v1/files`` (multipart visibility, purpose, file),
create ``POST /v1/batch/jobs`` with the model, endpoint and timeout at job level, page-number
listing (``page``/``page_size``/``total``), cancel, delete; lines ``{"custom_id", "body"}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
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

__all__ = ["MistralAdapter"]

MISTRAL_STATUSES: dict[str, BatchStatus] = {
    "QUEUED": BatchStatus.QUEUED,
    "RUNNING": BatchStatus.RUNNING,
    "SUCCESS": BatchStatus.SUCCEEDED,
    "FAILED": BatchStatus.FAILED,
    "TIMEOUT_EXCEEDED": BatchStatus.EXPIRED,
    "CANCELLATION_REQUESTED": BatchStatus.CANCELLING,
    "CANCELLED": BatchStatus.CANCELLED,
}

_WINDOW = re.compile(r"^(\d+)\s*([hd])$")


def timeout_hours(spec: CreateSpec) -> int:
    """Mistral's ``timeout_hours`` from an explicit option or the completion window (24h, 2d)."""
    explicit = spec.options.get("timeout_hours")
    if explicit is not None:
        return int(explicit)
    match = _WINDOW.match(spec.completion_window.strip().lower())
    if not match:
        return 24
    value = int(match.group(1))
    return value * 24 if match.group(2) == "d" else value


def _outcome(code: str | None, message: str) -> ResultStatus:
    text = f"{code or ''} {message}".lower()
    if "expired" in text or "timeout_exceeded" in text:
        return ResultStatus.EXPIRED
    if "cancel" in text:
        return ResultStatus.CANCELLED
    return ResultStatus.ERRORED


_SUCCEEDED = ResultStatus.SUCCEEDED  # a constant: quicker than the enum lookup, once per line


def _read(record: Mapping[str, Any]) -> lines.Line:
    """A result line by Mistral's rules: a failure is its ``error`` (an object or a plain
    string: the SDK's tests show both) or else a response with a 4xx/5xx status, judged by
    :func:`_outcome`; codes are strings; a line without either is a success without a body."""
    custom_id = record.get("custom_id")
    if not isinstance(custom_id, str):
        raise TypeError(f"custom_id must be a string, got {custom_id!r}")
    _, body, raw_status, error = lines.split(record)
    status_code = int(raw_status) if raw_status is not None else None
    if not error and (status_code is None or status_code < 400):
        return custom_id, _SUCCEEDED, status_code, body, None
    if error or isinstance(error, Mapping):  # an empty error object still names the failure
        code, message = lines.line_error(error)
    else:
        code, message, _ = lines.http_failure(body, raw_status, body_message=True)
    code = str(code) if code is not None else None
    return custom_id, _outcome(code, message), status_code, body, lines.error_dict(code, message)


def _usage(body: Any) -> Usage | None:
    return lines.parse_usage(body, input_names=False)


def _timestamp(value: Any) -> Any:
    """``created_after`` as the SDK sends it: ISO 8601, ``Z`` for UTC."""
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value


class MistralAdapter(ProviderAdapter):
    """Mistral's ``/v1/batch/jobs`` over ``/v1/files``."""

    name: ClassVar[str] = "mistral"
    display_name: ClassVar[str] = "Mistral AI"
    default_base_url: ClassVar[str] = "https://api.mistral.ai"
    api_key_env: ClassVar[str | None] = "MISTRAL_API_KEY"
    base_url_env: ClassVar[str | None] = "MISTRAL_BASE_URL"
    emulator_prefix: ClassVar[str] = "/mistral"
    status_map: ClassVar[Mapping[str, BatchStatus]] = MISTRAL_STATUSES
    documented_statuses: ClassVar[frozenset[str]] = frozenset(MISTRAL_STATUSES)
    endpoints: ClassVar[frozenset[str]] = frozenset(
        {
            "/v1/chat/completions",
            "/v1/embeddings",
            "/v1/fim/completions",
            "/v1/moderations",
            "/v1/chat/moderations",
            "/v1/ocr",
            "/v1/classifications",
            "/v1/chat/classifications",
            "/v1/conversations",
            "/v1/audio/transcriptions",
        }
    )
    limits: ClassVar[ProviderLimits] = ProviderLimits(
        max_requests=1_000_000,
        max_bytes=512 * 1024 * 1024,
        max_metadata_key_length=32,
        max_metadata_value_length=512,
    )
    capabilities: ClassVar[Capabilities] = Capabilities(delete_batch=True, model_at_job_level=True)

    def encode_request(self, request: BatchRequest) -> dict[str, Any]:
        # The model travels at job level; Mistral lines carry only custom_id and body.
        body = {k: v for k, v in request.body.items() if k != "model"}
        return {"custom_id": request.custom_id, "body": body}

    def encode_line(self, custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        if "model" in body:
            body = body.copy()
            del body["model"]
        return {"custom_id": custom_id, "body": body}

    def upload(self, part: InputPart) -> Flow[InputRef]:
        response = yield HttpRequest(
            "POST",
            "/v1/files",
            data={"visibility": "workspace", "purpose": "batch"},
            files=[FilePart("file", part.path.name, path=part.path)],
            idempotent=True,
            operation="upload batch input",
        )
        return InputRef(part=part, file_id=str(response.json()["id"]))

    def create(self, ref: InputRef, spec: CreateSpec) -> Flow[Batch]:
        model = spec.model or (ref.part.model if ref.part else None)
        body: dict[str, Any] = {"endpoint": spec.endpoint, "input_files": [ref.file_id]}
        if model:
            body["model"] = model
        if spec.metadata:
            body["metadata"] = dict(spec.metadata)
        body["timeout_hours"] = timeout_hours(spec)
        response = yield HttpRequest("POST", "/v1/batch/jobs", json=body, operation="create batch")
        return self.parse_batch(response.json())

    def retrieve(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest(
            "GET", f"/v1/batch/jobs/{batch_id}", operation="retrieve batch"
        )
        return self.parse_batch(response.json())

    def list_batches(
        self, *, cursor: str | None, limit: int | None, filters: Mapping[str, Any]
    ) -> Flow[Page[Batch]]:
        page = int(cursor or 0)
        size = limit or 100
        metadata = filters.get("metadata") or {}
        status = filters.get("status")
        # The official SDK's order and encoding (OpenAPI style=form, explode=true): metadata
        # goes as its own keys, statuses repeat, the defaults are always sent.
        params = query(
            ("page", page),
            ("page_size", size),
            ("model", filters.get("model")),
            *metadata.items(),
            ("created_after", _timestamp(filters.get("created_after"))),
            ("created_by_me", bool(filters.get("created_by_me", False))),
            ("status", [status] if isinstance(status, str) else status),
            ("order_by", filters.get("order_by", "-created")),
        )
        response = yield HttpRequest(
            "GET", "/v1/batch/jobs", params=params, operation="list batches"
        )
        payload = response.json()
        items = [self.parse_batch(item) for item in payload.get("data", [])]
        total = int(payload.get("total") or 0)
        more = bool(items) and (page + 1) * size < total
        return Page[Batch](items=items, next_cursor=str(page + 1) if more else None)

    def cancel(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest(
            "POST", f"/v1/batch/jobs/{batch_id}/cancel", idempotent=True, operation="cancel batch"
        )
        return self.parse_batch(response.json())

    def result_sources(self, batch: Batch) -> Flow[list[ResultSource]]:
        yield from ()  # no I/O: the batch object names the files
        sources = lines.file_sources(batch, self.download_file)
        outputs = batch.raw.get("outputs")
        if not sources and isinstance(outputs, list) and outputs:
            sources.append(ResultSource("output", records=tuple(outputs), name="inline outputs"))
        return sources

    def list_files(self, *, cursor: str | None, limit: int | None) -> Flow[Page[FileObject]]:
        page = int(cursor or 0)
        size = limit or 100
        response = yield HttpRequest(
            "GET",
            "/v1/files",
            params=query(page=page, page_size=size, purpose="batch"),
            operation="list files",
        )
        payload = response.json()
        items = [
            FileObject(
                id=str(item["id"]),
                provider=self.name,
                filename=item.get("filename"),
                bytes=item.get("bytes") or item.get("size_bytes"),
                purpose=item.get("purpose"),
                created_at=to_datetime(item.get("created_at")),
                raw=dict(item),
            )
            for item in payload.get("data", [])
        ]
        total = payload.get("total")
        more = bool(items) and (
            (page + 1) * size < int(total) if total is not None else len(items) == size
        )
        return Page[FileObject](items=items, next_cursor=str(page + 1) if more else None)

    def download_file(self, file_id: str) -> HttpRequest:
        return HttpRequest(
            "GET",
            f"/v1/files/{file_id}/content",
            headers={"Accept": "application/octet-stream"},
            operation=f"download file {file_id}",
        )

    def delete_file(self, file_id: str) -> Flow[None]:
        yield HttpRequest("DELETE", f"/v1/files/{file_id}", operation=f"delete file {file_id}")

    def delete_batch(self, batch_id: str) -> Flow[None]:
        yield HttpRequest("DELETE", f"/v1/batch/jobs/{batch_id}", operation="delete batch")

    def parse_batch(self, raw: Mapping[str, Any]) -> Batch:
        output, error = raw.get("output_file"), raw.get("error_file")
        return Batch(
            id=str(raw["id"]),
            provider=self.name,
            status=self.normalize(raw.get("status")),
            provider_status=str(raw.get("status")),
            request_counts=RequestCounts(
                total=raw.get("total_requests") or 0,
                succeeded=raw.get("succeeded_requests") or 0,
                failed=raw.get("failed_requests") or 0,
            ),
            created_at=to_datetime(raw.get("created_at")),
            started_at=to_datetime(raw.get("started_at")),
            ended_at=to_datetime(raw.get("completed_at")),
            endpoint=raw.get("endpoint"),
            model=raw.get("model"),
            metadata={str(k): str(v) for k, v in (raw.get("metadata") or {}).items()},
            input_file_ids=tuple(str(f) for f in raw.get("input_files") or ()),
            output_file_ids=(str(output),) if output else (),
            error_file_ids=(str(error),) if error else (),
            errors=tuple(
                BatchErrorDetail(message=str(e.get("message") or "error"))
                for e in raw.get("errors") or ()
                if isinstance(e, Mapping)
            ),
            raw=dict(raw),
        )

    def output_line(self, record: Mapping[str, Any], source: ResultSource) -> dict[str, Any]:
        # parse_result_line(...).to_output_line() without the models: the merge's hot path.
        return lines.record_output_line(record, _read)

    def parse_result_line(self, record: Mapping[str, Any], source: ResultSource) -> BatchResult:
        return lines.batch_result(_read(record), record, _usage)
