"""Together's Files and Batches API, for the omnibatch emulator (mounted at ``/together``).

Point the official SDK at it with ``Together(api_key=..., base_url="http://HOST:PORT/together")``.
Shapes follow ``together`` 3.1.1 (``FileResponse``, ``BatchCreateResponse``, ``BatchJob``) and
Together's OpenAPI spec. The upload is the SDK's three steps: ``POST /v1/files`` (form fields
only) answers 302 with a pre-signed ``Location`` (served here under ``/together/uploads/``) and
``X-Together-File-Id``; the bytes are ``PUT`` there; ``POST /v1/files/{id}/preprocess``
validates them. A form with a ``file`` part (the documented curl upload) is stored at once.
Statuses ``VALIDATING → IN_PROGRESS → COMPLETED`` (or ``FAILED``, ``EXPIRED``, ``CANCELLED``:
no cancelling state, so a cancel is reported ``CANCELLED`` at once, its results frozen).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import httpx
import orjson

from omnibatch.plugin import (
    ERROR_MARKER,
    NOT_JSON,
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
    answer_for,
    chat_completion_body,
    file_route,
    iso_time,
    jsonl_lines,
    parse_multipart,
    read_json,
    request_lines,
    short_hash,
)

__all__ = ["TogetherDialect", "parse_input"]

ENDPOINTS = ("/v1/chat/completions", "/v1/audio/transcriptions", "/v1/audio/translations")
STATUS = {
    Phase.VALIDATING: "VALIDATING",
    Phase.RUNNING: "IN_PROGRESS",
    Phase.FINALIZING: "IN_PROGRESS",
    Phase.COMPLETED: "COMPLETED",
    Phase.FAILED: "FAILED",
    Phase.EXPIRED: "EXPIRED",
    Phase.CANCELLING: "CANCELLED",  # Together has no cancelling state
    Phase.CANCELLED: "CANCELLED",
}
PURPOSES = ("fine-tune", "calibration", "eval", "batch-api")
FILE_TYPES = ("jsonl", "csv", "parquet")
MAX_CUSTOM_ID = 64
MAX_REPORTED_ISSUES = 1_000
WINDOW_SECONDS = 24 * 3600

_FILE_PREPROCESS = re.compile(r"^/v1/files/([^/]+)/preprocess$")
_UPLOAD = re.compile(r"^/uploads/([^/]+)$")
_JOB = re.compile(r"^/v1/batches/([^/]+)$")
_JOB_CANCEL = re.compile(r"^/v1/batches/([^/]+)/cancel$")


def _signature(file_id: str) -> str:
    return short_hash("together-upload", file_id)


class TogetherDialect(Dialect):
    """Together's ``/v1/files*`` and ``/v1/batches*`` endpoints."""

    name: ClassVar[str] = "together"
    prefix: ClassVar[str] = "/together"
    base_url_suffix: ClassVar[str] = ""

    def _error(self, status_code: int, message: str, code: str | None = None) -> HTTPErrorResponse:
        return HTTPErrorResponse(self.error_response(status_code, message, code=code))

    def _batch_error(self, status_code: int, message: str) -> HTTPErrorResponse:
        """The batch routes' error shape (the spec's ``BatchErrorResponse``)."""
        return HTTPErrorResponse(self.json_response({"error": message}, status_code))

    # -- routing ------------------------------------------------------------------------

    def preflight(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response | None:
        # The pre-signed upload URL carries no key: its signature is checked in handle.
        if request.method == "PUT" and _UPLOAD.match(path.rstrip("/")):
            return None
        return super().preflight(engine, request, path)

    def body_limit(self, method: str, path: str) -> int:
        if method == "PUT" and _UPLOAD.match(path.rstrip("/")):
            return self.max_upload_bytes
        return super().body_limit(method, path)

    def handle(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        method = request.method
        path = path.rstrip("/") or "/"
        if m := _UPLOAD.match(path):
            # The pre-signed URL: its signature, not a key, authorizes the PUT.
            if method == "PUT":
                return self._put_bytes(engine, request, m.group(1))
            return self.not_found(request, path)
        denied = self.check_auth(engine, request)
        if denied is not None:
            return denied
        if (m := _FILE_PREPROCESS.match(path)) and method == "POST":
            return self._preprocess(engine, m.group(1))
        served = file_route(self, engine, request, path, self._file, self.file_object)
        if served is not None:
            return served
        if path == "/v1/files/upload" and method == "POST":
            return self._upload(engine, request, path)
        if path == "/v1/files":
            if method == "POST":
                return self._upload(engine, request, path)
            if method == "GET":
                files = reversed(engine.list_files(self.name))
                data = [self.file_object(f) for f in files if not f.extra.get("pending")]
                return self.json_response({"data": data})
        elif path == "/v1/batches":
            if method == "POST":
                return self._create(engine, request)
            if method == "GET":
                jobs = reversed(engine.list_batches(self.name))
                return self.json_response([self.job_object(engine, job) for job in jobs])
        elif m := _JOB_CANCEL.match(path):
            if method == "POST":
                return self._cancel(engine, m.group(1))
        elif (m := _JOB.match(path)) and method == "GET":
            return self.json_response(self.job_object(engine, self._job(engine, m.group(1))))
        return self.not_found(request, path)

    def _file(self, engine: Engine, file_id: str) -> StoredFile:
        stored = engine.get_file(file_id, self.name)
        if stored is None or stored.extra.get("pending"):
            raise self._error(404, f"File {file_id} not found", "file_not_found")
        return stored

    def _job(self, engine: Engine, job_id: str) -> SimBatch:
        job = engine.get_batch(job_id, self.name)
        if job is None:
            raise self._batch_error(404, f"Batch job {job_id} not found")
        return job

    # -- files ----------------------------------------------------------------------------

    def file_object(self, stored: StoredFile) -> dict[str, Any]:
        """A ``FileResponse`` as the API returns it."""
        obj: dict[str, Any] = {
            "id": stored.id,
            "object": "file",
            "bytes": stored.size,
            "created_at": int(stored.created_at),
            "filename": stored.filename,
            "FileType": stored.extra.get("file_type", "jsonl"),
            "purpose": stored.purpose,
            "Processed": "processing_status" in stored.extra,
        }
        if "processing_status" in stored.extra:
            obj["processing_status"] = stored.extra["processing_status"]
        if "validation_report" in stored.extra:
            obj["validation_report"] = stored.extra["validation_report"]
        return obj

    def _upload(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        try:
            fields = {part.name: part for part in parse_multipart(request)}
        except ValueError as exc:
            raise self._error(400, f"Invalid multipart body: {exc}") from None
        purpose = fields["purpose"].text if "purpose" in fields else ""
        if purpose not in PURPOSES:
            raise self._error(
                400, "purpose must be one of " + ", ".join(PURPOSES), "invalid_purpose"
            )
        upload = fields.get("file")
        if upload is not None:  # the documented one-step form upload
            stored = engine.add_file(
                "file-" + engine.random_uuid(),
                upload.data,
                purpose=purpose,
                filename=upload.filename or "upload.jsonl",
                dialect=self.name,
                extra={"file_type": "jsonl"},
            )
            self._validate(stored)
            return self.json_response(self.file_object(stored))
        name = fields["file_name"].text if "file_name" in fields else ""
        file_type = fields["file_type"].text if "file_type" in fields else ""
        if not name:
            raise self._error(400, "file_name is required")
        if file_type not in FILE_TYPES:
            raise self._error(400, "file_type must be one of " + ", ".join(FILE_TYPES))
        file_id = "file-" + engine.random_uuid()
        engine.add_file(
            file_id,
            b"",
            purpose=purpose,
            filename=name,
            dialect=self.name,
            extra={
                "pending": True,
                "file_type": file_type,
                "checksum": fields["checksum"].text if "checksum" in fields else None,
            },
        )
        root = str(request.url.copy_with(query=None, fragment=None))
        root = root[: len(root) - len(path)] if root.endswith(path) else root
        location = f"{root}/uploads/{file_id}?signature={_signature(file_id)}"
        return httpx.Response(
            302, headers={"Location": location, "X-Together-File-Id": file_id}, content=b""
        )

    def _put_bytes(self, engine: Engine, request: httpx.Request, file_id: str) -> httpx.Response:
        stored = engine.get_file(file_id, self.name)
        if stored is None or request.url.params.get("signature") != _signature(file_id):
            return httpx.Response(403, content=b"<Error><Code>AccessDenied</Code></Error>")
        stored.data = request.read()
        stored.extra["pending"] = False
        return httpx.Response(200, content=b"")

    def _preprocess(self, engine: Engine, file_id: str) -> httpx.Response:
        stored = engine.get_file(file_id, self.name)
        if stored is None:
            raise self._error(404, f"File {file_id} not found", "file_not_found")
        if stored.extra.get("pending") and not stored.data:
            raise self._error(400, f"File {file_id} has no uploaded content")
        stored.extra["pending"] = False
        self._validate(stored)
        return self.json_response(self.file_object(stored))

    def _validate(self, stored: StoredFile) -> None:
        """The validation report: every line JSON (batch files: objects with a body)."""
        lines = 0
        error = None
        for lineno, _, value in jsonl_lines(stored.data):
            lines += 1
            if value is NOT_JSON or not isinstance(value, dict):
                error = f"Line {lineno} is not a JSON object"
                break
            if stored.purpose == "batch-api" and not isinstance(value.get("body"), dict):
                error = f"Line {lineno} has no 'body' object"
                break
        report: dict[str, Any] = {"valid": error is None, "file_id": stored.id, "nlines": lines}
        if error is not None:
            report.update(error=error, error_type="INVALID_FORMAT")
        stored.extra["validation_report"] = report
        stored.extra["processing_status"] = "COMPLETED" if error is None else "INVALID_FORMAT"

    # -- batches ----------------------------------------------------------------------------

    def _create(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        try:
            body = read_json(request)
        except ValueError:
            raise self._batch_error(400, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise self._batch_error(400, "Request body must be a JSON object")
        endpoint = body.get("endpoint")
        if endpoint not in ENDPOINTS:
            raise self._batch_error(400, "endpoint must be one of " + ", ".join(ENDPOINTS))
        file_id = body.get("input_file_id")
        if not isinstance(file_id, str) or not file_id:
            raise self._batch_error(400, "input_file_id is required")
        stored = engine.get_file(file_id, self.name)
        if stored is None or stored.extra.get("pending"):
            raise self._batch_error(404, f"File {file_id} not found")
        if stored.purpose != "batch-api":
            raise self._batch_error(
                400, f"File {file_id} was not uploaded with purpose 'batch-api'"
            )
        model = body.get("model_id")
        requests, issues = parse_input(stored)
        job = engine.create_batch(
            engine.random_uuid(),
            dialect=self.name,
            endpoint=str(endpoint),
            requests=requests,
            window=WINDOW_SECONDS,
            validation_errors=issues,
            model=model if isinstance(model, str) else None,
            input_file_ids=[file_id],
            extra={
                "file_size_bytes": stored.size,
                "completion_window": body.get("completion_window"),
                "priority": body.get("priority"),
            },
        )
        return self.json_response({"job": self.job_object(engine, job)}, 201)

    def _cancel(self, engine: Engine, job_id: str) -> httpx.Response:
        job = self._job(engine, job_id)
        try:
            engine.request_cancel(job)
        except BatchStateConflict as exc:
            raise self._batch_error(
                400, f"Cannot cancel a batch job with status {STATUS[exc.phase]}"
            ) from None
        return self.json_response(self.job_object(engine, job))

    # -- rendering ----------------------------------------------------------------------

    def job_object(self, engine: Engine, job: SimBatch) -> dict[str, Any]:
        """A ``BatchJob`` as the API returns it now."""
        snap = engine.snapshot(job)
        # A cancel ends the job for the client at once: its results are frozen then.
        if (snap.terminal or snap.phase is Phase.CANCELLING) and not job.materialized:
            self._write_results(engine, job, snap)
            job.materialized = True
        error = None
        if snap.phase is Phase.FAILED and job.validation_errors:
            error = "; ".join(i.message for i in job.validation_errors[:5])
        progress = 100.0 * snap.done / snap.total if snap.total else 0.0
        ended = snap.ended_at if snap.phase is not Phase.CANCELLING else snap.cancelling_at
        job_object = {
            "id": job.id,
            "user_id": "emulator-user",
            "input_file_id": job.input_file_ids[0] if job.input_file_ids else None,
            "file_size_bytes": job.extra.get("file_size_bytes"),
            "status": STATUS[snap.phase],
            "job_deadline": iso_time(snap.expires_at),
            "created_at": iso_time(snap.created_at),
            "completed_at": iso_time(ended),
            "endpoint": job.endpoint,
            "progress": round(progress, 2),
            "model_id": job.model,
            "output_file_id": job.output_file_id,
            "error_file_id": job.error_file_id,
            "error": error,
        }
        # The spec types these fields as plain strings: absent, never null.
        return {key: value for key, value in job_object.items() if value is not None}

    def _write_results(self, engine: Engine, job: SimBatch, snap: Snapshot) -> None:
        if snap.phase is Phase.FAILED:
            return
        ok: list[bytes] = []
        failed: list[bytes] = []
        for position, req in enumerate(engine.processed(job, snap)):
            created = int(engine.processed_at(job, position, snap))
            line = self.result_line(job, req, created)
            (failed if req.failure else ok).append(orjson.dumps(line))
        for kind, lines in (("output", ok), ("error", failed)):
            if not lines:
                continue
            stored = engine.add_file(
                "file-" + engine.random_uuid(),
                b"\n".join(lines) + b"\n",
                purpose="batch-api",
                filename=f"batch_{job.id}_{kind}.jsonl",
                dialect=self.name,
                extra={"file_type": "jsonl", "processing_status": "COMPLETED"},
            )
            if kind == "output":
                job.output_file_id = stored.id
            else:
                job.error_file_id = stored.id

    def result_line(self, job: SimBatch, req: SimRequest, created: int) -> dict[str, Any]:
        """One line of the output file (a response) or the error file (an error)."""
        if req.failure is not None:
            if req.failure == 500:
                message, code = "Internal server error (emulated)", "internal_error"
            elif ERROR_MARKER in req.raw:
                message = "This request contains the emulator error marker [[emulator:error]]."
                code = "invalid_request"
            else:
                message = f"The emulator does not simulate {job.endpoint} requests."
                code = "unsupported_endpoint"
            return {"custom_id": req.custom_id, "error": {"message": message, "code": code}}
        model = str(req.body.get("model") or job.model or "")
        answer = answer_for(job.endpoint, req.body)
        body = chat_completion_body(
            answer, model=model, created=created, ident=f"{job.id}:{req.index}"
        )
        return {"custom_id": req.custom_id, "response": {"status_code": 200, "body": body}}


def parse_input(stored: StoredFile) -> tuple[list[SimRequest], list[ValidationIssue]]:
    """Parse a batch input file (lines ``{"custom_id", "body"}``)."""
    return request_lines(
        stored.data,
        max_custom_id=MAX_CUSTOM_ID,
        empty=ValidationIssue("empty_file", "The input file contains no requests"),
        max_issues=MAX_REPORTED_ISSUES,
    )
