"""Mistral's Files + Batch jobs API, for the omnibatch emulator (mounted at ``/mistral``).

Point the official SDK at it with ``Mistral(api_key=..., server_url="http://HOST:PORT/mistral")``.
Shapes follow ``mistralai`` 3.7.0 (``BatchJob``, ``CreateFileResponse``,
``GetFileResponse``, ``ListBatchJobsResponse``) and Mistral's OpenAPI spec: statuses
``QUEUED → RUNNING → SUCCESS`` (or ``FAILED``, ``TIMEOUT_EXCEEDED``,
``CANCELLATION_REQUESTED → CANCELLED``), result lines
``{"id": "batch-…", "custom_id", "response": {"status_code", "body"}, "error"}``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
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
    embedding_body,
    file_route,
    jsonl_lines,
    parse_multipart,
    read_json,
    short_hash,
    unix_time,
)

__all__ = ["MistralDialect"]

ENDPOINTS = (
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
)
STATUSES = (
    "QUEUED",
    "RUNNING",
    "SUCCESS",
    "FAILED",
    "TIMEOUT_EXCEEDED",
    "CANCELLATION_REQUESTED",
    "CANCELLED",
)
STATUS = {
    Phase.VALIDATING: "QUEUED",
    Phase.RUNNING: "RUNNING",
    Phase.FINALIZING: "RUNNING",
    Phase.COMPLETED: "SUCCESS",
    Phase.FAILED: "FAILED",
    Phase.EXPIRED: "TIMEOUT_EXCEEDED",
    Phase.CANCELLING: "CANCELLATION_REQUESTED",
    Phase.CANCELLED: "CANCELLED",
}
# The spec's FilePurpose, plus agentic_safety, which mistralai 3.7 sends.
FILE_PURPOSES = ("fine-tune", "batch", "ocr", "agentic_safety")
SAMPLE_TYPES = ("pretrain", "instruct", "batch_request", "batch_result", "batch_error")
SOURCES = ("upload", "repository", "mistral")
VISIBILITIES = ("workspace", "user")
# Upload ``expiry`` is in hours; the service keeps a file at most this long (an assumption:
# one year) and refuses anything else with a 422, so no expiry can overflow a time stamp.
MAX_EXPIRY_HOURS = 365 * 24
# What pydantic reads as a boolean in a query string (case-insensitive).
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})
MAX_INLINE_REQUESTS = 10_000
MAX_REPORTED_ISSUES = 1_000
# Query keys of GET /v1/batch/jobs; any other key is a metadata filter (the SDK
# explodes its ``metadata`` dict into plain query keys).
_LIST_KEYS = frozenset(
    {"page", "page_size", "model", "agent_id", "metadata", "created_after", "created_by_me"}
    | {"status", "order_by"}
)

_JOB = re.compile(r"^/v1/batch/jobs/([^/]+)$")
_JOB_CANCEL = re.compile(r"^/v1/batch/jobs/([^/]+)/cancel$")
_FILE_PATHS = re.compile(r"^/v1/files(?:/[^/]+(?:/(?:content|url))?)?$")


def _detail(kind: str, loc: list[str | int], msg: str, value: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg}
    if value is not None:
        item["input"] = value
    return item


class MistralDialect(Dialect):
    """The Mistral Files and Batch jobs endpoints (``/v1/files*``, ``/v1/batch/jobs*``)."""

    name: ClassVar[str] = "mistral"
    prefix: ClassVar[str] = "/mistral"
    base_url_suffix: ClassVar[str] = ""

    # -- error shapes ---------------------------------------------------------------------

    def error_body(
        self,
        status_code: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> Any:
        if type is None:
            type = "internal_server_error" if status_code >= 500 else "invalid_request_error"
        return {"object": "error", "message": message, "type": type, "param": param, "code": code}

    def unauthorized(self, request: httpx.Request, token: str | None) -> httpx.Response:
        request_id = short_hash("unauthorized", request.url.path, token or "")
        return self.json_response({"message": "Unauthorized", "request_id": request_id}, 401)

    def validation_error(self, details: list[dict[str, Any]]) -> HTTPErrorResponse:
        """A 422 in the shape Mistral's API uses for request validation failures."""
        body = {
            "object": "error",
            "message": {"detail": details},
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        return HTTPErrorResponse(self.json_response(body, 422))

    def _error(self, status_code: int, message: str) -> HTTPErrorResponse:
        return HTTPErrorResponse(self.error_response(status_code, message))

    # -- routing ------------------------------------------------------------------------

    def handle(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        denied = self.check_auth(engine, request)
        if denied is not None:
            return denied
        method = request.method
        path = path.rstrip("/") or "/"
        served = file_route(self, engine, request, path, self._file, self._file_with_deleted)
        if served is not None:
            return served
        if path == "/v1/files":
            if method == "POST":
                return self._upload(engine, request)
            if method == "GET":
                return self._list_files(engine, request)
        elif path == "/v1/batch/jobs":
            if method == "POST":
                return self._create(engine, request)
            if method == "GET":
                return self._list_jobs(engine, request)
        elif m := _JOB_CANCEL.match(path):
            if method == "POST":
                return self._cancel(engine, m.group(1))
        elif m := _JOB.match(path):
            if method == "GET":
                inline = self._bool(request.url.params, "inline", False)
                job = self._job(engine, m.group(1))
                return self.json_response(self.job_object(engine, job, inline=inline))
            if method == "DELETE":
                job = self._job(engine, m.group(1))
                engine.delete_batch(job.id)
                return self.json_response({"id": job.id, "object": "batch", "deleted": True})
        if _FILE_PATHS.match(path) or path.startswith("/v1/batch/jobs"):
            # FastAPI's answer to a served path asked with another method.
            return self.json_response({"detail": "Method Not Allowed"}, 405)
        return self.json_response({"detail": "Not Found"}, 404)

    def _file(self, engine: Engine, file_id: str) -> StoredFile:
        stored = engine.get_file(file_id, self.name)
        if stored is None:
            raise self._error(404, f"File {file_id} not found")
        return stored

    def _job(self, engine: Engine, job_id: str) -> SimBatch:
        job = engine.get_batch(job_id, self.name)
        if job is None:
            raise self._error(404, f"Batch job {job_id} not found")
        return job

    # -- files ----------------------------------------------------------------------------

    def file_object(self, stored: StoredFile, with_deleted: bool = False) -> dict[str, Any]:
        """A file as ``GET /v1/files/{id}`` (``with_deleted``) or upload/list return it."""
        obj: dict[str, Any] = {
            "id": stored.id,
            "object": "file",
            "bytes": stored.size,
            "created_at": int(stored.created_at),
            "filename": stored.filename,
            "purpose": stored.purpose,
            "sample_type": stored.extra.get("sample_type", "batch_request"),
            "source": stored.extra.get("source", "upload"),
        }
        if with_deleted:
            obj["deleted"] = False
        obj.update(
            {
                "num_lines": stored.extra.get("num_lines"),
                "mimetype": stored.extra.get("mimetype"),
                "signature": short_hash(stored.data, size=8),
                "expires_at": unix_time(stored.expires_at),
                "visibility": stored.extra.get("visibility", "workspace"),
            }
        )
        return obj

    def _file_with_deleted(self, stored: StoredFile) -> dict[str, Any]:
        return self.file_object(stored, with_deleted=True)

    def _upload(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        try:
            parts = parse_multipart(request)
        except ValueError as exc:
            raise self.validation_error(
                [_detail("value_error", ["body"], f"Invalid multipart body: {exc}")]
            ) from None
        fields = {p.name: p for p in parts}
        upload = fields.get("file")
        if upload is None:
            raise self.validation_error([_detail("missing", ["body", "file"], "Field required")])
        purpose = fields["purpose"].text if "purpose" in fields else "fine-tune"
        if purpose not in FILE_PURPOSES:
            raise self.validation_error(
                [
                    _detail(
                        "enum",
                        ["body", "purpose"],
                        "Input should be " + ", ".join(f"'{p}'" for p in FILE_PURPOSES),
                        purpose,
                    )
                ]
            )
        visibility = fields["visibility"].text if "visibility" in fields else "workspace"
        if visibility not in VISIBILITIES:
            raise self.validation_error(
                [_detail("enum", ["body", "visibility"], "Input should be 'workspace' or 'user'")]
            )
        expires_at = None
        if "expiry" in fields and fields["expiry"].text.strip():
            raw = fields["expiry"].text.strip()
            try:
                hours = int(raw)
            except ValueError:
                raise self.validation_error(
                    [
                        _detail(
                            "int_parsing",
                            ["body", "expiry"],
                            "Input should be a valid integer",
                            raw,
                        )
                    ]
                ) from None
            if not 1 <= hours <= MAX_EXPIRY_HOURS:
                kind, bound = (
                    ("greater_than_equal", "greater than or equal to 1")
                    if hours < 1
                    else ("less_than_equal", f"less than or equal to {MAX_EXPIRY_HOURS}")
                )
                raise self.validation_error(
                    [_detail(kind, ["body", "expiry"], f"Input should be {bound}", raw)]
                )
            expires_at = engine.now() + hours * 3600
        filename = upload.filename or "upload"
        is_jsonl = filename.endswith(".jsonl")
        stored = engine.add_file(
            engine.random_uuid(),
            upload.data,
            purpose=purpose,
            filename=filename,
            dialect=self.name,
            expires_at=expires_at,
            extra={
                "sample_type": "batch_request" if purpose == "batch" else "instruct",
                "source": "upload",
                "visibility": visibility,
                "mimetype": "application/jsonl" if is_jsonl else (upload.content_type or None),
                "num_lines": upload.data.count(b"\n") + (0 if upload.data.endswith(b"\n") else 1)
                if is_jsonl and upload.data
                else None,
            },
        )
        return self.json_response(self.file_object(stored))

    def _list_files(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        page = self._int(params.get("page"), "page", 0, 0)
        size = self._int(params.get("page_size"), "page_size", 100, 1)
        include_total = self._bool(params, "include_total", True)
        purposes = self._enums(params, "purpose", FILE_PURPOSES)
        sample_types = self._enums(params, "sample_type", SAMPLE_TYPES)
        sources = self._enums(params, "source", SOURCES)
        mimetypes = params.get_list("mimetypes")
        search = params.get("search")
        files = [
            f
            for f in reversed(engine.list_files(self.name))
            if (not purposes or f.purpose in purposes)
            and (not sample_types or f.extra.get("sample_type") in sample_types)
            and (not sources or f.extra.get("source", "upload") in sources)
            and (not mimetypes or f.extra.get("mimetype") in mimetypes)
            and (search is None or search.lower() in f.filename.lower())
        ]
        data = [self.file_object(f) for f in files[page * size : (page + 1) * size]]
        total = len(files) if include_total else None
        return self.json_response({"data": data, "object": "list", "total": total})

    def _bool(self, params: httpx.QueryParams, name: str, default: bool) -> bool:
        """A boolean query parameter read as FastAPI does (``1``/``true``/``yes``/``on`` ...);
        anything else, ``null`` included, is a 422."""
        raw = params.get(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise self.validation_error(
            [
                _detail(
                    "bool_parsing",
                    ["query", name],
                    "Input should be a valid boolean, unable to interpret input",
                    raw,
                )
            ]
        )

    def _enums(self, params: httpx.QueryParams, name: str, allowed: tuple[str, ...]) -> list[str]:
        """The values of a repeated enum query parameter; one outside ``allowed`` is a 422."""
        values = params.get_list(name)
        for value in values:
            if value not in allowed:
                expected = ", ".join(f"'{a}'" for a in allowed)
                raise self.validation_error(
                    [_detail("enum", ["query", name], f"Input should be {expected}", value)]
                )
        return values

    # -- jobs ---------------------------------------------------------------------------

    def _int(
        self, raw: str | None, name: str, default: int, low: int, high: int | None = None
    ) -> int:
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self.validation_error(
                [_detail("int_parsing", ["query", name], "Input should be a valid integer", raw)]
            ) from None
        if value < low or (high is not None and value > high):
            raise self.validation_error(
                [_detail("value_error", ["query", name], f"Input should be >= {low}", raw)]
            )
        return value

    def _create(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        try:
            body = read_json(request)
        except ValueError:
            raise self.validation_error(
                [_detail("json_invalid", ["body"], "JSON decode error")]
            ) from None
        if not isinstance(body, dict):
            raise self.validation_error(
                [_detail("model_attributes_type", ["body"], "Input should be a valid dictionary")]
            )
        details: list[dict[str, Any]] = []
        endpoint = body.get("endpoint")
        if endpoint is None:
            details.append(_detail("missing", ["body", "endpoint"], "Field required"))
        elif endpoint not in ENDPOINTS:
            details.append(
                _detail(
                    "enum",
                    ["body", "endpoint"],
                    "Input should be " + ", ".join(f"'{e}'" for e in ENDPOINTS),
                    endpoint,
                )
            )
        timeout = body.get("timeout_hours", 24)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 168:
            details.append(
                _detail(
                    "less_than_equal",
                    ["body", "timeout_hours"],
                    "Input should be an integer between 1 and 168",
                    timeout,
                )
            )
        metadata = body.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict):
                details.append(
                    _detail("dict_type", ["body", "metadata"], "Input should be a valid dictionary")
                )
            else:
                for key, value in metadata.items():
                    if not 1 <= len(key) <= 32:
                        details.append(
                            _detail(
                                "string_too_long",
                                ["body", "metadata", key],
                                "Keys have 1-32 characters",
                            )
                        )
                    if not isinstance(value, str) or not 1 <= len(value) <= 512:
                        details.append(
                            _detail(
                                "string_type",
                                ["body", "metadata", key],
                                "Values are strings of 1-512 characters",
                            )
                        )
        input_files = body.get("input_files")
        inline = body.get("requests")
        if input_files is not None and (
            not isinstance(input_files, list) or not all(isinstance(f, str) for f in input_files)
        ):
            details.append(
                _detail("list_type", ["body", "input_files"], "Input should be a valid list")
            )
        if inline is not None:
            if not isinstance(inline, list):
                details.append(
                    _detail("list_type", ["body", "requests"], "Input should be a valid list")
                )
            elif len(inline) > MAX_INLINE_REQUESTS:
                details.append(
                    _detail(
                        "too_long",
                        ["body", "requests"],
                        f"List should have at most {MAX_INLINE_REQUESTS} items after validation",
                    )
                )
            else:
                for i, item in enumerate(inline):
                    if not isinstance(item, dict) or not isinstance(item.get("body"), dict):
                        details.append(
                            _detail("missing", ["body", "requests", i, "body"], "Field required")
                        )
        if details:
            raise self.validation_error(details)
        model = body.get("model")
        agent_id = body.get("agent_id")
        if not input_files and not inline:
            raise self._error(400, "Either input_files or requests must be provided")
        if input_files and inline:
            raise self._error(400, "Provide either input_files or requests, not both")
        if not model and not agent_id:
            raise self._error(400, "Either model or agent_id must be provided")
        if isinstance(inline, list) and inline:
            requests, issues = parse_inline(inline)
            file_ids: list[str] = []
        else:
            assert isinstance(input_files, list)
            stored_files = []
            for file_id in input_files:
                stored = engine.get_file(file_id, self.name)
                if stored is None:
                    raise self._error(404, f"File {file_id} not found")
                stored_files.append(stored)
            requests, issues = parse_files(stored_files)
            file_ids = [f.id for f in stored_files]
        job = engine.create_batch(
            engine.random_uuid(),
            dialect=self.name,
            endpoint=str(endpoint),
            requests=requests,
            window=timeout * 3600,
            validation_errors=issues,
            model=model if isinstance(model, str) else None,
            input_file_ids=file_ids,
            metadata=metadata,
            extra={"agent_id": agent_id, "timeout_hours": timeout},
        )
        return self.json_response(self.job_object(engine, job))

    def _list_jobs(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        page = self._int(params.get("page"), "page", 0, 0)
        size = self._int(params.get("page_size"), "page_size", 100, 1)
        statuses = params.get_list("status")
        for status in statuses:
            if status not in STATUSES:
                raise self.validation_error(
                    [
                        _detail(
                            "enum", ["query", "status"], "Input should be a BatchJobStatus", status
                        )
                    ]
                )
        self._bool(params, "created_by_me", False)
        order_by = params.get("order_by", "-created")
        if order_by not in ("created", "-created"):
            raise self.validation_error(
                [_detail("enum", ["query", "order_by"], "Input should be 'created' or '-created'")]
            )
        created_after = None
        if params.get("created_after"):
            created_after = self._datetime(params["created_after"])
        model = params.get("model")
        agent_id = params.get("agent_id")
        wanted_metadata: dict[str, str] = {
            key: value for key, value in params.multi_items() if key not in _LIST_KEYS
        }
        if params.get("metadata"):
            try:
                decoded = orjson.loads(params["metadata"])
            except orjson.JSONDecodeError:
                decoded = None
            if isinstance(decoded, dict):
                wanted_metadata.update({str(k): str(v) for k, v in decoded.items()})
        jobs = engine.list_batches(self.name)
        if order_by == "-created":
            jobs.reverse()
        matched = []
        for job in jobs:
            if model is not None and job.model != model:
                continue
            if agent_id is not None and job.extra.get("agent_id") != agent_id:
                continue
            if created_after is not None and job.created_at <= created_after:
                continue
            if wanted_metadata and any(
                (job.metadata or {}).get(k) != v for k, v in wanted_metadata.items()
            ):
                continue
            if statuses and STATUS[engine.snapshot(job).phase] not in statuses:
                continue
            matched.append(job)
        page_jobs = matched[page * size : (page + 1) * size]
        return self.json_response(
            {
                "data": [self.job_object(engine, job) for job in page_jobs],
                "object": "list",
                "total": len(matched),
            }
        )

    def _datetime(self, raw: str) -> float:
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise self.validation_error(
                [
                    _detail(
                        "datetime_parsing",
                        ["query", "created_after"],
                        "Input should be a valid datetime",
                        raw,
                    )
                ]
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()

    def _cancel(self, engine: Engine, job_id: str) -> httpx.Response:
        job = self._job(engine, job_id)
        try:
            engine.request_cancel(job)
        except BatchStateConflict as exc:
            return self.error_response(
                409, f"Cannot cancel a batch job with status {STATUS[exc.phase]}"
            )
        return self.json_response(self.job_object(engine, job))

    # -- rendering ----------------------------------------------------------------------

    def job_object(self, engine: Engine, job: SimBatch, *, inline: bool = False) -> dict[str, Any]:
        """The ``BatchJob`` object as the API returns it now (``inline``: with ``outputs``)."""
        snap = engine.snapshot(job)
        engine.ensure_results(job, snap, lambda b, s: self._write_results(engine, b, s))
        errors: list[dict[str, Any]] = []
        if snap.phase is Phase.FAILED:
            errors = [{"message": i.message, "count": 1} for i in job.validation_errors]
        outputs = None
        if inline and snap.terminal:
            outputs = job.extra.get("outputs", [])
        return {
            "id": job.id,
            "object": "batch",
            "input_files": list(job.input_file_ids),
            "metadata": job.metadata,
            "endpoint": job.endpoint,
            "model": job.model,
            "agent_id": job.extra.get("agent_id"),
            "output_file": job.output_file_id,
            "error_file": job.error_file_id,
            "errors": errors,
            "outputs": outputs,
            "status": STATUS[snap.phase],
            "created_at": int(snap.created_at),
            "total_requests": snap.total,
            "completed_requests": snap.done,
            "succeeded_requests": snap.succeeded,
            "failed_requests": snap.failed,
            "started_at": unix_time(snap.started_at),
            "completed_at": unix_time(snap.ended_at),
        }

    def _write_results(self, engine: Engine, job: SimBatch, snap: Snapshot) -> None:
        if snap.phase is Phase.FAILED:
            return
        outputs: list[dict[str, Any]] = []
        ok: list[bytes] = []
        failed: list[bytes] = []
        for position, req in enumerate(engine.processed(job, snap)):
            created = int(engine.processed_at(job, position, snap))
            line = self.result_line(engine, job, req, position, created)
            outputs.append(line)
            (failed if req.failure else ok).append(orjson.dumps(line))
        job.extra["outputs"] = outputs
        created_at = snap.ended_at if snap.ended_at is not None else engine.now()
        for kind, lines, sample_type in (
            ("output", ok, "batch_result"),
            ("error", failed, "batch_error"),
        ):
            if not lines:
                continue
            stored = engine.add_file(
                engine.random_uuid(),
                b"\n".join(lines) + b"\n",
                purpose="batch",
                filename=f"{job.id}_{kind}.jsonl",
                dialect=self.name,
                created_at=created_at,
                extra={
                    "sample_type": sample_type,
                    "source": "mistral",
                    "mimetype": "application/jsonl",
                    "num_lines": len(lines),
                    "visibility": "workspace",
                },
            )
            if kind == "output":
                job.output_file_id = stored.id
            else:
                job.error_file_id = stored.id

    def result_line(
        self, engine: Engine, job: SimBatch, req: SimRequest, position: int, created: int
    ) -> dict[str, Any]:
        """One result line for a processed request."""
        ident = f"{job.id}:{req.index}"
        line_id = f"batch-{job.id[:8]}-{position + 1}-{_uuid_from(ident)}"
        model = str(job.model or req.body.get("model") or "")
        if req.failure is not None:
            if req.failure == 500:
                message = "Internal server error (emulated)"
            elif ERROR_MARKER in req.raw:
                message = "This request contains the emulator error marker [[emulator:error]]."
            else:
                message = f"The emulator does not simulate {job.endpoint} requests."
            return {
                "id": line_id,
                "custom_id": req.custom_id,
                "response": {
                    "status_code": req.failure,
                    "body": self.error_body(req.failure, message),
                },
                "error": message,
            }
        answer = answer_for(job.endpoint, req.body)
        body: dict[str, Any]
        if answer.kind == "embedding":
            dims = req.body.get("output_dimension") or req.body.get("dimensions")
            if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
                dims = engine.config.embedding_dimensions
            body = embedding_body(
                answer, model=model, dimensions=dims, ident=ident, style="mistral"
            )
        else:
            body = chat_completion_body(
                answer, model=model, created=created, ident=ident, style="mistral"
            )
        return {
            "id": line_id,
            "custom_id": req.custom_id,
            "response": {"status_code": 200, "body": body},
            "error": None,
        }


def _uuid_from(ident: str) -> str:
    h = short_hash("uuid", ident)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _check_line(
    obj: Any, where: str, seen: set[str], problem: Any
) -> tuple[str | None, dict[str, Any]] | None:
    if not isinstance(obj, dict):
        problem(f"{where}: the request is not a JSON object")
        return None
    body = obj.get("body")
    if not isinstance(body, dict):
        problem(f"{where}: 'body' is missing or is not an object")
        return None
    custom_id = obj.get("custom_id")
    if custom_id is not None and not isinstance(custom_id, str):
        custom_id = str(custom_id)
    if custom_id is not None:
        if custom_id in seen:
            problem(f"{where}: duplicate custom_id '{custom_id}'")
            return None
        seen.add(custom_id)
    return custom_id, body


def parse_files(files: list[StoredFile]) -> tuple[list[SimRequest], list[ValidationIssue]]:
    """Parse Mistral batch input files (lines ``{"custom_id", "body"}``)."""
    requests: list[SimRequest] = []
    issues: list[ValidationIssue] = []
    seen: set[str] = set()
    for stored in files:
        for lineno, stripped, obj in jsonl_lines(stored.data):
            where = f"File {stored.id}, line {lineno}"

            def problem(message: str, _line: int = lineno) -> None:
                if len(issues) < MAX_REPORTED_ISSUES:
                    issues.append(ValidationIssue("invalid_line", message, _line))

            if obj is NOT_JSON:
                problem(f"{where}: invalid JSON")
                continue
            checked = _check_line(obj, where, seen, problem)
            if checked is None:
                continue
            custom_id, body = checked
            requests.append(
                SimRequest(
                    index=len(requests), custom_id=custom_id, body=body, raw=stripped, line=lineno
                )
            )
    if not requests and not issues:
        issues.append(ValidationIssue("empty_file", "The input files contain no requests"))
    return requests, issues


def parse_inline(items: list[Any]) -> tuple[list[SimRequest], list[ValidationIssue]]:
    """Parse inline ``requests`` of a job creation."""
    requests: list[SimRequest] = []
    issues: list[ValidationIssue] = []
    seen: set[str] = set()
    for i, item in enumerate(items):

        def problem(message: str) -> None:
            if len(issues) < MAX_REPORTED_ISSUES:
                issues.append(ValidationIssue("invalid_request", message))

        checked = _check_line(item, f"Request {i}", seen, problem)
        if checked is None:
            continue
        custom_id, body = checked
        requests.append(
            SimRequest(index=len(requests), custom_id=custom_id, body=body, raw=orjson.dumps(item))
        )
    return requests, issues
