"""The emulator dialect of every OpenAI-style batch service, configured by its facts.

:class:`OpenAICompatDialect` serves OpenAI's Files and Batch endpoints (``/files*``,
``/batches*`` under the service's API prefix) from an
:class:`~omnibatch.plugin.openai_compat.OpenAICompatFacts`: the endpoints, windows, purposes,
limits, statuses and pagination the adapter reads are the ones the emulator enforces. It is
mounted at ``/<name>``, so an SDK's base URL is ``ROOT/<name><api_prefix>``
(``http://127.0.0.1:8000/openai/v1``). Shapes follow ``openai`` 3.54.0 (``openai.types.Batch``,
``FileObject``): statuses ``validating -> in_progress -> finalizing -> completed`` (or
``failed``, ``expired``, ``cancelling -> cancelled``), result lines
``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}``.

Part of the plugin API (versioned by ``omnibatch.plugin.PLUGIN_API_VERSION``).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import httpx
import orjson

from omnibatch._status import BatchStatus
from omnibatch.emulator._shared import NOT_JSON, jsonl_lines, unix_time
from omnibatch.emulator.dialect import (
    Dialect,
    HTTPErrorResponse,
    bearer_token,
    check_key,
    content_response,
    parse_multipart,
    read_json,
)
from omnibatch.emulator.engine import (
    BatchStateConflict,
    Engine,
    Phase,
    SimBatch,
    SimRequest,
    Snapshot,
    StoredFile,
    ValidationIssue,
)
from omnibatch.emulator.fakes import (
    ERROR_MARKER,
    answer_for,
    chat_completion_body,
    completion_body,
    embedding_body,
    response_body,
    short_hash,
    transcription_body,
)
from omnibatch.plugin.openai_compat import OpenAICompatFacts

__all__ = ["OpenAICompatDialect"]

MAX_REPORTED_ISSUES = 1_000

_PHASE_STATUS = {
    Phase.VALIDATING: BatchStatus.VALIDATING,
    Phase.FAILED: BatchStatus.FAILED,
    Phase.RUNNING: BatchStatus.RUNNING,
    Phase.FINALIZING: BatchStatus.FINALIZING,
    Phase.COMPLETED: BatchStatus.SUCCEEDED,
    Phase.EXPIRED: BatchStatus.EXPIRED,
    Phase.CANCELLING: BatchStatus.CANCELLING,
    Phase.CANCELLED: BatchStatus.CANCELLED,
}
_BATCH = re.compile(r"^/batches/([^/]+)$")
_BATCH_CANCEL = re.compile(r"^/batches/([^/]+)/cancel$")
_FILE = re.compile(r"^/files/([^/]+)$")
_FILE_CONTENT = re.compile(r"^/files/([^/]+)/content$")

_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
_BAD_KEY = "Incorrect API key provided."
_EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
_CANCELLED_MESSAGE = "This request was not executed because the batch was cancelled."


class OpenAICompatDialect(Dialect):
    """An OpenAI-style Files + Batch API, configured by :attr:`facts`.

    Setting ``facts`` on a subclass sets ``name``, ``prefix`` (``/<name>``) and
    ``base_url_suffix`` (the API prefix). Override :meth:`api_path` to serve other path
    layouts, :meth:`request_key` for another auth header, :meth:`parse_input` and
    :meth:`result_line` for a service's own line rules.
    """

    facts: ClassVar[OpenAICompatFacts]
    bad_key_message: ClassVar[str] = _BAD_KEY

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        facts = cls.__dict__.get("facts")
        if facts is None:
            return
        cls.name = facts.name
        cls.prefix = facts.emulator_mount
        cls.base_url_suffix = facts.api_prefix
        if facts.auth_header.lower() not in ("authorization", "x-api-key", "api-key"):
            cls.secret_headers = frozenset({facts.auth_header.lower()})

    # -- plumbing -------------------------------------------------------------------------

    def status_of(self, phase: Phase) -> str:
        """The raw status the service reports for ``phase``."""
        return self.facts.wire_status(_PHASE_STATUS[phase])

    def api_path(self, request: httpx.Request, path: str) -> str | None:
        """``path`` (below the mount) relative to the API root (``/batches``); ``None`` when
        it is outside the API."""
        prefix = self.facts.api_prefix.rstrip("/")
        if path == prefix or path.startswith(prefix + "/"):
            return path[len(prefix) :] or "/"
        return None

    def request_key(self, request: httpx.Request) -> str | None:
        """The API key the request carries, read as the service expects it."""
        header, scheme = self.facts.auth_header, self.facts.auth_scheme
        if header.lower() == "authorization" and scheme.lower() == "bearer":
            return bearer_token(request)
        value = request.headers.get(header)
        if not value:
            return None
        if scheme:
            given, _, value = value.strip().partition(" ")
            if given.lower() != scheme.lower():
                return None
        return value.strip() or None

    def check_auth(self, engine: Engine, request: httpx.Request) -> httpx.Response | None:
        # The emulator calls this before reading a body, too (Dialect.preflight).
        return check_key(self, engine, request, self.request_key(request))

    def unauthorized(self, request: httpx.Request, token: str | None) -> httpx.Response:
        message = _NO_KEY if token is None else self.bad_key_message
        return self.error_response(
            401, message, type="invalid_request_error", code="invalid_api_key"
        )

    def handle(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        try:
            response = self._route(engine, request, path)
        except HTTPErrorResponse as exc:
            response = exc.response
        response.headers[self.facts.request_id_header] = "req_" + engine.random_hex(32)
        return response

    def _route(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        denied = self.check_auth(engine, request)
        if denied is not None:
            return denied
        method = request.method
        full = path.rstrip("/") or "/"
        api = self.api_path(request, full)
        if api is None:
            return self.not_found(request, full)
        if api == "/files":
            if method == "POST":
                return self._upload(engine, request)
            if method == "GET":
                return self._list_files(engine, request)
        elif m := _FILE_CONTENT.match(api):
            if method == "GET":
                stored = self._file(engine, m.group(1))
                return content_response(request, stored.data, "application/octet-stream")
        elif m := _FILE.match(api):
            if method == "GET":
                return self.json_response(self._file_object(self._file(engine, m.group(1))))
            if method == "DELETE" and self.facts.delete_files:
                stored = self._file(engine, m.group(1))
                engine.delete_file(stored.id)
                return self.json_response({"id": stored.id, "object": "file", "deleted": True})
        elif api == "/batches":
            if method == "POST":
                return self._create(engine, request)
            if method == "GET":
                return self._list_batches(engine, request)
        elif m := _BATCH_CANCEL.match(api):
            if method == "POST" and self.facts.cancel:
                return self._cancel(engine, m.group(1))
        elif (m := _BATCH.match(api)) and method == "GET":
            batch = self._batch(engine, m.group(1))
            return self.json_response(self.batch_object(engine, batch))
        return self.not_found(request, full)

    def _bad(
        self, message: str, param: str | None = None, code: str | None = None
    ) -> HTTPErrorResponse:
        return HTTPErrorResponse(
            self.error_response(400, message, type="invalid_request_error", param=param, code=code)
        )

    def _file(self, engine: Engine, file_id: str) -> StoredFile:
        stored = engine.get_file(file_id, self.name)
        if stored is None:
            raise HTTPErrorResponse(
                self.error_response(
                    404, f"No such File object: {file_id}", type="invalid_request_error", param="id"
                )
            )
        return stored

    def _batch(self, engine: Engine, batch_id: str) -> SimBatch:
        batch = engine.get_batch(batch_id, self.name)
        if batch is None:
            raise HTTPErrorResponse(
                self.error_response(
                    404, f"No batch found with id '{batch_id}'.", type="invalid_request_error"
                )
            )
        return batch

    # -- files ----------------------------------------------------------------------------

    def _file_object(self, stored: StoredFile) -> dict[str, Any]:
        return {
            "id": stored.id,
            "object": "file",
            "bytes": stored.size,
            "created_at": int(stored.created_at),
            "expires_at": unix_time(stored.expires_at),
            "filename": stored.filename,
            "purpose": stored.purpose,
            "status": "processed",
            "status_details": None,
        }

    def _upload(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        try:
            parts = parse_multipart(request)
        except ValueError as exc:
            raise self._bad(f"Invalid multipart body: {exc}") from None
        fields = {p.name: p for p in parts}
        if "file" not in fields:
            raise self._bad(
                "Missing required parameter: 'file'.", "file", "missing_required_parameter"
            )
        if "purpose" not in fields:
            raise self._bad(
                "Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter"
            )
        purpose = fields["purpose"].text
        if purpose not in self.facts.file_purposes:
            raise self._bad(
                f"'{purpose}' is not one of {list(self.facts.file_purposes)} - 'purpose'",
                "purpose",
                "invalid_value",
            )
        upload = fields["file"]
        limit = self.facts.max_bytes
        if purpose == "batch" and limit is not None and len(upload.data) > limit:
            raise self._bad(
                f"Batch input files are limited to {limit // (1024 * 1024)} MB.",
                "file",
                "file_too_large",
            )
        now = engine.now()
        expires_at: float | None = now + self.facts.file_ttl_seconds if purpose == "batch" else None
        if "expires_after[anchor]" in fields or "expires_after[seconds]" in fields:
            anchor = fields.get("expires_after[anchor]")
            seconds = fields.get("expires_after[seconds]")
            if anchor is None or anchor.text != "created_at":
                raise self._bad(
                    "expires_after[anchor] must be 'created_at'.",
                    "expires_after.anchor",
                    "invalid_value",
                )
            try:
                ttl = int(seconds.text) if seconds is not None else -1
            except ValueError:
                ttl = -1
            if not 3600 <= ttl <= 2_592_000:
                raise self._bad(
                    "expires_after[seconds] must be between 3600 and 2592000.",
                    "expires_after.seconds",
                    "invalid_value",
                )
            expires_at = now + ttl
        stored = engine.add_file(
            self.facts.file_id_prefix + engine.random_token(22),
            upload.data,
            purpose=purpose,
            filename=upload.filename or "upload",
            dialect=self.name,
            expires_at=expires_at,
        )
        return self.json_response(self._file_object(stored))

    def _list_files(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        purpose = params.get("purpose")
        order = params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise self._bad("order must be 'asc' or 'desc'.", "order", "invalid_value")
        limit = self._int_param(params.get("limit"), "limit", 10_000, 1, 10_000)
        files = [f for f in engine.list_files(self.name) if purpose is None or f.purpose == purpose]
        if order == "desc":
            files.reverse()
        if self.facts.pagination == "none":
            data = [self._file_object(f) for f in files]
            return self.json_response({"object": "list", "data": data})
        return self.json_response(self._page(files, params.get("after"), limit, self._file_object))

    # -- batches ------------------------------------------------------------------------

    def _int_param(self, raw: str | None, name: str, default: int, low: int, high: int) -> int:
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self._bad(f"Invalid value for '{name}': expected an integer.", name) from None
        if not low <= value <= high:
            raise self._bad(
                f"Invalid '{name}': integer must be between {low} and {high}.",
                name,
                "invalid_value",
            )
        return value

    def _page(self, items: list[Any], after: str | None, limit: int, render: Any) -> dict[str, Any]:
        start = 0
        if after is not None:
            ids = [item.id for item in items]
            if after not in ids:
                raise self._bad(f"No object found with id '{after}' for 'after'.", "after")
            start = ids.index(after) + 1
        page = items[start : start + limit]
        data = [render(item) for item in page]
        return {
            "object": "list",
            "data": data,
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": start + limit < len(items),
        }

    def _create(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        try:
            body = read_json(request)
        except ValueError as exc:
            raise self._bad(str(exc)) from None
        if not isinstance(body, dict):
            raise self._bad("The request body must be a JSON object.")
        for key in ("input_file_id", "endpoint", "completion_window"):
            if key not in body:
                raise self._bad(
                    f"Missing required parameter: '{key}'.", key, "missing_required_parameter"
                )
        endpoint = body["endpoint"]
        if endpoint not in self.facts.endpoints:
            raise self._bad(
                f"Invalid value: '{endpoint}'. Supported values are: "
                + ", ".join(f"'{e}'" for e in self.facts.endpoints)
                + ".",
                "endpoint",
                "invalid_value",
            )
        window = body["completion_window"]
        seconds = self.facts.window_seconds(window) if isinstance(window, str) else None
        if seconds is None:
            raise self._bad(
                f"Invalid value: '{window}'. Supported values are: "
                + ", ".join(f"'{w}'" for w in self.facts.completion_windows)
                + ".",
                "completion_window",
                "invalid_value",
            )
        metadata = body.get("metadata") if self.facts.metadata else None
        self._check_metadata(metadata)
        output_expires = body.get("output_expires_after")
        if output_expires is not None:
            ok = (
                isinstance(output_expires, dict)
                and output_expires.get("anchor") == "created_at"
                and isinstance(output_expires.get("seconds"), int)
                and 3600 <= output_expires["seconds"] <= 2_592_000
            )
            if not ok:
                raise self._bad(
                    "output_expires_after must be {anchor: 'created_at', seconds: 3600..2592000}.",
                    "output_expires_after",
                    "invalid_value",
                )
        input_file_id = body["input_file_id"]
        stored = (
            engine.get_file(input_file_id, self.name) if isinstance(input_file_id, str) else None
        )
        if stored is None:
            raise self._bad(f"No such File object: {input_file_id}", "input_file_id")
        if stored.purpose != "batch":
            raise self._bad(
                f"File {input_file_id} has purpose '{stored.purpose}'; "
                "batch input files must be uploaded with purpose 'batch'.",
                "input_file_id",
                "invalid_value",
            )
        requests, issues, model = self.parse_input(stored.data, endpoint)
        batch = engine.create_batch(
            self.facts.batch_id_prefix + engine.random_hex(32),
            dialect=self.name,
            endpoint=endpoint,
            requests=requests,
            window=seconds,
            validation_errors=issues,
            model=model,
            input_file_ids=[stored.id],
            metadata=metadata,
            extra={"completion_window": window, "output_expires_after": output_expires},
        )
        return self.json_response(self.batch_object(engine, batch))

    def _check_metadata(self, metadata: Any) -> None:
        if metadata is None:
            return
        if not isinstance(metadata, dict):
            raise self._bad("metadata must be an object.", "metadata", "invalid_type")
        pairs = self.facts.max_metadata_pairs
        key_length = self.facts.max_metadata_key_length or 1 << 30
        value_length = self.facts.max_metadata_value_length or 1 << 30
        if pairs is not None and len(metadata) > pairs:
            raise self._bad(f"metadata can have at most {pairs} keys.", "metadata", "invalid_value")
        for key, value in metadata.items():
            if len(key) > key_length:
                raise self._bad(
                    f"metadata keys can be at most {key_length} characters long.",
                    "metadata",
                    "invalid_value",
                )
            if not isinstance(value, str) or len(value) > value_length:
                raise self._bad(
                    f"metadata values must be strings of at most {value_length} characters.",
                    "metadata",
                    "invalid_value",
                )

    def _list_batches(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        batches = engine.list_batches(self.name)
        batches.reverse()  # newest first
        if self.facts.pagination == "none":
            data = [self.batch_object(engine, b) for b in batches]
            return self.json_response({"object": "list", "data": data})
        limit = self._int_param(params.get("limit"), "limit", 20, 1, 100)
        page = self._page(
            batches, params.get("after"), limit, lambda b: self.batch_object(engine, b)
        )
        return self.json_response(page)

    def _cancel(self, engine: Engine, batch_id: str) -> httpx.Response:
        batch = self._batch(engine, batch_id)
        try:
            engine.request_cancel(batch)
        except BatchStateConflict as exc:
            return self.error_response(
                409,
                f"Cannot cancel a batch with status '{self.status_of(exc.phase)}'.",
                type="invalid_request_error",
            )
        return self.json_response(self.batch_object(engine, batch))

    # -- rendering ----------------------------------------------------------------------

    def batch_object(self, engine: Engine, batch: SimBatch) -> dict[str, Any]:
        """The ``Batch`` object as the API returns it now."""
        snap = engine.snapshot(batch)
        engine.ensure_results(batch, snap, lambda b, s: self._write_results(engine, b, s))
        validated = snap.started_at is not None
        errors = None
        if snap.phase is Phase.FAILED:
            errors = {
                "object": "list",
                "data": [
                    {"code": i.code, "message": i.message, "param": i.param, "line": i.line}
                    for i in batch.validation_errors
                ],
            }
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "model": batch.model if validated else None,
            "errors": errors,
            "input_file_id": batch.input_file_ids[0],
            "completion_window": batch.extra.get("completion_window", "24h"),
            "status": self.status_of(snap.phase),
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": int(snap.created_at),
            "in_progress_at": unix_time(snap.started_at),
            "expires_at": int(snap.expires_at),
            "finalizing_at": unix_time(snap.finalizing_at),
            "completed_at": unix_time(snap.completed_at),
            "failed_at": unix_time(snap.failed_at),
            "expired_at": unix_time(snap.expired_at),
            "cancelling_at": unix_time(snap.cancelling_at),
            "cancelled_at": unix_time(snap.cancelled_at),
            "request_counts": self._request_counts(snap, validated),
            "usage": {
                "input_tokens": snap.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": snap.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": snap.prompt_tokens + snap.completion_tokens,
            },
            "metadata": batch.metadata,
        }

    def _request_counts(self, snap: Snapshot, validated: bool) -> dict[str, int]:
        if snap.phase in (Phase.CANCELLED, Phase.EXPIRED):
            # Every request that never ran has a batch_cancelled / batch_expired line in the
            # error file, so it counts as failed: completed + failed = total = the lines of
            # both files, even for a batch cancelled while validating.
            return {
                "total": snap.total,
                "completed": snap.succeeded,
                "failed": snap.total - snap.succeeded,
            }
        return {
            "total": snap.total if validated else 0,
            "completed": snap.succeeded,
            "failed": snap.failed,
        }

    def _write_results(self, engine: Engine, batch: SimBatch, snap: Snapshot) -> None:
        if snap.phase is Phase.FAILED:
            return
        outputs: list[bytes] = []
        errors: list[bytes] = []
        for position, req in enumerate(engine.processed(batch, snap)):
            created = int(engine.processed_at(batch, position, snap))
            line = self.result_line(engine, batch, req, created)
            (errors if req.failure else outputs).append(orjson.dumps(line))
        if snap.phase in (Phase.EXPIRED, Phase.CANCELLED):
            code, message = (
                ("batch_expired", _EXPIRED_MESSAGE)
                if snap.phase is Phase.EXPIRED
                else ("batch_cancelled", _CANCELLED_MESSAGE)
            )
            for req in engine.unprocessed(batch, snap):
                line = {
                    "id": self._line_id(batch, req),
                    "custom_id": req.custom_id,
                    "response": None,
                    "error": {"code": code, "message": message},
                }
                errors.append(orjson.dumps(line))
        created_at = snap.ended_at if snap.ended_at is not None else engine.now()
        ttl = self.facts.file_ttl_seconds
        spec = batch.extra.get("output_expires_after")
        if isinstance(spec, dict) and isinstance(spec.get("seconds"), int):
            ttl = spec["seconds"]
        for kind, lines in (("output", outputs), ("error", errors)):
            if not lines:
                continue
            stored = engine.add_file(
                self.facts.file_id_prefix + engine.random_token(22),
                b"\n".join(lines) + b"\n",
                purpose="batch_output",
                filename=f"{batch.id}_{kind}.jsonl",
                dialect=self.name,
                created_at=created_at,
                expires_at=created_at + ttl,
            )
            if kind == "output":
                batch.output_file_id = stored.id
            else:
                batch.error_file_id = stored.id

    def _line_id(self, batch: SimBatch, req: SimRequest) -> str:
        return "batch_req_" + short_hash("line", batch.id, str(req.index))

    def result_line(
        self, engine: Engine, batch: SimBatch, req: SimRequest, created: int
    ) -> dict[str, Any]:
        """One line of the output or error file for a processed request."""
        ident = f"{batch.id}:{req.index}"
        model = str(req.body.get("model") or batch.model or "")
        status = 200
        body: dict[str, Any]
        if req.failure == 500:
            status = 500
            body = self.error_body(
                500,
                "The server had an error processing your request. Sorry about that! (emulated)",
                type="server_error",
            )
        elif req.failure is not None:
            status = 400
            if ERROR_MARKER in req.raw:
                message = "This request contains the emulator error marker [[emulator:error]]."
            else:
                message = f"The emulator does not simulate {batch.endpoint} requests."
            body = self.error_body(400, message, type="invalid_request_error")
        else:
            answer = answer_for(batch.endpoint, req.body)
            if answer.kind == "transcription":
                body = transcription_body(answer, ident=ident)
            elif answer.kind == "embedding":
                dims = req.body.get("dimensions")
                if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
                    dims = engine.config.embedding_dimensions
                body = embedding_body(answer, model=model, dimensions=dims, ident=ident)
            elif answer.kind == "completion":
                body = completion_body(answer, model=model, created=created, ident=ident)
            elif answer.kind == "response":
                body = response_body(
                    answer, model=model, created=created, ident=ident, request=req.body
                )
            else:
                body = chat_completion_body(answer, model=model, created=created, ident=ident)
        return {
            "id": self._line_id(batch, req),
            "custom_id": req.custom_id,
            "response": {
                "status_code": status,
                "request_id": short_hash("request", ident),
                "body": body,
            },
            "error": None,
        }

    def parse_input(
        self, data: bytes, endpoint: str
    ) -> tuple[list[SimRequest], list[ValidationIssue], str | None]:
        """Parse a batch input file: the requests, the validation problems (with 1-based
        line numbers) and the batch's model. Override to add a service's own line rules."""
        requests: list[SimRequest] = []
        issues: list[ValidationIssue] = []
        seen: set[str] = set()
        model: str | None = None

        def problem(code: str, message: str, line: int | None, param: str | None = None) -> None:
            if len(issues) < MAX_REPORTED_ISSUES:
                issues.append(ValidationIssue(code, message, line, param))

        count = 0
        for lineno, stripped, obj in jsonl_lines(data):
            count += 1
            if obj is NOT_JSON:
                problem("invalid_json_line", "This line is not parseable as valid JSON.", lineno)
                continue
            if not isinstance(obj, dict):
                problem("invalid_json_line", "This line is not a JSON object.", lineno)
                continue
            missing = [k for k in ("custom_id", "method", "url", "body") if k not in obj]
            if missing:
                problem(
                    "missing_required_parameter",
                    f"Missing required parameter: '{missing[0]}'.",
                    lineno,
                    missing[0],
                )
                continue
            custom_id, method, url, body = obj["custom_id"], obj["method"], obj["url"], obj["body"]
            if not isinstance(custom_id, str) or not custom_id:
                problem(
                    "invalid_value", "custom_id must be a non-empty string.", lineno, "custom_id"
                )
                continue
            if custom_id in seen:
                problem(
                    "duplicate_custom_id",
                    f"The custom_id '{custom_id}' is not unique in this batch; "
                    "each request needs its own custom_id.",
                    lineno,
                    "custom_id",
                )
                continue
            seen.add(custom_id)
            if method != "POST":
                problem("invalid_value", "Only the POST method is supported.", lineno, "method")
                continue
            if url != endpoint:
                problem(
                    "url_mismatch",
                    f"The URL provided for this request ({url}) does not match the batch "
                    f"endpoint ({endpoint}).",
                    lineno,
                    "url",
                )
                continue
            if not isinstance(body, dict):
                problem("invalid_value", "body must be a JSON object.", lineno, "body")
                continue
            line_model = body.get("model")
            if not isinstance(line_model, str) or not line_model:
                problem(
                    "missing_required_parameter",
                    "Missing required parameter: 'body.model'.",
                    lineno,
                    "body.model",
                )
                continue
            if model is None:
                model = line_model
            elif line_model != model:
                problem(
                    "model_mismatch",
                    f"The model '{line_model}' does not match the model of the batch ('{model}'); "
                    "a batch can only use one model.",
                    lineno,
                    "body.model",
                )
                continue
            requests.append(
                SimRequest(
                    index=len(requests), custom_id=custom_id, body=body, raw=stripped, line=lineno
                )
            )
        if count == 0:
            problem(
                "empty_file",
                "The batch input file is empty. Please ensure that the batch contains at least "
                "one request.",
                None,
            )
        elif self.facts.max_requests is not None and count > self.facts.max_requests:
            problem(
                "too_many_tasks",
                f"The batch input file has {count} requests; "
                f"the limit is {self.facts.max_requests}.",
                None,
            )
        return requests, issues, model
