"""Together AI Batch API adapter.

Wire facts (providers.md §7, ``together`` 3.1.1): a three-step upload (``POST /v1/files``
answers 302 with a pre-signed ``Location`` and ``X-Together-File-Id``, the bytes go there by
``PUT``, then ``POST /v1/files/{id}/preprocess``), purpose ``batch-api``; ``POST /v1/batches``
answers 201 ``{"job": BatchJob, "warning"?}``; ``GET /v1/batches`` is a bare JSON array;
a job reports ``progress`` (0-100) but no request counts, so the counts of an ended job are
read from its result files; statuses have no cancelling state.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
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
    Flow,
    HttpRequest,
    InputPart,
    InputRef,
    Page,
    ProviderAdapter,
    ProviderLimits,
    ProviderResponseError,
    RequestCounts,
    ResultSource,
    ResultStatus,
    Usage,
    to_datetime,
)
from omnibatch.plugin import lines as openai_lines

__all__ = ["TOGETHER_STATUSES", "TogetherAdapter", "multipart_fields"]

log = logging.getLogger(__name__)

TOGETHER_STATUSES: dict[str, BatchStatus] = {
    "VALIDATING": BatchStatus.VALIDATING,
    "IN_PROGRESS": BatchStatus.RUNNING,
    "COMPLETED": BatchStatus.SUCCEEDED,
    "FAILED": BatchStatus.FAILED,
    "EXPIRED": BatchStatus.EXPIRED,
    "CANCELLED": BatchStatus.CANCELLED,
}

PURPOSE = "batch-api"
_REFUSED = frozenset({"FAILED", "INVALID_FORMAT"})

# Error codes of result lines that mean the request never ran.
_OUTCOME_BY_CODE = {
    "batch_expired": ResultStatus.EXPIRED,
    "expired": ResultStatus.EXPIRED,
    "batch_cancelled": ResultStatus.CANCELLED,
    "cancelled": ResultStatus.CANCELLED,
}
_SUCCEEDED = ResultStatus.SUCCEEDED


def multipart_fields(fields: Mapping[str, str], boundary: str) -> bytes:
    """A ``multipart/form-data`` body of plain text fields (no file part): the form the
    official SDK sends to ``POST /v1/files``, which a URL-encoded form would not match."""
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _count_lines(path: Path | None) -> int:
    """Non-blank lines of a downloaded result file, read in chunks (memory stays bounded)."""
    if path is None:
        return 0
    count = 0
    tail = b""
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            count += sum(1 for line in lines if line.strip())
    return count + (1 if tail.strip() else 0)


def _read(record: Mapping[str, Any]) -> openai_lines.Line:
    """A result line by Together's rules: the error file's lines carry ``error`` (an object
    with ``message`` and ``code``), the output file's a ``response`` whose 4xx/5xx status
    also means an errored request."""
    custom_id = record["custom_id"]
    if not isinstance(custom_id, str):
        raise TypeError(f"custom_id must be a string, got {custom_id!r}")
    response, body, status_code, error = openai_lines.split(record)
    if error:
        code, message = openai_lines.line_error(error)
        status = _OUTCOME_BY_CODE.get(str(code), ResultStatus.ERRORED)
        return custom_id, status, status_code, body, openai_lines.error_dict(code, message)
    if not isinstance(response, Mapping):
        raise ValueError("line has neither response nor error")
    if status_code is not None and int(status_code) >= 400:
        failure = openai_lines.error_dict(*openai_lines.http_failure(body, status_code))
        return custom_id, ResultStatus.ERRORED, int(status_code), body, failure
    return custom_id, _SUCCEEDED, status_code, body, None


def _usage(body: Any) -> Usage | None:
    return openai_lines.parse_usage(body)


class TogetherAdapter(ProviderAdapter):
    """Together's ``/v1/batches`` over ``/v1/files`` (purpose ``batch-api``)."""

    name: ClassVar[str] = "together"
    display_name: ClassVar[str] = "Together AI"
    default_base_url: ClassVar[str] = "https://api.together.ai"
    api_key_env: ClassVar[str | None] = "TOGETHER_API_KEY"
    base_url_env: ClassVar[str | None] = "TOGETHER_BASE_URL"
    emulator_prefix: ClassVar[str] = "/together"
    status_map: ClassVar[Mapping[str, BatchStatus]] = TOGETHER_STATUSES
    documented_statuses: ClassVar[frozenset[str]] = frozenset(TOGETHER_STATUSES)
    endpoints: ClassVar[frozenset[str]] = frozenset(
        {"/v1/chat/completions", "/v1/audio/transcriptions", "/v1/audio/translations"}
    )
    limits: ClassVar[ProviderLimits] = ProviderLimits(
        max_requests=50_000,
        max_bytes=100 * 1024 * 1024,
        custom_id_pattern=r"^.{1,64}$",
    )
    # No user metadata on a Together job: the idempotency key rides in nothing, but every
    # upload gets a file id of its own, which the job echoes (input_file_id).
    capabilities: ClassVar[Capabilities] = Capabilities(
        metadata=False, reconcile_by_input_file=True
    )

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(api_key=api_key, base_url=base_url, options=options)
        # Counts derived from the result files, once per ended job.
        self._counts: dict[str, RequestCounts] = {}

    # --- translation ------------------------------------------------------------------------

    def encode_request(self, request: BatchRequest) -> dict[str, Any]:
        # Together's lines are {custom_id, body}; the endpoint is given once, at job level.
        return {"custom_id": request.custom_id, "body": dict(request.body)}

    def encode_line(self, custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"custom_id": custom_id, "body": body}

    # --- the lifecycle ------------------------------------------------------------------------

    def upload(self, part: InputPart) -> Flow[InputRef]:
        checksum = _sha256(part.path)
        boundary = "omnibatch-" + checksum[:32]
        fields = {
            "purpose": PURPOSE,
            "file_name": part.path.name,
            "file_type": "jsonl",
            "checksum": checksum,
        }
        response = yield HttpRequest(
            "POST",
            "/v1/files",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            content=multipart_fields(fields, boundary),
            ok_statuses=frozenset({302, 409}),
            # A lost answer leaves at most an unused file record; the checksum makes the
            # service answer 409 with the existing file's id on a resend.
            idempotent=True,
            operation="upload batch input (request upload URL)",
        )
        if response.status_code == 409:
            existing = response.json().get("file_id")
            if not existing:
                raise ProviderResponseError(
                    "Together answered 409 to an upload without naming the existing file",
                    provider=self.name,
                )
            log.warning(
                "together: the service already holds this content as file %s; it is reused",
                existing,
            )
            return InputRef(part=part, file_id=str(existing))
        location = response.headers.get("location")
        file_id = response.headers.get("x-together-file-id")
        if response.status_code != 302 or not location or not file_id:
            raise ProviderResponseError(
                f"Together's upload answer (HTTP {response.status_code}) lacks the Location or "
                "X-Together-File-Id header",
                provider=self.name,
            )
        yield HttpRequest(
            "PUT",
            location,
            content_path=part.path,
            idempotent=True,
            operation="upload batch input (file bytes)",
        )
        processed = yield HttpRequest(
            "POST",
            f"/v1/files/{file_id}/preprocess",
            idempotent=True,
            operation="upload batch input (preprocess)",
        )
        answer = processed.json()
        if isinstance(answer, Mapping) and answer.get("processing_status") in _REFUSED:
            report = answer.get("validation_report") or {}
            reason = report.get("error") if isinstance(report, Mapping) else None
            raise ProviderResponseError(
                f"Together refused input file {file_id} ({answer['processing_status']})"
                + (f": {reason}" if reason else ""),
                provider=self.name,
            )
        return InputRef(part=part, file_id=file_id)

    def create(self, ref: InputRef, spec: CreateSpec) -> Flow[Batch]:
        body: dict[str, Any] = {"endpoint": spec.endpoint, "input_file_id": ref.file_id}
        if spec.completion_window:
            body["completion_window"] = spec.completion_window
        model = spec.model or (ref.part.model if ref.part else None)
        if model:
            body["model_id"] = model
        priority = spec.options.get("priority")
        if priority is not None:
            body["priority"] = int(priority)
        response = yield HttpRequest("POST", "/v1/batches", json=body, operation="create batch")
        payload = response.json()
        job = payload.get("job") if isinstance(payload, Mapping) else None
        if not isinstance(job, Mapping):
            raise ProviderResponseError(
                "Together's create answer has no 'job' object", provider=self.name
            )
        if payload.get("warning"):
            log.warning("together: %s", payload["warning"])
        return self.parse_batch(job)

    def retrieve(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest("GET", f"/v1/batches/{batch_id}", operation="retrieve batch")
        batch = self.parse_batch(response.json())
        if not batch.is_terminal:
            return batch
        counts = self._counts.get(batch.id)
        if counts is None:
            counts = yield from self._counts_from_files(batch)
            self._counts[batch.id] = counts
        return batch.model_copy(update={"request_counts": counts})

    def _counts_from_files(self, batch: Batch) -> Flow[RequestCounts]:
        """Together reports only ``progress``: an ended job's counts are its result lines
        (the output file holds the successes, the error file the failures)."""
        succeeded = failed = 0
        for kind, ids in (("output", batch.output_file_ids), ("error", batch.error_file_ids)):
            for file_id in ids:
                response = yield HttpRequest(
                    "GET",
                    f"/v1/files/{file_id}/content",
                    stream=True,
                    operation=f"count the lines of {kind} file {file_id}",
                )
                lines = _count_lines(response.path)
                if kind == "output":
                    succeeded += lines
                else:
                    failed += lines
        done = succeeded + failed
        total = done
        if batch.status in (BatchStatus.EXPIRED, BatchStatus.CANCELLED) and batch.input_file_ids:
            # A stopped job: the input's line count (preprocess's validation report) tells
            # how many requests never ran.
            total = max(done, (yield from self._input_lines(batch.input_file_ids[0])) or 0)
        rest = total - done
        return RequestCounts(
            total=total,
            succeeded=succeeded,
            failed=failed,
            expired=rest if batch.status is BatchStatus.EXPIRED else 0,
            cancelled=rest if batch.status is BatchStatus.CANCELLED else 0,
        )

    def _input_lines(self, file_id: str) -> Flow[int | None]:
        response = yield HttpRequest(
            "GET",
            f"/v1/files/{file_id}",
            ok_statuses=frozenset({404}),
            operation=f"read input file {file_id}",
        )
        if response.status_code == 404:
            return None
        report = response.json().get("validation_report")
        lines = report.get("nlines") if isinstance(report, Mapping) else None
        return int(lines) if isinstance(lines, int) else None

    def list_batches(
        self, *, cursor: str | None, limit: int | None, filters: Mapping[str, Any]
    ) -> Flow[Page[Batch]]:
        # One unpaginated array: pages are cut from it here, newest first.
        response = yield HttpRequest("GET", "/v1/batches", operation="list batches")
        payload = response.json()
        if not isinstance(payload, list):
            raise ProviderResponseError(
                "Together's batch listing is not a JSON array", provider=self.name
            )
        batches = [self.parse_batch(item) for item in payload if isinstance(item, Mapping)]
        batches.sort(key=lambda b: b.created_at.timestamp() if b.created_at else 0, reverse=True)
        start = int(cursor or 0)
        size = limit or 100
        items = batches[start : start + size]
        more = start + size < len(batches)
        return Page[Batch](items=items, next_cursor=str(start + size) if more else None)

    def cancel(self, batch_id: str) -> Flow[Batch]:
        response = yield HttpRequest(
            "POST", f"/v1/batches/{batch_id}/cancel", idempotent=True, operation="cancel batch"
        )
        return self.parse_batch(response.json())

    def result_sources(self, batch: Batch) -> Flow[list[ResultSource]]:
        yield from ()  # no I/O: the job names its files
        return openai_lines.file_sources(batch, self.download_file)

    def list_files(self, *, cursor: str | None, limit: int | None) -> Flow[Page[FileObject]]:
        response = yield HttpRequest("GET", "/v1/files", operation="list files")
        files = [
            FileObject(
                id=str(item["id"]),
                provider=self.name,
                filename=item.get("filename"),
                bytes=item.get("bytes"),
                purpose=item.get("purpose"),
                created_at=to_datetime(item.get("created_at")),
                raw=dict(item),
            )
            for item in response.json().get("data", [])
            if item.get("purpose") == PURPOSE
        ]
        files.sort(key=lambda f: f.created_at.timestamp() if f.created_at else 0, reverse=True)
        start = int(cursor or 0)
        size = limit or 100
        more = start + size < len(files)
        return Page[FileObject](
            items=files[start : start + size], next_cursor=str(start + size) if more else None
        )

    def download_file(self, file_id: str) -> HttpRequest:
        return HttpRequest(
            "GET", f"/v1/files/{file_id}/content", operation=f"download file {file_id}"
        )

    def delete_file(self, file_id: str) -> Flow[None]:
        yield HttpRequest("DELETE", f"/v1/files/{file_id}", operation=f"delete file {file_id}")

    def parse_batch(self, raw: Mapping[str, Any]) -> Batch:
        status = raw.get("status")
        output, error, source = (
            raw.get("output_file_id"),
            raw.get("error_file_id"),
            raw.get("input_file_id"),
        )
        message = raw.get("error")
        return Batch(
            id=str(raw["id"]),
            provider=self.name,
            status=self.normalize(status),
            provider_status=str(status),
            created_at=to_datetime(raw.get("created_at")),
            ended_at=to_datetime(raw.get("completed_at")),
            expires_at=to_datetime(raw.get("job_deadline")),
            endpoint=raw.get("endpoint"),
            model=raw.get("model_id"),
            input_file_ids=(str(source),) if source else (),
            output_file_ids=(str(output),) if output else (),
            error_file_ids=(str(error),) if error else (),
            errors=(BatchErrorDetail(message=str(message)),) if message else (),
            raw=dict(raw),
        )

    def output_line(self, record: Mapping[str, Any], source: ResultSource) -> dict[str, Any]:
        return openai_lines.record_output_line(record, _read)

    def parse_result_line(self, record: Mapping[str, Any], source: ResultSource) -> BatchResult:
        return openai_lines.batch_result(_read(record), record, _usage)
