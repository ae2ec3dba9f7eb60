"""The Gemini API's batch mode, for the omnibatch emulator (mounted at ``/gemini``).

Point the official SDK at it with
``genai.Client(api_key=..., http_options={"base_url": "http://HOST:PORT/gemini"})``.
Shapes follow ``google-genai`` (``_BatchJob_from_mldev``) and providers.md §5: batches are
operations named ``batches/<id>`` with ``metadata.state`` in ``BATCH_STATE_*``, int64-string
``batchStats`` (zeros omitted, as proto3 JSON does), inline responses nested as
``inlinedResponses.inlinedResponses[]`` in input order, file results as ``files/batch-<id>``
(in processing order: join by ``key``). Uploads use the resumable protocol under
``/upload/v1beta/files``; downloads are served at ``/download/v1beta/files/<id>:download`` and
``/v1beta/files/<id>:download`` (``?alt=media``). Expired batches expose no results (the
docs: "no results to retrieve"); cancelled ones expose what ran before the cancel (the docs are
silent). Inline responses come back in processing order, not input order as the SDK's
docstring promises: the emulator is adversarial on purpose, so a client that joins by position
fails here instead of in production.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import orjson

from omnibatch.plugin import (
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
    answer_for,
    check_key,
    content_response,
    iso_time,
    short_hash,
)

__all__ = ["GeminiDialect"]

WINDOW_SECONDS = 48 * 3600  # pending or running for 48 hours: expired
FILE_TTL_SECONDS = 48 * 3600
INLINE_LIMIT = 20 * 1024 * 1024
FILE_LIMIT = 2 * 1024 * 1024 * 1024  # the File API's limit per file
CHUNK_GRANULARITY = 8 * 1024 * 1024
# The fake model speaks OpenAI chat: requests are shown to it in that shape.
ANSWER_ENDPOINT = "/v1/chat/completions"
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch"
OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput"

STATES = {
    Phase.VALIDATING: "BATCH_STATE_PENDING",
    Phase.RUNNING: "BATCH_STATE_RUNNING",
    Phase.FINALIZING: "BATCH_STATE_RUNNING",
    # Undocumented for the Gemini API (the SDK's enum has JOB_STATE_CANCELLING; third-party
    # clients report BATCH_STATE_CANCELLING): shown while the engine is cancelling.
    Phase.CANCELLING: "BATCH_STATE_CANCELLING",
    Phase.COMPLETED: "BATCH_STATE_SUCCEEDED",
    Phase.FAILED: "BATCH_STATE_FAILED",
    Phase.CANCELLED: "BATCH_STATE_CANCELLED",
    Phase.EXPIRED: "BATCH_STATE_EXPIRED",
}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# Every google.rpc.Code name, for error_body's ``type``.
_GOOGLE_STATUSES = frozenset(
    {*STATUS_NAMES.values(), "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "DATA_LOSS"}
)
_GRPC_INVALID_ARGUMENT = 3
_GRPC_INTERNAL = 13

# google-genai 2.x calls /v1beta, 3.x defaults to /v1: both are served.
_V = r"/v1(?:beta|alpha)?"
_UPLOAD = re.compile(rf"^/upload{_V}/files$")
_BATCHES = re.compile(rf"^{_V}/batches$")
_CREATE = re.compile(rf"^{_V}/((?:models|tunedModels)/[^/:]+):batchGenerateContent$")
_BATCH = re.compile(rf"^{_V}/(batches/[^/:]+)$")
_BATCH_VERB = re.compile(rf"^{_V}/(batches/[^/:]+):(cancel|delete)$")
_FILES = re.compile(rf"^({_V})/files$")
_FILE = re.compile(rf"^({_V})/(files/[^/:]+)$")
_DOWNLOAD = re.compile(rf"^(?:/download)?{_V}/(files/[^/:]+):download$")


def _pick(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def _text_of(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return ""
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def _as_chat(request: dict[str, Any]) -> dict[str, Any]:
    """The request as the fake model reads it (messages, max_tokens, n)."""
    contents = request.get("contents")
    messages = [
        {"role": "user", "content": _text_of(c)} for c in contents or [] if isinstance(c, dict)
    ]
    config = _pick(request, "generationConfig", "generation_config") or {}
    chat: dict[str, Any] = {"messages": messages}
    if isinstance(config, dict):
        limit = _pick(config, "maxOutputTokens", "max_output_tokens")
        count = _pick(config, "candidateCount", "candidate_count")
        if isinstance(limit, int):
            chat["max_tokens"] = limit
        if isinstance(count, int):
            chat["n"] = count
    return chat


def _sim(index: int, key: Any, request: Any, reasons: dict[int, str]) -> SimRequest:
    """A request for the engine: the fake model sees it as chat; bad ones fail when run."""
    body = _as_chat(request) if isinstance(request, dict) else {"messages": []}
    req = SimRequest(
        index=index,
        custom_id=key if isinstance(key, str) else None,
        body=body,
        raw=orjson.dumps(request),
    )
    problem = _request_problem(request)
    if problem is not None:
        req.failure = 400
        reasons[index] = problem
    return req


def _request_problem(request: Any) -> str | None:
    """What generateContent would reject (checked when the batch runs)."""
    if not isinstance(request, dict):
        return "request must be a GenerateContentRequest object"
    contents = request.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    return None


@dataclass
class _Upload:
    """One resumable upload session."""

    size: int
    display_name: str
    mime_type: str
    data: bytearray = field(default_factory=bytearray)
    file_name: str | None = None


class GeminiDialect(Dialect):
    """``models/*:batchGenerateContent``, ``batches/*``, and the File API parts batches use."""

    name: ClassVar[str] = "gemini"
    prefix: ClassVar[str] = "/gemini"
    base_url_suffix: ClassVar[str] = ""
    # Uploads arrive in chunks of a file of up to 2 GB; other bodies hold at most the
    # 20 MB of inline requests, plus room for the 400 that names that limit.
    max_upload_bytes: ClassVar[int] = FILE_LIMIT
    max_request_bytes: ClassVar[int] = 2 * INLINE_LIMIT

    def __init__(self) -> None:
        self._uploads: dict[str, _Upload] = {}

    # -- plumbing -------------------------------------------------------------------------

    def error_body(
        self,
        status_code: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> Any:
        status = type if type in _GOOGLE_STATUSES else None
        if status is None:
            status = STATUS_NAMES.get(status_code, "INTERNAL" if status_code >= 500 else "UNKNOWN")
        return {"error": {"code": status_code, "message": message, "status": status}}

    def unauthorized(self, request: httpx.Request, token: str | None) -> httpx.Response:
        # The Generative Language API answers a missing key 403 PERMISSION_DENIED and a
        # wrong one 400 INVALID_ARGUMENT with an ErrorInfo of reason API_KEY_INVALID.
        if token is None:
            message = (
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API."
            )
            return self.error_response(403, message, type="PERMISSION_DENIED")
        body = self.error_body(
            400, "API key not valid. Please pass a valid API key.", type="INVALID_ARGUMENT"
        )
        body["error"]["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ]
        return self.json_response(body, 400)

    def check_auth(self, engine: Engine, request: httpx.Request) -> httpx.Response | None:
        key = request.headers.get("x-goog-api-key") or request.url.params.get("key")
        return check_key(self, engine, request, key or None)

    def preflight(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response | None:
        path = path.rstrip("/") or "/"
        session_id = request.url.params.get("upload_id")
        if _UPLOAD.match(path) and request.method == "POST" and session_id is not None:
            # The session URL is the credential of an upload's bytes: an unknown session
            # is refused before its body is read.
            if session_id not in self._uploads:
                return self.error_response(404, "No upload session with this upload_id.")
            return None
        return self.check_auth(engine, request)

    def handle(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        try:
            return self._route(engine, request, path.rstrip("/") or "/")
        except HTTPErrorResponse as exc:
            return exc.response

    def _route(self, engine: Engine, request: httpx.Request, path: str) -> httpx.Response:
        method = request.method
        upload_id = request.url.params.get("upload_id")
        if _UPLOAD.match(path) and method == "POST" and upload_id is not None:
            # The session URL is the credential: the SDK sends no key with the bytes.
            return self._upload_chunk(engine, request, upload_id)
        denied = self.check_auth(engine, request)
        if denied is not None:
            return denied
        if _UPLOAD.match(path) and method == "POST":
            return self._upload_start(engine, request)
        if _BATCHES.match(path) and method == "GET":
            return self._list(engine, request)
        if (m := _FILES.match(path)) and method == "GET":
            return self._list_files(engine, request, m.group(1))
        if (m := _CREATE.match(path)) and method == "POST":
            return self._create(engine, request, m.group(1))
        if m := _BATCH_VERB.match(path):
            if method == "POST" and m.group(2) == "cancel":
                return self._cancel(engine, m.group(1))
            if method == "POST" and m.group(2) == "delete":  # the docs' REST spelling
                return self._delete(engine, m.group(1))
        elif m := _BATCH.match(path):
            if method == "GET":
                return self.json_response(self.operation(engine, self._batch(engine, m.group(1))))
            if method == "DELETE":
                return self._delete(engine, m.group(1))
        elif (m := _DOWNLOAD.match(path)) and method == "GET":
            stored = self._file(engine, m.group(1))
            if request.url.params.get("alt") != "media":
                raise self._bad("downloads need ?alt=media")
            return content_response(request, stored.data, "application/octet-stream")
        elif m := _FILE.match(path):
            if method == "GET":
                stored = self._file(engine, m.group(2))
                return self.json_response(self._file_object(request, stored, m.group(1)))
            if method == "DELETE":
                engine.delete_file(self._file(engine, m.group(2)).id)
                return self.json_response({})
        return self.not_found(request, path)

    def not_found(self, request: httpx.Request, path: str) -> httpx.Response:
        return self.error_response(
            404, f"The requested URL {path} was not found on this server ({request.method})."
        )

    def _bad(self, message: str, status: int = 400) -> HTTPErrorResponse:
        return HTTPErrorResponse(self.error_response(status, message))

    def _batch(self, engine: Engine, name: str) -> SimBatch:
        batch = engine.get_batch(name, self.name)
        if batch is None:
            raise HTTPErrorResponse(self.error_response(404, f"Batch {name} not found."))
        return batch

    def _file(self, engine: Engine, name: str) -> StoredFile:
        stored = engine.get_file(name, self.name)
        if stored is None:
            raise HTTPErrorResponse(
                self.error_response(
                    404,
                    f"File {name.removeprefix('files/')} not found (it may have been deleted or "
                    "have expired).",
                )
            )
        return stored

    # -- files ----------------------------------------------------------------------------

    def _file_object(
        self, request: httpx.Request, stored: StoredFile, version: str = "/v1beta"
    ) -> dict[str, Any]:
        root = str(request.url.copy_with(path=self.prefix, query=None, fragment=None))
        return {
            "name": stored.id,
            "displayName": stored.filename,
            "mimeType": stored.extra.get("mime_type", "application/octet-stream"),
            "sizeBytes": str(stored.size),
            "createTime": iso_time(stored.created_at),
            "updateTime": iso_time(stored.created_at),
            "expirationTime": iso_time(stored.expires_at),
            "sha256Hash": base64.b64encode(hashlib.sha256(stored.data).digest()).decode(),
            "uri": f"{root}{version}/{stored.id}",
            "state": "ACTIVE",
            "source": stored.extra.get("source", "UPLOADED"),
        }

    def _list_files(self, engine: Engine, request: httpx.Request, version: str) -> httpx.Response:
        params = request.url.params
        try:
            size = min(max(int(params.get("pageSize", "10")), 1), 100)
            start = int(params.get("pageToken") or 0)
        except ValueError:
            raise self._bad("pageSize and pageToken must be what an earlier page gave") from None
        files = list(reversed(engine.list_files(self.name)))  # newest first
        page = files[start : start + size]
        body: dict[str, Any] = {"files": [self._file_object(request, f, version) for f in page]}
        if start + size < len(files):
            body["nextPageToken"] = str(start + size)
        return self.json_response(body)

    def _upload_start(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        headers = request.headers
        if headers.get("x-goog-upload-protocol", "").lower() != "resumable":
            raise self._bad("Only X-Goog-Upload-Protocol: resumable uploads are supported.")
        if headers.get("x-goog-upload-command", "").lower() != "start":
            raise self._bad("A resumable upload starts with X-Goog-Upload-Command: start.")
        try:
            size = int(headers.get("x-goog-upload-header-content-length", ""))
        except ValueError:
            raise self._bad("X-Goog-Upload-Header-Content-Length is required.") from None
        if not 0 <= size <= FILE_LIMIT:
            raise self._bad(f"A file holds at most {FILE_LIMIT} bytes; {size} were announced.")
        meta: Any = {}
        if request.content:
            try:
                meta = orjson.loads(request.content)
            except orjson.JSONDecodeError:
                raise self._bad("Invalid JSON payload received.") from None
        info = meta.get("file") if isinstance(meta, dict) else None
        info = info if isinstance(info, dict) else {}
        session = engine.random_token(32)
        self._uploads[session] = _Upload(
            size=size,
            display_name=str(_pick(info, "displayName", "display_name") or ""),
            mime_type=str(
                headers.get("x-goog-upload-header-content-type")
                or _pick(info, "mimeType", "mime_type")
                or "application/octet-stream"
            ),
        )
        query = f"upload_id={session}&upload_protocol=resumable".encode()
        url = str(request.url.copy_with(query=query))
        return httpx.Response(
            200,
            headers={
                "content-type": "text/plain; charset=utf-8",
                "x-goog-upload-status": "active",
                "x-goog-upload-url": url,
                "x-goog-upload-control-url": url,
                "x-goog-upload-chunk-granularity": str(CHUNK_GRANULARITY),
            },
        )

    def _upload_chunk(
        self, engine: Engine, request: httpx.Request, session_id: str
    ) -> httpx.Response:
        upload = self._uploads.get(session_id)
        if upload is None:
            raise self._bad("No upload session with this upload_id.", 404)
        command = {c.strip() for c in request.headers.get("x-goog-upload-command", "").split(",")}
        if upload.file_name is not None:  # already final: a resend gets the same answer
            return self._final(engine, request, upload)
        if command == {"query"}:
            return httpx.Response(
                200,
                headers={
                    "x-goog-upload-status": "active",
                    "x-goog-upload-size-received": str(len(upload.data)),
                },
            )
        if not command & {"upload", "finalize"}:
            raise self._bad("X-Goog-Upload-Command must be upload, finalize or query.")
        if "upload" in command:
            try:
                offset = int(request.headers.get("x-goog-upload-offset", ""))
            except ValueError:
                raise self._bad("X-Goog-Upload-Offset is required.") from None
            if offset > len(upload.data):
                raise self._bad(
                    f"X-Goog-Upload-Offset {offset} is past the {len(upload.data)} bytes received."
                )
            if offset + len(request.content) > upload.size:
                raise self._bad(
                    f"The chunk ends past the {upload.size} bytes the upload announced."
                )
            # A resent chunk replaces what followed its offset (resumable semantics).
            del upload.data[offset:]
            upload.data.extend(request.content)
        if "finalize" not in command:
            return httpx.Response(200, headers={"x-goog-upload-status": "active"})
        if len(upload.data) != upload.size:
            raise self._bad(f"The upload has {len(upload.data)} bytes but announced {upload.size}.")
        now = engine.now()
        stored = engine.add_file(
            "files/" + engine.random_hex(12),
            bytes(upload.data),
            purpose="batch",
            filename=upload.display_name,
            dialect=self.name,
            expires_at=now + FILE_TTL_SECONDS,
            extra={"mime_type": upload.mime_type},
        )
        upload.file_name = stored.id
        upload.data = bytearray()
        return self._final(engine, request, upload)

    def _final(self, engine: Engine, request: httpx.Request, upload: _Upload) -> httpx.Response:
        assert upload.file_name is not None
        stored = engine.get_file(upload.file_name, self.name)
        if stored is None:
            raise self._bad("The uploaded file was deleted.", 404)
        return self.json_response(
            {"file": self._file_object(request, stored)}, headers={"x-goog-upload-status": "final"}
        )

    # -- batches --------------------------------------------------------------------------

    def _create(self, engine: Engine, request: httpx.Request, model: str) -> httpx.Response:
        try:
            body = orjson.loads(request.content)
        except orjson.JSONDecodeError:
            raise self._bad("Invalid JSON payload received.") from None
        spec = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            raise self._bad("* BatchGenerateContentRequest.batch: batch is required")
        config = _pick(spec, "inputConfig", "input_config")
        if not isinstance(config, dict):
            raise self._bad("* GenerateContentBatch.input_config: input_config is required")
        inline = config.get("requests")
        file_name = _pick(config, "fileName", "file_name")
        if isinstance(inline, dict) and file_name is None:
            # The docs' REST sample puts file_name inside "requests".
            file_name = _pick(inline, "fileName", "file_name")
        issues: list[ValidationIssue] = []
        reasons: dict[int, str] = {}
        metadata: dict[int, Any] = {}
        if file_name is not None:
            stored = engine.get_file(str(file_name), self.name)
            if stored is None:
                raise self._bad(f"File {file_name} not found.")
            requests = self._file_requests(stored.data, issues, reasons)
            mode, inputs = "file", [stored.id]
        elif isinstance(inline, dict) and isinstance(inline.get("requests"), list):
            if len(request.content) > INLINE_LIMIT:
                raise self._bad(
                    f"Request payload size exceeds the limit: {INLINE_LIMIT} bytes.", 400
                )
            requests = self._inline_requests(inline["requests"], reasons, metadata)
            mode, inputs = "inline", []
        else:
            raise self._bad("* GenerateContentBatch.input_config: requests or file_name needed")
        if not requests and not issues:
            raise self._bad("* GenerateContentBatch.input_config: the batch has no requests")
        batch = engine.create_batch(
            "batches/" + engine.random_hex(24),
            dialect=self.name,
            endpoint=ANSWER_ENDPOINT,
            requests=requests,
            window=WINDOW_SECONDS,
            validation_errors=issues,
            model=model,
            input_file_ids=inputs,
            extra={
                "display_name": str(_pick(spec, "displayName", "display_name") or ""),
                "mode": mode,
                "reasons": reasons,
                "metadata": metadata,
                "priority": spec.get("priority"),
            },
        )
        return self.json_response(self.operation(engine, batch))

    def _inline_requests(
        self, items: list[Any], reasons: dict[int, str], metadata: dict[int, Any]
    ) -> list[SimRequest]:
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self._bad(f"* requests[{i}]: must be an InlinedRequest object")
            meta = item.get("metadata")
            key = meta.get("key") if isinstance(meta, dict) else None
            out.append(_sim(i, key, item.get("request"), reasons))
            if meta is not None:
                metadata[i] = meta  # given back with the inline response
        return out

    def _file_requests(
        self, data: bytes, issues: list[ValidationIssue], reasons: dict[int, str]
    ) -> list[SimRequest]:
        out: list[SimRequest] = []
        for lineno, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                issues.append(ValidationIssue("INVALID_ARGUMENT", "line is not valid JSON", lineno))
                continue
            if not isinstance(obj, dict) or "request" not in obj:
                issues.append(
                    ValidationIssue("INVALID_ARGUMENT", "line has no request", lineno, "request")
                )
                continue
            req = _sim(len(out), obj.get("key"), obj["request"], reasons)
            req.line = lineno
            out.append(req)
        return out

    def operation(
        self, engine: Engine, batch: SimBatch, *, inline_results: bool = True
    ) -> dict[str, Any]:
        """The batch's long-running operation as ``GET batches/<id>`` returns it."""
        snap = engine.snapshot(batch)
        engine.ensure_results(batch, snap, lambda b, s: self._write_results(engine, b, s))
        pending = snap.total - snap.done
        stats = {
            "requestCount": snap.total,
            "successfulRequestCount": snap.succeeded,
            "failedRequestCount": snap.failed,
            "pendingRequestCount": pending,
        }
        md: dict[str, Any] = {
            "@type": BATCH_TYPE,
            "model": batch.model,
            "displayName": batch.extra.get("display_name", ""),
            "createTime": iso_time(snap.created_at),
            "updateTime": iso_time(snap.ended_at or snap.started_at or snap.created_at),
            # int64 fields are JSON strings, and proto3 JSON leaves zeros out.
            "batchStats": {k: str(v) for k, v in stats.items() if v},
            "state": STATES[snap.phase],
            "name": batch.id,
        }
        if batch.input_file_ids:
            md["inputConfig"] = {"fileName": batch.input_file_ids[0]}
        if batch.extra.get("priority") is not None:
            md["priority"] = str(batch.extra["priority"])
        op: dict[str, Any] = {"name": batch.id, "metadata": md}
        if snap.terminal:
            md["endTime"] = iso_time(snap.ended_at)
            op["done"] = True
        if snap.phase in (Phase.COMPLETED, Phase.CANCELLED) and (
            batch.output_file_id is not None or batch.extra.get("inline_results")
        ):
            output: dict[str, Any]
            if batch.output_file_id is not None:
                output = {"responsesFile": batch.output_file_id}
            else:
                items = batch.extra["inline_results"] if inline_results else []
                output = {"inlinedResponses": {"inlinedResponses": items}}
            md["output"] = output
            op["response"] = {"@type": OUTPUT_TYPE, **output}
        elif snap.phase is Phase.FAILED:
            first = batch.validation_errors[0]
            where = f"line {first.line}: " if first.line else ""
            op["error"] = {
                "code": _GRPC_INVALID_ARGUMENT,
                "message": f"{where}{first.message} ({len(batch.validation_errors)} problem(s))",
            }
        return op

    def _write_results(self, engine: Engine, batch: SimBatch, snap: Snapshot) -> None:
        if snap.phase not in (Phase.COMPLETED, Phase.CANCELLED):
            return  # failed and expired batches expose no results
        processed = engine.processed(batch, snap)
        if batch.extra.get("mode") == "inline":
            # Processing order (see the module docstring): only metadata.key joins them.
            answers = [self._answer(batch, req, key_in="metadata") for req in processed]
            batch.extra["inline_results"] = answers
            return
        lines = [orjson.dumps(self._answer(batch, req, key_in="line")) for req in processed]
        if not lines:
            return
        stored = engine.add_file(
            "files/batch-" + batch.id.removeprefix("batches/"),
            b"\n".join(lines) + b"\n",
            purpose="batch_output",
            filename=f"{batch.id}-results.jsonl",
            dialect=self.name,
            created_at=snap.ended_at,
            expires_at=(snap.ended_at or engine.now()) + FILE_TTL_SECONDS,
            extra={"mime_type": "application/jsonl", "source": "GENERATED"},
        )
        batch.output_file_id = stored.id

    def _answer(self, batch: SimBatch, req: SimRequest, *, key_in: str) -> dict[str, Any]:
        item: dict[str, Any]
        if req.failure is not None:
            if req.failure >= 500:
                item = {"error": {"code": _GRPC_INTERNAL, "message": "Internal error (emulated)"}}
            else:
                message = batch.extra["reasons"].get(req.index) or (
                    "This request contains the emulator error marker [[emulator:error]]."
                    if ERROR_MARKER in req.raw
                    else "Request contains an invalid argument."
                )
                item = {"error": {"code": _GRPC_INVALID_ARGUMENT, "message": message}}
        else:
            item = {"response": self._response(batch, req)}
        if key_in == "metadata":
            metadata = batch.extra.get("metadata", {}).get(req.index)
            if metadata is not None:
                item["metadata"] = metadata
        elif req.custom_id is not None:
            item["key"] = req.custom_id
        return item

    def _response(self, batch: SimBatch, req: SimRequest) -> dict[str, Any]:
        answer = answer_for(ANSWER_ENDPOINT, req.body)
        model = (batch.model or "").removeprefix("models/")
        return {
            "candidates": [
                {
                    "content": {"parts": [{"text": text}], "role": "model"},
                    "finishReason": "MAX_TOKENS" if reason == "length" else "STOP",
                    "index": i,
                }
                for i, (text, reason) in enumerate(
                    zip(answer.texts, answer.finish_reasons, strict=True)
                )
            ],
            "usageMetadata": {
                "promptTokenCount": answer.prompt_tokens,
                "candidatesTokenCount": answer.completion_tokens,
                "totalTokenCount": answer.total_tokens,
            },
            "modelVersion": model,
            "responseId": short_hash("resp", batch.id, str(req.index), size=12),
        }

    def _list(self, engine: Engine, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        try:
            size = int(params.get("pageSize", "50"))
            start = int(params.get("pageToken") or 0)
        except ValueError:
            raise self._bad("pageSize and pageToken must be what an earlier page gave") from None
        size = min(max(size, 1), 1000)
        batches = list(reversed(engine.list_batches(self.name)))  # newest first
        page = batches[start : start + size]
        body: dict[str, Any] = {
            # Listings leave inline responses out (the cookbook's note): get the batch for them.
            "operations": [self.operation(engine, b, inline_results=False) for b in page]
        }
        if start + size < len(batches):
            body["nextPageToken"] = str(start + size)
        return self.json_response(body)

    def _cancel(self, engine: Engine, name: str) -> httpx.Response:
        batch = self._batch(engine, name)
        try:
            engine.request_cancel(batch)
        except BatchStateConflict as exc:
            if exc.phase.terminal:
                raise HTTPErrorResponse(
                    self.error_response(
                        400,
                        f"Batch {name} is already in a terminal state and cannot be cancelled.",
                        type="FAILED_PRECONDITION",
                    )
                ) from None
            # Finalizing: every request is done; there is nothing left to stop.
        return self.json_response({})

    def _delete(self, engine: Engine, name: str) -> httpx.Response:
        batch = self._batch(engine, name)
        engine.delete_batch(batch.id)
        return self.json_response({})
